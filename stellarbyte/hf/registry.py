"""Which adapter reads a config.json (by model_type) and which one writes a ByteConfig (by its features).

Choice when saving (first that applies), unless family= forces one:
  the config's own model_type, if it names a family that can express it (a loaded Mistral saves as Mistral)
  qk_norm                               -> qwen3
  q/k/v bias without an o bias          -> qwen2
  sliding_window                        -> mistral
  otherwise                             -> llama
  nothing expressible                   -> stellarbyte (our own format)
"""

from __future__ import annotations

from stellarbyte.config import ByteConfig
from stellarbyte.hf import llama, mistral, native, qwen2, qwen3
from stellarbyte.hf.adapter import FamilyAdapter

ADAPTERS: dict[str, FamilyAdapter] = {
    a.model_type: a for a in (llama.ADAPTER, qwen2.ADAPTER, qwen3.ADAPTER, mistral.ADAPTER, native.ADAPTER)
}
HF_FAMILIES = ("llama", "qwen2", "qwen3", "mistral")


def get_adapter(model_type: str | None) -> FamilyAdapter:
    if model_type not in ADAPTERS:
        raise ValueError(f"unsupported model_type {model_type!r} in config.json; StellarByte loads "
                         f"{', '.join(ADAPTERS)}")
    return ADAPTERS[model_type]


def choose_adapter(config: ByteConfig, family: str | None = None) -> FamilyAdapter:
    """The adapter save_pretrained writes `config` with; family= forces one (error if it cannot express it)."""
    if family is not None:
        adapter = get_adapter(family)
        why = adapter.reasons(config)
        if why:
            raise ValueError(f"family={family!r} cannot express this config: {'; '.join(why)}")
        return adapter
    if config.model_type in HF_FAMILIES and ADAPTERS[config.model_type].can_express(config):
        return ADAPTERS[config.model_type]
    if config.qk_norm:
        preferred = "qwen3"
    elif config.qkv_bias and not config.attention_out_bias:
        preferred = "qwen2"
    elif config.sliding_window is not None:
        preferred = "mistral"
    else:
        preferred = "llama"
    for name in (preferred, *HF_FAMILIES):
        if ADAPTERS[name].can_express(config):
            return ADAPTERS[name]
    return ADAPTERS["stellarbyte"]
