"""Torch references for cross-entropy and linear + cross-entropy.

References
  cross-entropy   torch.nn.functional.cross_entropy on float32 logits (transformers' ForCausalLMLoss upcasts
                  the same way), with ignore_index and label smoothing (Szegedy et al., 2016):
                  loss_i = lse_i - (1 - eps) * x_i[y_i] - eps * mean_j x_i[j].
  z-loss          PaLM (Chowdhery et al., 2022): + z * lse_i^2, keeping the log-partition near zero.
Reduction "mean" divides by the number of non-ignored tokens (NaN when there are none, as torch does);
"sum" adds; "none" returns one loss per token (0 at ignored tokens) in labels' shape.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

REDUCTIONS = ("mean", "sum", "none")


def check_reduction(reduction: str) -> None:
    if reduction not in REDUCTIONS:
        raise ValueError(f"reduction must be one of {REDUCTIONS}, got {reduction!r}")


def cross_entropy(logits: torch.Tensor, labels: torch.Tensor, ignore_index: int = -100,
                  label_smoothing: float = 0.0, z_loss: float = 0.0, reduction: str = "mean") -> torch.Tensor:
    check_reduction(reduction)
    vocab = logits.shape[-1]
    flat = logits.reshape(-1, vocab).float()  # (N, V)
    targets = labels.reshape(-1)  # (N,)
    if not z_loss and reduction != "none":  # exactly the call the model made before the registry existed
        return F.cross_entropy(flat, targets, ignore_index=ignore_index, label_smoothing=label_smoothing,
                               reduction=reduction)
    loss = F.cross_entropy(flat, targets, ignore_index=ignore_index, label_smoothing=label_smoothing,
                           reduction="none")  # (N,), 0 where ignored
    valid = targets != ignore_index
    if z_loss:
        loss = loss + z_loss * torch.logsumexp(flat, dim=-1).square() * valid
    if reduction == "none":
        return loss.reshape(labels.shape)
    if reduction == "sum":
        return loss.sum()
    return loss.sum() / valid.sum()


def fused_linear_cross_entropy(hidden: torch.Tensor, weight: torch.Tensor, labels: torch.Tensor,
                               bias: torch.Tensor | None = None, ignore_index: int = -100,
                               label_smoothing: float = 0.0, z_loss: float = 0.0, reduction: str = "mean",
                               chunk_size: int | None = None) -> torch.Tensor:
    """The unfused reference: materialises the (N, V) logits, then cross_entropy. chunk_size is ignored."""
    logits = F.linear(hidden, weight, bias)  # (..., V)
    return cross_entropy(logits, labels, ignore_index, label_smoothing, z_loss, reduction)
