"""Named model shapes for the layer, model, roofline and profile benchmarks (Llama-style: GQA, SwiGLU, RMSNorm)."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class BenchConfig:
    hidden: int
    heads: int
    kv_heads: int
    ffn: int
    layers: int
    vocab: int
    seq: int
    batch: int

    @property
    def head_dim(self) -> int:
        return self.hidden // self.heads

    def byte_config_kwargs(self) -> dict:
        """Arguments for stellarbyte.ByteConfig."""
        return dict(vocab_size=self.vocab, hidden_size=self.hidden, intermediate_size=self.ffn,
                    num_hidden_layers=self.layers, num_attention_heads=self.heads, num_key_value_heads=self.kv_heads,
                    max_position_embeddings=max(self.seq, 2048))


CONFIGS: dict[str, BenchConfig] = {
    "tiny": BenchConfig(hidden=128, heads=4, kv_heads=2, ffn=352, layers=2, vocab=1000, seq=64, batch=2),
    "gpt2-124m-like": BenchConfig(hidden=768, heads=12, kv_heads=12, ffn=2048, layers=12, vocab=50304, seq=1024,
                                  batch=8),
    "llama-1b": BenchConfig(hidden=2048, heads=32, kv_heads=8, ffn=8192, layers=16, vocab=128256, seq=2048, batch=4),
    "llama-8b": BenchConfig(hidden=4096, heads=32, kv_heads=8, ffn=14336, layers=32, vocab=128256, seq=4096, batch=1),
}


def get_config(name: str) -> BenchConfig:
    if name not in CONFIGS:
        raise ValueError(f"unknown config {name!r}; choose one of {', '.join(CONFIGS)}")
    return CONFIGS[name]
