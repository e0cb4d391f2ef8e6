"""Optimizers: AdamW written out for learners, Muon for hidden matrices, and the builder the trainer uses.

References:
- Loshchilov & Hutter 2019, "Decoupled Weight Decay Regularization" (AdamW); torch.optim.AdamW's documented
  algorithm, which `AdamW` below reproduces step for step (tests: within 1e-6 over 100 steps).
- Keller Jordan 2024, "Muon: An optimizer for hidden layers in neural networks" (blog post and reference code's
  published description): SGD-momentum (Nesterov) whose 2-D update is replaced by the nearest semi-orthogonal
  matrix, computed with a quintic Newton-Schulz iteration (coefficients 3.4445, -4.7750, 2.0315, 5 steps), and
  scaled by sqrt(max(1, rows / cols)). Embeddings, the LM head, norms and biases stay on AdamW.
- nanoGPT's `configure_optimizers`: weight decay on parameters with dim >= 2, none on norms and biases.

Weight-decay policy (stated once, used everywhere): a parameter decays iff it is a matrix (p.dim() >= 2).
That covers every projection, the embedding table and an untied LM head (as in nanoGPT); norm gains, biases and
scalar gates (1-D) never decay. `decay_embeddings=False` exempts embed_tokens / lm_head / position tables.

Contract: `build_optimizer(model, cfg)` returns one torch.optim.Optimizer whose param groups carry their own
"lr" (so LambdaLR schedules scale every group), whose state_dict round-trips through torch.load(weights_only=True).
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from typing import Any

import torch
from torch import nn

# Quintic Newton-Schulz coefficients from Keller Jordan's Muon: chosen to push singular values in (0, 1] quickly
# towards ~1 (they converge to a band around 0.7-1.2, not exactly 1, which training does not mind).
NS_COEFFICIENTS = (3.4445, -4.7750, 2.0315)
EMBEDDING_NAMES = ("embed_tokens", "lm_head", "embed_positions", "position")


class AdamW(torch.optim.Optimizer):
    """AdamW from scratch, matching torch.optim.AdamW (amsgrad=False, maximize=False) to float rounding.

    Per parameter p with gradient g at step t (1-based):
        p   <- p * (1 - lr * wd)                        decoupled weight decay, applied first
        m   <- b1 * m + (1 - b1) * g                    first moment
        v   <- b2 * v + (1 - b2) * g^2                  second moment
        m^  = m / (1 - b1^t);  v^ = v / (1 - b2^t)       bias corrections
        p   <- p - lr * m^ / (sqrt(v^) + eps)
    """

    def __init__(self, params: Iterable, lr: float = 1e-3, betas: tuple[float, float] = (0.9, 0.999),
                 eps: float = 1e-8, weight_decay: float = 1e-2) -> None:
        if lr < 0 or eps < 0 or weight_decay < 0:
            raise ValueError(f"AdamW needs lr, eps, weight_decay >= 0; got {lr}, {eps}, {weight_decay}")
        if not all(0.0 <= b < 1.0 for b in betas):
            raise ValueError(f"AdamW betas must be in [0, 1), got {betas}")
        super().__init__(params, dict(lr=lr, betas=tuple(betas), eps=eps, weight_decay=weight_decay))

    @torch.no_grad()
    def step(self, closure: Any = None) -> torch.Tensor | None:
        loss = None
        if closure is not None:
            with torch.enable_grad():
                loss = closure()
        for group in self.param_groups:
            adamw_group_step(group, self.state)
        return loss


def adamw_group_step(group: dict, state: dict) -> None:
    """One AdamW update of every parameter in `group` (shared by AdamW and Muon's non-matrix groups)."""
    lr, (b1, b2), eps, wd = group["lr"], group["betas"], group["eps"], group["weight_decay"]
    for p in group["params"]:
        if p.grad is None:
            continue
        g = p.grad
        s = state[p]
        if not s:
            s["step"] = torch.tensor(0.0)  # a tensor, like torch's, so state_dicts look alike
            s["exp_avg"] = torch.zeros_like(p, memory_format=torch.preserve_format)
            s["exp_avg_sq"] = torch.zeros_like(p, memory_format=torch.preserve_format)
        s["step"] += 1
        t = s["step"].item()
        m, v = s["exp_avg"], s["exp_avg_sq"]
        p.mul_(1 - lr * wd)
        m.lerp_(g, 1 - b1)                       # m = b1 m + (1 - b1) g
        v.mul_(b2).addcmul_(g, g, value=1 - b2)  # v = b2 v + (1 - b2) g^2
        bias1 = 1 - b1**t
        bias2 = 1 - b2**t
        # same association of operations as torch's single-tensor path: denom = sqrt(v) / sqrt(bias2) + eps
        denom = (v.sqrt() / math.sqrt(bias2)).add_(eps)
        p.addcdiv_(m, denom, value=-lr / bias1)


def newton_schulz(g: torch.Tensor, steps: int = 5, eps: float = 1e-7) -> torch.Tensor:
    """Approximate U V^T of g = U S V^T (the nearest semi-orthogonal matrix) with a quintic Newton-Schulz
    iteration X <- a X + (b A + c A^2) X, A = X X^T. g: (rows, cols) -> same shape, float32 on CPU, bf16 on GPU."""
    if g.dim() != 2:
        raise ValueError(f"newton_schulz expects a matrix, got shape {tuple(g.shape)}")
    a, b, c = NS_COEFFICIENTS
    x = g.to(torch.bfloat16 if g.is_cuda else torch.float32)
    transposed = x.shape[0] > x.shape[1]
    if transposed:  # iterate on the wide orientation so A = X X^T is the smaller Gram matrix
        x = x.T
    x = x / (x.norm() + eps)  # Frobenius norm >= spectral norm, so singular values start in (0, 1]
    for _ in range(steps):
        gram = x @ x.T                     # (r, r), r = min(rows, cols)
        poly = b * gram + c * (gram @ gram)
        x = a * x + poly @ x
    return (x.T if transposed else x).to(g.dtype)


class Muon(torch.optim.Optimizer):
    """Muon on groups with use_muon=True (2-D hidden weights), AdamW on the others, in one optimizer.

    Muon group update for W (rows, cols) with gradient g:
        buf <- mu * buf + g;   u = g + mu * buf (Nesterov) or buf
        W   <- W * (1 - lr * wd) - lr * sqrt(max(1, rows / cols)) * NewtonSchulz(u)
    """

    def __init__(self, param_groups: list[dict], lr: float = 0.02, momentum: float = 0.95, nesterov: bool = True,
                 ns_steps: int = 5, betas: tuple[float, float] = (0.9, 0.95), eps: float = 1e-8,
                 weight_decay: float = 0.0) -> None:
        defaults = dict(lr=lr, momentum=momentum, nesterov=nesterov, ns_steps=ns_steps, betas=tuple(betas), eps=eps,
                        weight_decay=weight_decay, use_muon=False)
        super().__init__(param_groups, defaults)
        for group in self.param_groups:
            if group["use_muon"]:
                bad = [tuple(p.shape) for p in group["params"] if p.dim() != 2]
                if bad:
                    raise ValueError(f"Muon groups take 2-D weights only, got shapes {bad}; put them in a group "
                                     f"with use_muon=False (AdamW)")

    @torch.no_grad()
    def step(self, closure: Any = None) -> torch.Tensor | None:
        loss = None
        if closure is not None:
            with torch.enable_grad():
                loss = closure()
        for group in self.param_groups:
            if not group["use_muon"]:
                adamw_group_step(group, self.state)
                continue
            lr, mu, wd = group["lr"], group["momentum"], group["weight_decay"]
            for p in group["params"]:
                if p.grad is None:
                    continue
                s = self.state[p]
                if not s:
                    s["momentum_buffer"] = torch.zeros_like(p)
                buf = s["momentum_buffer"]
                buf.mul_(mu).add_(p.grad)
                update = p.grad.add(buf, alpha=mu) if group["nesterov"] else buf
                ortho = newton_schulz(update, group["ns_steps"])
                scale = math.sqrt(max(1.0, p.shape[0] / p.shape[1]))
                p.mul_(1 - lr * wd)
                p.add_(ortho, alpha=-lr * scale)
        return loss


def _is_embedding(name: str) -> bool:
    return any(part in EMBEDDING_NAMES for part in name.split("."))


def param_groups(model: nn.Module, weight_decay: float, decay_embeddings: bool = True) -> list[dict]:
    """Two AdamW groups: matrices with decay, the rest (norms, biases, scalars) without; tied weights once."""
    decay, no_decay, seen = [], [], set()
    for name, p in model.named_parameters():
        if not p.requires_grad or id(p) in seen:
            continue
        seen.add(id(p))
        if p.dim() >= 2 and (decay_embeddings or not _is_embedding(name)):
            decay.append(p)
        else:
            no_decay.append(p)
    groups = [{"params": decay, "weight_decay": weight_decay, "name": "decay"},
              {"params": no_decay, "weight_decay": 0.0, "name": "no_decay"}]
    return [g for g in groups if g["params"]]


def muon_param_groups(model: nn.Module, lr: float, muon_lr: float, weight_decay: float,
                      decay_embeddings: bool = True) -> list[dict]:
    """Muon for 2-D weights inside the blocks; AdamW (decay / no decay) for embeddings, LM head and 1-D params."""
    muon, adam_decay, adam_plain, seen = [], [], [], set()
    for name, p in model.named_parameters():
        if not p.requires_grad or id(p) in seen:
            continue
        seen.add(id(p))
        if p.dim() == 2 and not _is_embedding(name):
            muon.append(p)
        elif p.dim() >= 2 and (decay_embeddings or not _is_embedding(name)):
            adam_decay.append(p)
        else:
            adam_plain.append(p)
    groups = [{"params": muon, "use_muon": True, "lr": muon_lr, "weight_decay": weight_decay, "name": "muon"},
              {"params": adam_decay, "use_muon": False, "lr": lr, "weight_decay": weight_decay, "name": "decay"},
              {"params": adam_plain, "use_muon": False, "lr": lr, "weight_decay": 0.0, "name": "no_decay"}]
    return [g for g in groups if g["params"]]


def build_optimizer(model: nn.Module, cfg: Any) -> torch.optim.Optimizer:
    """cfg: any object with optimizer, lr, betas, eps, weight_decay, decay_embeddings, muon_lr, muon_momentum
    (stellarbyte.train.config.TrainConfig). optimizer: "adamw" (torch, fused on CUDA), "adamw_scratch", "muon"."""
    name = cfg.optimizer
    betas = tuple(cfg.betas)
    if name == "adamw":
        groups = param_groups(model, cfg.weight_decay, cfg.decay_embeddings)
        on_cuda = all(p.is_cuda for g in groups for p in g["params"])
        # fused: one kernel for all parameters (CUDA); elsewhere torch picks foreach or the loop itself
        return torch.optim.AdamW(groups, lr=cfg.lr, betas=betas, eps=cfg.eps, fused=True if on_cuda else None)
    if name == "adamw_scratch":
        return AdamW(param_groups(model, cfg.weight_decay, cfg.decay_embeddings), lr=cfg.lr, betas=betas,
                     eps=cfg.eps)
    if name == "muon":
        groups = muon_param_groups(model, cfg.lr, cfg.muon_lr, cfg.weight_decay, cfg.decay_embeddings)
        return Muon(groups, lr=cfg.lr, momentum=cfg.muon_momentum, betas=betas, eps=cfg.eps)
    raise ValueError(f"unknown optimizer {name!r}; choose adamw, adamw_scratch or muon")
