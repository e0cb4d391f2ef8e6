"""Hugging Face interoperability: checkpoints transformers loads unchanged, and HF checkpoints we load.

  checkpoint.py        save_pretrained / load_pretrained (atomic, sharded safetensors, clear errors)
  registry.py          model_type -> adapter; which family a ByteConfig saves as
  adapter.py           what every family adapter shares (config + state-dict maps)
  llama.py qwen2.py qwen3.py mistral.py native.py     one small adapter per family
  rope.py              rope_parameters (transformers 5) / rope_scaling + rope_theta (4.x) <-> RoPEConfig
  weights.py           safetensors files, shards and index
  generation_config.py generation_config.json
  parity.py            `python -m stellarbyte.hf.parity`: the logits / greedy parity table vs transformers
"""

from stellarbyte.hf.checkpoint import load_pretrained, save_pretrained

__all__ = ["load_pretrained", "save_pretrained"]
