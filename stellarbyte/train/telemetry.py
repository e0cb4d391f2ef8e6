"""Training telemetry: per-layer activation RMS (forward hooks) and per-layer gradient norms.

Why: a loss spike or a NaN usually shows first as one block's activations growing (RMS of its output drifting up
layer after layer) or one block's gradient norm exploding; logging both per layer says where, not only when.

- Activation RMS of block i = sqrt(mean(h_i^2)) over its output hidden states (B, T, H), recorded by a forward
  hook only while `recording` is on (the trainer turns it on for telemetry steps: a .item() sync per block is
  too dear for every step on a GPU).
- Gradient norm of a group = sqrt(sum over its parameters of ||g||_2^2), for embed, each block ("layer.i") and
  head; computed after unscaling and before clipping, so the numbers are the true gradients.
- `non_finite_groups` names the groups whose gradients hold NaN/Inf: the trainer reports them on a skipped step.
"""

from __future__ import annotations

import math
from typing import Any

import torch
from torch import nn


def _group_of(name: str) -> str:
    """Parameter name -> telemetry group: "layer.3" for model.layers.3.*, else "embed" / "head" / "other"."""
    parts = name.split(".")
    if "layers" in parts:
        i = parts.index("layers")
        if i + 1 < len(parts):
            return f"layer.{parts[i + 1]}"
    if "embed_tokens" in parts or "position" in parts:
        return "embed"
    if "lm_head" in parts or parts[-2:-1] == ["norm"]:
        return "head"
    return "other"


class Telemetry:
    def __init__(self, model: nn.Module) -> None:
        self.model = model
        self.recording = False
        self.activation_rms: dict[str, float] = {}
        self._handles = []
        layers = getattr(getattr(model, "model", None), "layers", None)
        if layers is not None:
            for i, block in enumerate(layers):
                self._handles.append(block.register_forward_hook(self._hook(f"layer.{i}")))
        self.groups: dict[str, list[nn.Parameter]] = {}
        seen = set()
        for name, p in model.named_parameters():
            if p.requires_grad and id(p) not in seen:
                seen.add(id(p))
                self.groups.setdefault(_group_of(name), []).append(p)

    def _hook(self, key: str):
        def record(module: nn.Module, inputs: Any, output: Any) -> None:
            if not self.recording:
                return
            h = output[0] if isinstance(output, (tuple, list)) else output  # (B, T, H)
            self.activation_rms[key] = float(h.detach().float().pow(2).mean().sqrt())
        return record

    @torch.no_grad()
    def grad_norms(self) -> dict[str, float]:
        out = {}
        for key, params in self.groups.items():
            sq = [p.grad.detach().float().pow(2).sum() for p in params if p.grad is not None]
            out[key] = math.sqrt(float(torch.stack(sq).sum())) if sq else 0.0
        return out

    def non_finite_groups(self) -> list[str]:
        return [k for k, v in self.grad_norms().items() if not math.isfinite(v)]

    def remove(self) -> None:
        for h in self._handles:
            h.remove()
        self._handles.clear()
