"""The "stellarbyte" checkpoint format: every ByteConfig field in config.json, our tensor names as they are.

Used for configurations no HF family can express (XPos, ALiBi, LayerNorm, post-norm / DeepNorm, parallel
residual, LayerScale, GeGLU/GELU/ReLU² MLPs, ...). config.json is `ByteConfig.to_dict()` plus
`architectures: ["ByteModel"]`; transformers cannot load it without our code, StellarByte loads it back.
"""

from __future__ import annotations

from typing import Any

import torch

from stellarbyte.config import ByteConfig
from stellarbyte.hf.adapter import FamilyAdapter, dtype_name

# keys a config.json may carry beside the ByteConfig fields (ours, or added by tools that rewrite configs)
_EXTRA_KEYS = ("architectures", "dtype", "transformers_version", "_name_or_path", "format_version")
FORMAT_VERSION = 1


class NativeAdapter(FamilyAdapter):
    model_type = "stellarbyte"
    architecture = "ByteModel"

    def reasons(self, config: ByteConfig) -> list[str]:
        return []  # every ByteConfig is expressible in its own format

    def to_hf_config(self, config: ByteConfig, dtype: torch.dtype | str | None = None) -> dict[str, Any]:
        d = config.to_dict()
        d["model_type"] = self.model_type
        if dtype is not None:
            d["torch_dtype"] = dtype_name(dtype)
        return {"architectures": [self.architecture], "format_version": FORMAT_VERSION, **d}

    def from_hf_config(self, hf: dict[str, Any]) -> ByteConfig:
        d = {k: v for k, v in hf.items() if k not in _EXTRA_KEYS}
        version = hf.get("format_version", FORMAT_VERSION)
        if version > FORMAT_VERSION:
            raise ValueError(f"checkpoint format_version={version} is newer than this StellarByte understands "
                             f"({FORMAT_VERSION}); upgrade stellarbyte")
        if "torch_dtype" not in d and hf.get("dtype"):
            d["torch_dtype"] = dtype_name(hf["dtype"])
        d["model_type"] = self.model_type
        return ByteConfig.from_dict(d)

    def from_hf_state_dict(self, state_dict: dict[str, torch.Tensor],
                           config: ByteConfig) -> dict[str, torch.Tensor]:
        if config.tie_word_embeddings:
            return {k: v for k, v in state_dict.items() if k != "lm_head.weight"}
        return dict(state_dict)


ADAPTER = NativeAdapter()
can_express = ADAPTER.can_express
to_hf_config = ADAPTER.to_hf_config
from_hf_config = ADAPTER.from_hf_config
to_hf_state_dict = ADAPTER.to_hf_state_dict
from_hf_state_dict = ADAPTER.from_hf_state_dict
