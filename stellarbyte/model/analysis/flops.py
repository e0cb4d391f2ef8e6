"""Matmul FLOPs per token (forward, training, checkpointed) and the MFU numerator (PaLM appendix B).

Conventions: see the package docstring (stellarbyte/model/analysis/__init__.py)."""

from __future__ import annotations

from dataclasses import dataclass

from stellarbyte.config import ByteConfig
from stellarbyte.model.analysis.params import count_parameters

# ---- FLOPs -----------------------------------------------------------------------------------------------

CONTEXT_CONVENTIONS = ("full", "causal")


def attention_context(seq_len: int, sliding_window: int | None = None, convention: str = "full") -> float:
    """Mean number of keys per query in a sequence of seq_len tokens.

    full:   min(T, W)                                   -- what a dense (masked) kernel computes
    causal: (1 / T) * sum_{i=1..T} min(i, W)            -- keys a causal query actually sees; (T + 1) / 2
            when no window is in effect
    """
    if convention not in CONTEXT_CONVENTIONS:
        raise ValueError(f"unknown attention context convention {convention!r}: use 'full' or 'causal'")
    if seq_len <= 0:
        raise ValueError(f"seq_len must be a positive number of tokens, got {seq_len}")
    w = seq_len if sliding_window is None else min(sliding_window, seq_len)
    if convention == "full":
        return float(w)
    # queries 1..w see 1..w keys; the remaining T - w queries see w keys each
    return (w * (w + 1) / 2 + (seq_len - w) * w) / seq_len


@dataclass(frozen=True)
class FlopCounts:
    """FLOPs per token at a given sequence length (multiply by batch * seq_len for one step)."""

    seq_len: int
    convention: str  # full | causal (see attention_context)
    context: float  # mean keys per query
    projections: float  # 2 * block matmul weights
    attention: float  # 4 * L * Hq * D * context
    lm_head: float  # 2 * V * H
    non_embedding_params: int  # for the Kaplan approximation
    total_params: int  # for the Chinchilla approximation
    not_recomputed: float = 0.0  # block matmuls checkpointing's early stop skips (see module docstring)

    @property
    def forward(self) -> float:
        return self.projections + self.attention + self.lm_head

    @property
    def blocks_forward(self) -> float:
        return self.projections + self.attention

    @property
    def training(self) -> float:
        """forward + backward (2 x forward): 3 x forward."""
        return 3 * self.forward

    @property
    def training_checkpointed(self) -> float:
        """Per-block gradient checkpointing re-runs the blocks' forward in backward (not the LM head), less
        the final down_proj of blocks whose output no backward op needs (torch's early stop)."""
        return self.training + self.blocks_forward - self.not_recomputed

    @property
    def kaplan_6n(self) -> float:
        """Kaplan et al.: C ~ 6 N per training token, N = non-embedding parameters, attention context ignored."""
        return 6.0 * self.non_embedding_params

    @property
    def chinchilla_6n(self) -> float:
        """Hoffmann et al.: C ~ 6 N D with N = all parameters; per token 6 N."""
        return 6.0 * self.total_params


def count_flops(config: ByteConfig, seq_len: int, convention: str = "full") -> FlopCounts:
    """Matmul FLOPs per token for forward and training at sequence length seq_len (see module docstring)."""
    c = config
    params = count_parameters(c)
    context = attention_context(seq_len, c.sliding_window, convention)
    lm_head_weights = c.vocab_size * c.hidden_size
    return FlopCounts(
        not_recomputed=2.0 * c.hidden_size * c.intermediate_size * _blocks_ending_in_down_proj(c),
        seq_len=seq_len,
        convention=convention,
        context=context,
        projections=2.0 * (params.matmul_weights - lm_head_weights),
        attention=4.0 * c.num_hidden_layers * c.num_attention_heads * c.head_dim * context,
        lm_head=2.0 * lm_head_weights,
        non_embedding_params=params.non_embedding,
        total_params=params.total,
    )


def _blocks_ending_in_down_proj(config: ByteConfig) -> int:
    """Blocks whose last op is `x + down_proj(h)`: nothing saved for backward reads down_proj's output, so
    checkpoint recomputation stops before it. Post-norm ends in a norm (which saves its input); LayerScale,
    hidden dropout and DropPath save tensors made after down_proj. DropPath's rate grows with depth from 0
    (block.py), so block 0 never has one."""
    c = config
    if c.norm_scheme != "pre" or c.layer_scale_init or c.hidden_dropout:
        return 0
    return 1 if c.drop_path_rate > 0 else c.num_hidden_layers


def model_flops_per_token(config: ByteConfig, seq_len: int, training: bool = True) -> float:
    """PaLM-style model FLOPs per token: 6 N + 12 L H Q T for training, 2 N + 4 L H Q T for inference.

    N = weights in matmuls (projections + LM head, tied or not); T = seq_len capped by the sliding window
    (the `full` convention, as PaLM and nanoGPT's MFU); no recomputation. MFU = this * tokens/s / peak FLOP/s.
    """
    flops = count_flops(config, seq_len, "full")
    return flops.training if training else flops.forward


def mfu(config: ByteConfig, seq_len: int, tokens_per_second: float, peak_flops_per_second: float) -> float:
    """Model FLOPs utilisation (PaLM): model_flops_per_token * training tokens/s / the hardware's peak FLOP/s."""
    if peak_flops_per_second <= 0:
        raise ValueError(f"peak_flops_per_second must be positive (e.g. 989e12 for an H100 in bf16), "
                         f"got {peak_flops_per_second}")
    return model_flops_per_token(config, seq_len, training=True) * tokens_per_second / peak_flops_per_second
