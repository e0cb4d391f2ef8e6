"""Turning next-token logits into a token: penalties, temperature, top-k, top-p, min-p, then sample or argmax.

Order and formulas follow transformers' logits processors, so seeded results are comparable:
  repetition penalty (Keskar et al., 2019, CTRL): a seen token's logit l -> l / p if l > 0 else l * p
  temperature: l / T
  top-k: keep the k largest logits
  top-p (Holtzman et al., 2019): keep the smallest set of tokens whose probability reaches p
  min-p (Nguyen et al., 2024): keep tokens with probability >= min_p * max probability
Shapes: logits (B, V) float32; returns next token ids (B,).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch


@dataclass(slots=True)
class SamplingConfig:
    do_sample: bool = False
    temperature: float = 1.0
    top_k: int = 0
    top_p: float = 1.0
    min_p: float = 0.0
    repetition_penalty: float = 1.0

    def __post_init__(self) -> None:
        if self.temperature < 0:
            raise ValueError(f"temperature={self.temperature} must be >= 0 (0 means greedy)")
        if self.top_k < 0:
            raise ValueError(f"top_k={self.top_k} must be >= 0 (0 disables it)")
        if not 0.0 < self.top_p <= 1.0:
            raise ValueError(f"top_p={self.top_p} must be in (0, 1]")
        if not 0.0 <= self.min_p <= 1.0:
            raise ValueError(f"min_p={self.min_p} must be in [0, 1]")
        if self.repetition_penalty <= 0:
            raise ValueError(f"repetition_penalty={self.repetition_penalty} must be > 0 (1.0 disables it)")
        if self.temperature == 0:
            self.do_sample = False


def apply_repetition_penalty(logits: torch.Tensor, seen: torch.Tensor, penalty: float) -> torch.Tensor:
    """seen: (B, V) bool, True for tokens already in the row's context."""
    penalised = torch.where(logits > 0, logits / penalty, logits * penalty)
    return torch.where(seen, penalised, logits)


def filter_logits(logits: torch.Tensor, top_k: int = 0, top_p: float = 1.0, min_p: float = 0.0) -> torch.Tensor:
    """Set the logits of excluded tokens to -inf."""
    neg_inf = torch.finfo(logits.dtype).min
    if top_k > 0:
        k = min(top_k, logits.shape[-1])
        kth = torch.topk(logits, k, dim=-1).values[..., -1:]
        logits = logits.masked_fill(logits < kth, neg_inf)
    if top_p < 1.0:
        sorted_logits, order = torch.sort(logits, dim=-1, descending=False)
        cumulative = sorted_logits.softmax(-1).cumsum(-1)
        drop_sorted = cumulative <= 1 - top_p  # ascending: drop the low tail holding 1 - p of the mass
        drop_sorted[..., -1:] = False  # always keep the most likely token
        drop = drop_sorted.scatter(-1, order, drop_sorted)
        logits = logits.masked_fill(drop, neg_inf)
    if min_p > 0.0:
        probs = logits.softmax(-1)
        threshold = min_p * probs.max(-1, keepdim=True).values
        logits = logits.masked_fill(probs < threshold, neg_inf)
    return logits


def next_token(logits: torch.Tensor, cfg: SamplingConfig, seen: torch.Tensor | None = None,
               generator: torch.Generator | None = None) -> torch.Tensor:
    logits = logits.float()
    if cfg.repetition_penalty != 1.0 and seen is not None:
        logits = apply_repetition_penalty(logits, seen, cfg.repetition_penalty)
    if not cfg.do_sample:
        return logits.argmax(-1)
    logits = filter_logits(logits / cfg.temperature, cfg.top_k, cfg.top_p, cfg.min_p)
    probs = logits.softmax(-1)
    return torch.multinomial(probs, 1, generator=generator).squeeze(-1)
