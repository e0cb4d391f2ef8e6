"""Model outputs: dataclasses that also answer `out["logits"]`, like transformers' ModelOutput."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any

import torch


class ModelOutput:
    """Attribute access, key access (`out["loss"]`) and tuple access over the fields that are set."""

    def __getitem__(self, key: str | int) -> Any:
        if isinstance(key, str):
            if key not in self.keys():
                raise KeyError(f"{key!r} is not set in {type(self).__name__}; set fields: {self.keys()}")
            return getattr(self, key)
        return self.to_tuple()[key]

    def __contains__(self, key: str) -> bool:
        return key in self.keys()

    def keys(self) -> list[str]:
        return [f.name for f in dataclasses.fields(self) if getattr(self, f.name) is not None]

    def to_tuple(self) -> tuple[Any, ...]:
        return tuple(getattr(self, k) for k in self.keys())


@dataclass
class CausalLMOutput(ModelOutput):
    """loss: mean next-token cross-entropy (plus aux_loss when present); logits: (B, T', vocab) where T' is
    T or `logits_to_keep`; past_key_values: the cache passed in, now holding this step; aux_loss: sum of the
    auxiliary losses returned by MLP/attention slots (MoE load balancing); hidden_states: per-layer inputs
    plus the final normed output when asked for."""

    loss: torch.Tensor | None = None
    logits: torch.Tensor | None = None
    past_key_values: Any = None
    aux_loss: torch.Tensor | None = None
    hidden_states: tuple[torch.Tensor, ...] | None = None
