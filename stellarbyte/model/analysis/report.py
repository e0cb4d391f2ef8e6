"""ModelReport: every number for one config, and `analyze`, which computes them."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from stellarbyte.config import ByteConfig
from stellarbyte.model.analysis.flops import FlopCounts, count_flops
from stellarbyte.model.analysis.memory import ActivationMemory, activation_memory, check_shape, kv_cache_bytes
from stellarbyte.model.analysis.modules import ModuleRow, module_table
from stellarbyte.model.analysis.params import ParameterCounts, count_parameters
from stellarbyte.model.analysis.units import dtype_bytes, dtype_name, format_bytes, format_count, format_flops

# ---- the report ------------------------------------------------------------------------------------------


@dataclass
class ModelReport:
    config: ByteConfig
    batch_size: int
    seq_len: int
    dtype: str
    params: ParameterCounts
    flops: FlopCounts
    causal_flops: FlopCounts
    activations: ActivationMemory
    kv_cache: int
    modules: list[ModuleRow] | None = field(default=None)

    @property
    def weight_bytes(self) -> int:
        return self.params.total * dtype_bytes(self.dtype)

    @property
    def logits_bytes(self) -> int:
        """The (B, T, V) logits forward returns: live beside the activations until the caller drops them."""
        return self.batch_size * self.seq_len * self.config.vocab_size * dtype_bytes(self.dtype)

    def sections(self) -> list[tuple[str, list[tuple[str, str]]]]:
        """(title, [(label, value)]) -- shared by the markdown and the plain-text renderings."""
        c, p, f, fc, a = self.config, self.params, self.flops, self.causal_flops, self.activations
        shape = (f"{c.num_hidden_layers} layers, hidden {c.hidden_size}, {c.num_attention_heads} heads "
                 f"({c.num_key_value_heads} KV, head_dim {c.head_dim}), {c.mlp_type} {c.intermediate_size}, "
                 f"vocab {c.vocab_size}, {c.position_embedding_type} positions, {c.norm_scheme}-{c.norm_type}"
                 + (", tied embeddings" if c.tie_word_embeddings else "")
                 + (f", sliding window {c.sliding_window}" if c.sliding_window else ""))
        params = [(name.replace("_", " "), format_count(v)) for name, v in p.by_component().items()]
        params += [("total", f"{format_count(p.total)}  ({p.total:,})"),
                   ("non-embedding (Kaplan N)", format_count(p.non_embedding)),
                   ("in matmuls (LM head incl.)", format_count(p.matmul_weights)),
                   ("per layer: attention / mlp",
                    f"{format_count(p.attention_per_layer)} / {format_count(p.mlp_per_layer)}")]
        tokens = self.batch_size * self.seq_len
        flops = [("attention context (full / causal)", f"{f.context:g} / {fc.context:g} keys per query"),
                 ("forward: projections", format_flops(f.projections)),
                 ("forward: attention QK^T + AV (full / causal)",
                  f"{format_flops(f.attention)} / {format_flops(fc.attention)}"),
                 ("forward: LM head", format_flops(f.lm_head)),
                 ("forward total (full / causal)", f"{format_flops(f.forward)} / {format_flops(fc.forward)}"),
                 ("training = 3x forward (PaLM 6N + 12LHQT)", format_flops(f.training)),
                 ("training with gradient checkpointing", format_flops(f.training_checkpointed)),
                 ("Kaplan 6N (non-embedding) / Chinchilla 6N (all)",
                  f"{format_flops(f.kaplan_6n)} / {format_flops(f.chinchilla_6n)}"),
                 (f"training step ({tokens:,} tokens)", format_flops(f.training * tokens, per_token=False))]
        memory = [(f"weights ({self.dtype})", format_bytes(self.weight_bytes)),
                  (f"KV cache (B={self.batch_size}, T={self.seq_len})", format_bytes(self.kv_cache)),
                  ("logits returned by forward (B T V)", format_bytes(self.logits_bytes)),
                  ("activations per layer", format_bytes(a.per_layer)),
                  ("activations total (no checkpointing)", format_bytes(a.total)),
                  ("activations with checkpointing (stored / peak)",
                   f"{format_bytes(a.checkpointed_stored)} / {format_bytes(a.checkpointed_peak)}")]
        return [("model", [("shape", shape)]), ("parameters", params),
                (f"FLOPs per token at T={self.seq_len}", flops),
                (f"memory ({self.dtype}, batch {self.batch_size}, seq_len {self.seq_len}, {c.attention_implementation}"
                 " attention)", memory)]

    def to_dict(self) -> dict[str, Any]:
        """The headline numbers as plain JSON-ready values (bytes, FLOPs per token, parameter counts)."""
        p, f, fc, a = self.params, self.flops, self.causal_flops, self.activations
        return {
            "batch_size": self.batch_size, "seq_len": self.seq_len, "dtype": self.dtype,
            "params": {**p.by_component(), "total": p.total, "non_embedding": p.non_embedding,
                       "matmul_weights": p.matmul_weights},
            "flops_per_token": {"forward": f.forward, "forward_causal": fc.forward, "attention": f.attention,
                                "attention_causal": fc.attention, "training": f.training,
                                "training_checkpointed": f.training_checkpointed, "kaplan_6n": f.kaplan_6n,
                                "chinchilla_6n": f.chinchilla_6n},
            "memory_bytes": {"weights": self.weight_bytes, "kv_cache": self.kv_cache, "logits": self.logits_bytes,
                             "activations_per_layer": a.per_layer, "activations_total": a.total,
                             "activations_checkpointed_stored": a.checkpointed_stored,
                             "activations_checkpointed_peak": a.checkpointed_peak},
        }

    def format_table(self) -> str:
        lines = []
        for title, rows in self.sections():
            lines.append(title)
            width = max(len(label) for label, _ in rows)
            lines += [f"  {label:<{width}}  {value}" for label, value in rows]
            lines.append("")
        if self.modules is not None:
            lines.append(format_modules(self.modules))
        return "\n".join(lines).rstrip() + "\n"

    def to_markdown(self) -> str:
        out = []
        for title, rows in self.sections():
            out += [f"### {title}", "", "| | |", "| --- | --- |"]
            out += [f"| {label} | {value} |" for label, value in rows]
            out.append("")
        if self.modules is not None:
            out += ["### modules", "", "| module | type | params | shapes |", "| --- | --- | ---: | --- |"]
            out += [f"| {r.name} | {r.type} | {r.params:,} | {r.shapes} |" for r in self.modules]
        return "\n".join(out).rstrip() + "\n"


def format_modules(rows: list[ModuleRow]) -> str:
    names = ["  " * r.depth + r.name.rsplit(".", 1)[-1] if r.depth else r.name for r in rows]
    w_name = max(len(n) for n in names + ["module"])
    w_type = max(len(r.type) for r in rows)
    lines = [f"{'module':<{w_name}}  {'type':<{w_type}}  {'params':>13}  shapes"]
    lines += [f"{n:<{w_name}}  {r.type:<{w_type}}  {r.params:>13,}  {r.shapes}" for n, r in zip(names, rows)]
    return "\n".join(lines)


def analyze(config: ByteConfig, batch_size: int = 1, seq_len: int | None = None, dtype: str = "bfloat16",
            modules: bool = False, module_depth: int | None = None, collapse_layers: bool = True,
            device: str = "cuda") -> ModelReport:
    """All the numbers for one config; seq_len defaults to max_position_embeddings.

    modules=True adds the per-module table (module_depth limits its depth; collapse_layers shows block 0 and
    one summary row for the others); device ('cuda' or 'cpu') picks the activation accounting's backend.
    """
    seq_len = config.max_position_embeddings if seq_len is None else seq_len
    check_shape(config, batch_size, seq_len)
    return ModelReport(
        config=config, batch_size=batch_size, seq_len=seq_len, dtype=dtype_name(dtype),
        params=count_parameters(config),
        flops=count_flops(config, seq_len, "full"),
        causal_flops=count_flops(config, seq_len, "causal"),
        activations=activation_memory(config, batch_size, seq_len, dtype, device),
        kv_cache=kv_cache_bytes(config, batch_size, seq_len, dtype),
        modules=module_table(config, module_depth, collapse_layers) if modules else None,
    )
