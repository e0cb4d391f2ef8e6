"""Learning-rate schedules as multipliers of each param group's base lr, driven by torch's LambdaLR.

References (the formulas follow transformers.optimization, which the tests compare against):
- linear warmup + cosine decay (Loshchilov & Hutter 2017, SGDR; GPT-3's schedule with a floor):
      s < W:  m = s / W
      else:   p = min(1, (s - W) / (S - W));  m = r + (1 - r) * 0.5 * (1 + cos(pi * p))
- warmup-stable-decay (Hu et al. 2024, MiniCPM; "WSD"):
      s < W: m = r + (1 - r) * s / W;   W <= s < W + K: m = 1;   then over D decay steps
      p = (s - W - K) / D, m = r + (1 - r) * f(p) with f = 1 - p (linear), 0.5 (1 + cos(pi p)) (cosine) or
      1 - sqrt(p) ("1-sqrt"); after the decay m = r.
- constant (optionally after a linear warmup): m = min(1, s / W).
s is the number of optimizer steps already taken (LambdaLR's last_epoch); r = min_lr_ratio.

Schedules are dataclasses, not closures, so LambdaLR.state_dict() saves their fields as plain data and a
checkpoint restores the exact multiplier (torch.load weights_only=True accepts it).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch.optim.lr_scheduler import LambdaLR

SCHEDULES = ("cosine", "wsd", "constant")
DECAY_SHAPES = ("linear", "cosine", "1-sqrt")


@dataclass
class WarmupCosine:
    warmup_steps: int
    total_steps: int
    min_lr_ratio: float = 0.0

    def __call__(self, step: int) -> float:
        if step < self.warmup_steps:
            return step / max(1, self.warmup_steps)
        progress = min(1.0, (step - self.warmup_steps) / max(1, self.total_steps - self.warmup_steps))
        return self.min_lr_ratio + (1 - self.min_lr_ratio) * 0.5 * (1.0 + math.cos(math.pi * progress))


@dataclass
class WarmupStableDecay:
    warmup_steps: int
    stable_steps: int
    decay_steps: int
    min_lr_ratio: float = 0.0
    decay_shape: str = "linear"

    def __call__(self, step: int) -> float:
        r = self.min_lr_ratio
        if step < self.warmup_steps:
            return r + (1 - r) * step / max(1, self.warmup_steps)
        if step < self.warmup_steps + self.stable_steps:
            return 1.0
        if step >= self.warmup_steps + self.stable_steps + self.decay_steps:
            return r
        p = (step - self.warmup_steps - self.stable_steps) / max(1, self.decay_steps)
        if self.decay_shape == "linear":
            f = 1.0 - p
        elif self.decay_shape == "cosine":
            f = 0.5 * (1.0 + math.cos(math.pi * p))
        else:  # "1-sqrt" (Hägele et al. 2024)
            f = 1.0 - math.sqrt(p)
        return r + (1 - r) * f


@dataclass
class WarmupConstant:
    warmup_steps: int = 0

    def __call__(self, step: int) -> float:
        return min(1.0, step / self.warmup_steps) if self.warmup_steps > 0 else 1.0


def make_schedule(name: str, total_steps: int, warmup_steps: int = 0, min_lr_ratio: float = 0.0,
                  decay_fraction: float = 0.2, decay_shape: str = "linear"):
    """The multiplier function for `name`; for "wsd" the last decay_fraction of the steps after warmup decay."""
    if name not in SCHEDULES:
        raise ValueError(f"unknown lr schedule {name!r}; choose one of {', '.join(SCHEDULES)}")
    if total_steps < 1 or not 0 <= warmup_steps <= total_steps:
        raise ValueError(f"need total_steps >= 1 and 0 <= warmup_steps <= total_steps, got {total_steps}, "
                         f"{warmup_steps}")
    if not 0.0 <= min_lr_ratio <= 1.0:
        raise ValueError(f"min_lr_ratio must be in [0, 1], got {min_lr_ratio}")
    if name == "cosine":
        return WarmupCosine(warmup_steps, total_steps, min_lr_ratio)
    if name == "constant":
        return WarmupConstant(warmup_steps)
    if decay_shape not in DECAY_SHAPES:
        raise ValueError(f"unknown decay_shape {decay_shape!r}; choose one of {', '.join(DECAY_SHAPES)}")
    if not 0.0 <= decay_fraction <= 1.0:
        raise ValueError(f"decay_fraction must be in [0, 1], got {decay_fraction}")
    decay = round((total_steps - warmup_steps) * decay_fraction)
    return WarmupStableDecay(warmup_steps, total_steps - warmup_steps - decay, decay, min_lr_ratio, decay_shape)


def build_scheduler(optimizer: torch.optim.Optimizer, cfg) -> LambdaLR:
    """cfg: lr_schedule, max_steps, warmup_steps, min_lr_ratio, decay_fraction, decay_shape (TrainConfig)."""
    fn = make_schedule(cfg.lr_schedule, cfg.max_steps, cfg.warmup_steps, cfg.min_lr_ratio, cfg.decay_fraction,
                       cfg.decay_shape)
    return LambdaLR(optimizer, fn)
