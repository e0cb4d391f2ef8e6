"""KV-cache bytes and activation memory, tensor by tensor (Korthikanti et al., 2022), checked against
saved-tensor hooks in tests/model/test_analysis.py."""

from __future__ import annotations

from dataclasses import dataclass

import torch

from stellarbyte.config import ByteConfig
from stellarbyte.model.analysis.units import dtype_bytes, dtype_name, format_bytes

# ---- memory ----------------------------------------------------------------------------------------------


def kv_cache_bytes(config: ByteConfig, batch_size: int, seq_len: int, dtype: str | torch.dtype = "bfloat16") -> int:
    """2 (K and V) * L * B * T * Hkv * head_dim * bytes; a sliding window keeps only the last W tokens."""
    check_shape(config, batch_size, seq_len)
    tokens = seq_len if config.sliding_window is None else min(seq_len, config.sliding_window)
    c = config
    return 2 * c.num_hidden_layers * batch_size * tokens * c.num_key_value_heads * c.head_dim * dtype_bytes(dtype)


@dataclass(frozen=True)
class ActivationItem:
    """One tensor (or a group of identical ones) kept for backward: elements over the batch, bytes each."""

    name: str
    elements: int
    bytes_per_element: int

    @property
    def bytes(self) -> int:
        return self.elements * self.bytes_per_element


@dataclass(frozen=True)
class ActivationMemory:
    """Bytes kept for backward after one forward of a (batch_size, seq_len) training batch."""

    batch_size: int
    seq_len: int
    dtype: str
    layer_items: list[ActivationItem]  # one block (every block is alike)
    shared_items: list[ActivationItem]  # once per forward: token ids, rotary tables, the attention mask
    head_items: list[ActivationItem]  # final norm, LM head input, log-softmax of the loss
    num_layers: int
    hidden_size: int

    @property
    def per_layer(self) -> int:
        return sum(item.bytes for item in self.layer_items)

    @property
    def shared(self) -> int:
        return sum(item.bytes for item in self.shared_items)

    @property
    def head(self) -> int:
        return sum(item.bytes for item in self.head_items)

    @property
    def total(self) -> int:
        """Without checkpointing: every block's activations stay until backward reaches it."""
        return self.num_layers * self.per_layer + self.shared + self.head

    @property
    def checkpointed_stored(self) -> int:
        """With per-block checkpointing, forward keeps only each block's input (B T H) in the model dtype."""
        return self.num_layers * self.batch_size * self.seq_len * self.hidden_size * dtype_bytes(self.dtype) \
            + self.shared + self.head

    @property
    def checkpointed_peak(self) -> int:
        """... plus one block's activations, rebuilt while backward runs through that block."""
        return self.checkpointed_stored + self.per_layer

    def format_items(self) -> str:
        """The inventory: every counted tensor with its element count, bytes per element and total."""
        sections = [(f"per block (x{self.num_layers})", self.layer_items), ("once per forward", self.shared_items),
                    ("head and loss", self.head_items)]
        width = max(len(item.name) for _, items in sections for item in items)
        lines = [f"activations kept for backward (batch {self.batch_size}, seq_len {self.seq_len}, {self.dtype})"]
        for title, items in sections:
            lines.append(f"  {title}")
            lines += [f"    {i.name:<{width}}  {i.elements:>15,} x {i.bytes_per_element} B = {format_bytes(i.bytes)}"
                      for i in items]
        return "\n".join(lines) + "\n"


def _norm_items(config: ByteConfig, prefix: str, tokens: int, b: int, device: str) -> list[ActivationItem]:
    """What a norm over `tokens` rows of hidden_size keeps. RMSNorm computes in float32 (norm.py)."""
    h = config.hidden_size
    if config.norm_type == "layernorm":  # torch keeps mean/rstd in float32 on CUDA, in the input dtype on CPU
        stats = 4 if device == "cuda" else b
        return [ActivationItem(f"{prefix} input", tokens * h, b),
                ActivationItem(f"{prefix} mean, rstd", 2 * tokens, stats)]
    items = [ActivationItem(f"{prefix} input (fp32)", tokens * h, 4),
             ActivationItem(f"{prefix} rsqrt (fp32)", tokens, 4)]
    if config.norm_type == "rmsnorm_offset":  # the (1 + w) product is taken in float32
        return items + [ActivationItem(f"{prefix} normalised (fp32)", tokens * h, 4),
                        ActivationItem(f"{prefix} 1 + weight (fp32)", h, 4)]
    return items + [ActivationItem(f"{prefix} normalised", tokens * h, b)]


def _mlp_items(config: ByteConfig, tokens: int, b: int) -> list[ActivationItem]:
    f = config.intermediate_size
    if config.mlp_type in ("swiglu", "geglu"):
        # act(gate) saves gate; the product saves act(gate) and up; down_proj saves the product
        return [ActivationItem("mlp gate, act(gate), up, act(gate)*up", 4 * tokens * f, b)]
    if config.mlp_type == "gelu":
        return [ActivationItem("mlp up (gelu input), gelu output", 2 * tokens * f, b)]
    # relu2: relu keeps its output, square reads that same tensor, down_proj keeps the square
    return [ActivationItem("mlp relu output, relu^2", 2 * tokens * f, b)]


def _attention_items(config: ByteConfig, batch_size: int, seq_len: int, b: int, mask_b: int) -> list[ActivationItem]:
    c = config
    n = batch_size * seq_len
    hq, hkv, d = c.num_attention_heads, c.num_key_value_heads, c.head_dim
    items = []
    if c.qk_norm:  # RMSNorm over head_dim, like the block norms but per head
        items += [ActivationItem("q_norm/k_norm input (fp32)", n * (hq + hkv) * d, 4),
                  ActivationItem("q_norm/k_norm rsqrt (fp32)", n * (hq + hkv), 4),
                  ActivationItem("q_norm/k_norm normalised", n * (hq + hkv) * d, b)]
    rotary = int(d * c.rope_config.partial_rotary_factor)
    if c.position_embedding_type == "rope" and b != 4:
        items.append(ActivationItem("cos, sin cast to the model dtype", 2 * n * rotary, b))
    if c.position_embedding_type == "xpos":  # the learnable scale needs the rotated q and k
        items.append(ActivationItem("xpos rotated q, k (before the decay)", n * (hq + hkv) * rotary, b))
        if b != 4:
            items.append(ActivationItem("cos, sin, xpos scales cast to the model dtype", 4 * n * rotary, b))
    if c.attention_implementation == "eager":
        scores = batch_size * hq * seq_len * seq_len  # the full (T, T) matrix, masked entries included
        items += [ActivationItem("q, k and v (repeated to all query heads)", 3 * n * hq * d, b),
                  ActivationItem("softmax probabilities (fp32)", scores, 4)]
        if c.attention_dropout:
            items += [ActivationItem("attention dropout mask", scores, mask_b),
                      ActivationItem("dropped-out probabilities", scores, b)]
        elif b != 4:
            items.append(ActivationItem("probabilities cast to the model dtype", scores, b))
        if c.sliding_window is None and c.position_embedding_type != "alibi":
            items.append(ActivationItem("causal mask (bool, per layer)", seq_len * seq_len, 1))
        items.append(ActivationItem("attention output (o_proj input)", n * hq * d, b))
    else:  # sdpa / flash: O(T) memory, no score matrix
        items += [ActivationItem("q", n * hq * d, b), ActivationItem("k, v", 2 * n * hkv * d, b),
                  ActivationItem("attention output (o_proj input)", n * hq * d, b),
                  ActivationItem("softmax log-sum-exp (fp32)", n * hq, 4)]
        if rotary < d and c.position_embedding_type in ("rope", "xpos"):
            # torch.cat of rotated and passed-through dims yields q in (B, H, T, D) order, so SDPA's output is
            # too, and o_proj's (B, T, H*D) input becomes a copy instead of a view
            items.append(ActivationItem("o_proj input (copy)", n * hq * d, b))
    return items


def _branch_items(config: ByteConfig, name: str, tokens: int, b: int, mask_b: int) -> list[ActivationItem]:
    """Dropout and LayerScale on a residual branch (DropPath keeps a (B,) mask: not counted)."""
    items = []
    if config.hidden_dropout:
        items.append(ActivationItem(f"{name} dropout mask", tokens * config.hidden_size, mask_b))
    if config.layer_scale_init:
        items.append(ActivationItem(f"{name} LayerScale input", tokens * config.hidden_size, b))
    return items


def activation_memory(config: ByteConfig, batch_size: int, seq_len: int,
                      dtype: str | torch.dtype = "bfloat16", device: str = "cuda") -> ActivationMemory:
    """Activation bytes of one training forward, per block and in total (see the module docstring).

    device matters for two small items: dropout masks are bool (1 byte) on CUDA but in the model dtype on
    CPU, and LayerNorm's mean/rstd are float32 on CUDA but in the model dtype on CPU.
    """
    check_shape(config, batch_size, seq_len)
    if device not in ("cuda", "cpu"):
        raise ValueError(f"device must be 'cuda' or 'cpu', got {device!r}")
    c = config
    b = dtype_bytes(dtype)
    mask_b = 1 if device == "cuda" else b
    n = batch_size * seq_len
    h = c.hidden_size
    attn_norm = _norm_items(c, "input_layernorm", n, b, device)
    mlp_norm = _norm_items(c, "post_attention_layernorm", n, b, device)
    # a parallel block feeds one x to both norms; a norm that keeps x itself (LayerNorm, or RMSNorm already
    # in float32) then shares it, while RMSNorm in 16 bits keeps two separate float32 copies
    if c.parallel_residual and (c.norm_type == "layernorm" or b == 4):
        mlp_norm = mlp_norm[1:]
    layer = (attn_norm + [ActivationItem("q/k/v projection input", n * h, b)]
             + _attention_items(c, batch_size, seq_len, b, mask_b) + _branch_items(c, "attention branch", n, b, mask_b)
             + mlp_norm + [ActivationItem("mlp input", n * h, b)] + _mlp_items(c, n, b)
             + _branch_items(c, "mlp branch", n, b, mask_b))

    shared = [ActivationItem("input ids (int64)", n, 8)]
    if c.position_embedding_type == "learned":
        shared.append(ActivationItem("position ids (int64, shared by the batch)", seq_len, 8))
    if c.embedding_dropout:
        shared.append(ActivationItem("embedding dropout mask", n * h, mask_b))
    rotary = int(c.head_dim * c.rope_config.partial_rotary_factor)
    if c.position_embedding_type in ("rope", "xpos") and b == 4:
        shared.append(ActivationItem("cos, sin tables", 2 * n * rotary, 4))
    if c.position_embedding_type == "xpos":  # the learnable decay's own graph, in float32 (position.py)
        shared += [ActivationItem("xpos log(zeta)", (1 if b == 4 else 2) * rotary // 2, 4),
                   ActivationItem("xpos exponent, exp(.)", n + n * rotary // 2, 4),
                   ActivationItem("xpos q and k scales", (3 if b == 4 else 1) * n * rotary, 4)]
    if c.attention_implementation != "eager":
        if c.position_embedding_type == "alibi":
            shared.append(ActivationItem("ALiBi bias + causal mask", c.num_attention_heads * seq_len * seq_len, b))
        elif c.sliding_window is not None and seq_len > c.sliding_window:
            shared.append(ActivationItem("sliding-window mask", seq_len * seq_len, b))

    head = _norm_items(c, "final norm", n, b, device) if c.norm_scheme == "pre" else []
    targets = batch_size * (seq_len - 1)  # the loss is shifted: T - 1 predictions per row
    head += [ActivationItem("lm_head input", n * h, b),
             ActivationItem("log-softmax of the logits (fp32)", targets * c.vocab_size, 4),
             ActivationItem("shifted labels (int64)", targets, 8)]
    return ActivationMemory(batch_size, seq_len, dtype_name(dtype), layer, shared, head, c.num_hidden_layers, h)


def check_shape(config: ByteConfig, batch_size: int, seq_len: int) -> None:
    if not isinstance(batch_size, int) or batch_size <= 0:
        raise ValueError(f"batch_size must be a positive integer, got {batch_size!r}")
    if not isinstance(seq_len, int) or seq_len <= 0:
        raise ValueError(f"seq_len must be a positive integer, got {seq_len!r}")
    if seq_len > config.context_length:
        raise ValueError(f"seq_len={seq_len} exceeds the model's context window of {config.context_length} tokens "
                         f"(max_position_embeddings); pass a smaller --seq-len")
