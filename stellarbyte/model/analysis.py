"""Model analysis: parameter counts, FLOPs, activation and KV-cache memory, and a per-module table.

Every number is a pure function of a ByteConfig (plus batch size, sequence length and dtype); nothing here
allocates weights. The per-module table builds the model on the meta device, so it is free for 70B shapes too.
`model_flops_per_token` is the function MFU code uses.

Conventions (the docs page docs/model_analysis.md restates them):
  * A FLOP is one multiply or one add; a (m x k) @ (k x n) matmul costs 2 m k n. Only matmuls are counted:
    projections, the LM head, and attention's QK^T and AV. Norms, activations, softmax, bias adds and RoPE are
    left out (they are O(hidden) per token against O(hidden^2)), as in Kaplan et al. (2020) and PaLM.
  * Projections cost 2 FLOPs per weight per token. The LM head costs 2 V H per token even when tied (the
    matmul happens either way). The embedding lookup costs nothing.
  * Attention scores cost 2 * 2 * T_ctx * head_dim * num_attention_heads per layer per token (QK^T plus AV),
    where T_ctx is the number of keys a query attends to: `full` (PaLM/Kaplan: T_ctx = T, what a dense
    kernel computes) or `causal` (the mean over query positions of the keys actually visible: (T + 1) / 2).
    A sliding window W caps each query's context at W keys.
  * Training = forward + backward = 3 x forward (backward computes gradients for inputs and for weights, each
    a matmul the size of the forward one). Gradient checkpointing, as ByteModel applies it (per block),
    re-runs each block's forward once more in backward: + 1 forward of the blocks, not of the LM head --
    less one matmul: torch's non-reentrant checkpoint stops recomputing once every tensor backward needs
    exists again, so a block ending in `x + down_proj(h)` (pre-norm or parallel, no LayerScale, dropout or
    DropPath after it) never recomputes down_proj.
  * model_flops_per_token(config, T, training=True) = 6 N + 12 L H Q T_ctx, PaLM (Chowdhery et al., 2022,
    appendix B), with N = weights in matmuls (LM head included, embedding lookup excluded) and the `full`
    context convention capped by the sliding window. It excludes recomputation: that is "model FLOPs", the
    numerator of MFU; counting recomputation gives "hardware FLOPs" (HFU).

Activation memory counts the tensors autograd keeps from forward for backward, as this repository's modules
produce them in eager PyTorch with the model held in `dtype` (no autocast): the accounting follows Korthikanti
et al. (2022), "Reducing Activation Recomputation in Large Transformer Models", tensor by tensor, and
tests/model/test_analysis.py checks it against torch.autograd.graph.saved_tensors_hooks. Weights, gradients,
optimizer state and temporary buffers freed during forward are not activations and are not counted.
`sdpa`/`auto` attention is assumed to run a fused kernel (flash / memory-efficient: O(T) memory, no score
matrix), which is what CUDA does in 16-bit (checked on an H100). In float32 CUDA's SDPA took a path that keeps
more (measured with grouped KV heads): estimate that case with attention_implementation='eager'.

References: Kaplan et al., 2020, "Scaling Laws for Neural Language Models" (C = 6N); Hoffmann et al., 2022,
"Training Compute-Optimal Large Language Models" (Chinchilla, C = 6ND); Chowdhery et al., 2022, "PaLM",
appendix B (MFU); Korthikanti et al., 2022 (activation memory); Dao et al., 2022, FlashAttention (O(T) memory).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import torch

from stellarbyte.config import ByteConfig

# ---- dtypes ----------------------------------------------------------------------------------------------

DTYPE_ALIASES = {
    "float32": "float32", "fp32": "float32", "float": "float32",
    "bfloat16": "bfloat16", "bf16": "bfloat16",
    "float16": "float16", "fp16": "float16", "half": "float16",
    "float8_e4m3fn": "float8_e4m3fn", "fp8": "float8_e4m3fn", "int8": "int8",
}


def dtype_bytes(dtype: str | torch.dtype) -> int:
    """Bytes per element of a dtype name ('bfloat16', 'bf16', 'fp32', ...) or a torch.dtype."""
    if isinstance(dtype, torch.dtype):
        return dtype.itemsize
    name = DTYPE_ALIASES.get(str(dtype).lower().removeprefix("torch."))
    if name is None:
        raise ValueError(f"unknown dtype {dtype!r}: use one of {', '.join(sorted(set(DTYPE_ALIASES)))}")
    return getattr(torch, name).itemsize


def dtype_name(dtype: str | torch.dtype) -> str:
    if isinstance(dtype, torch.dtype):
        return str(dtype).removeprefix("torch.")
    dtype_bytes(dtype)  # validates
    return DTYPE_ALIASES[str(dtype).lower().removeprefix("torch.")]


# ---- parameters ------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ParameterCounts:
    """Parameters by component, summed over all layers. Tied weights count once (in token_embedding)."""

    token_embedding: int  # embed_tokens: V * H
    position_embedding: int  # learned absolute positions: max_position_embeddings * H
    xpos_scale: int  # XPos's learnable per-frequency decay: R / 2 (not an embedding: counted in non_embedding)
    attention: int  # q/k/v/o weights and biases, QK-norm weights
    mlp: int  # gate/up/down weights and biases
    norms: int  # input_layernorm + post_attention_layernorm per layer, and the final norm
    layer_scale: int  # LayerScale gammas, two per layer
    lm_head: int  # V * H, or 0 when tied to embed_tokens
    attention_per_layer: int
    mlp_per_layer: int
    matmul_weights: int  # weights multiplied per token: every projection and the LM head (even when tied)

    @property
    def total(self) -> int:
        return (self.token_embedding + self.position_embedding + self.xpos_scale + self.attention + self.mlp
                + self.norms + self.layer_scale + self.lm_head)

    @property
    def embedding(self) -> int:
        """Token and learned position embeddings plus an untied LM head (the Kaplan 'embedding' parameters)."""
        return self.token_embedding + self.position_embedding + self.lm_head

    @property
    def non_embedding(self) -> int:
        """Kaplan et al.'s N: everything but embeddings, learned positions and the (un)embedding matrix."""
        return self.total - self.embedding

    def by_component(self) -> dict[str, int]:
        return {"token_embedding": self.token_embedding, "position_embedding": self.position_embedding,
                "xpos_scale": self.xpos_scale, "attention": self.attention, "mlp": self.mlp, "norms": self.norms,
                "layer_scale": self.layer_scale, "lm_head": self.lm_head}


def norm_parameters(config: ByteConfig, dim: int) -> int:
    """LayerNorm has a weight and a bias; RMSNorm (plain or offset) only a weight."""
    return 2 * dim if config.norm_type == "layernorm" else dim


def count_parameters(config: ByteConfig) -> ParameterCounts:
    """Analytic parameter counts from the config alone (no module is built)."""
    c = config
    h, d, f = c.hidden_size, c.head_dim, c.intermediate_size
    q_out, kv_out = c.num_attention_heads * d, c.num_key_value_heads * d
    # attention: q (H -> Hq D), k and v (H -> Hkv D), o (Hq D -> H)
    attn_weights = h * q_out + 2 * h * kv_out + q_out * h
    attn = attn_weights + (q_out + 2 * kv_out if c.qkv_bias else 0) + (h if c.attention_out_bias else 0)
    attn += 2 * d if c.qk_norm else 0  # one RMSNorm(head_dim) for q, one for k, shared across heads
    num_mats = 3 if c.mlp_type in ("swiglu", "geglu") else 2  # gate, up, down | up, down
    mlp_weights = num_mats * h * f
    mlp = mlp_weights + ((num_mats - 1) * f + h if c.mlp_bias else 0)  # biases: f per up/gate, h for down
    final_norm = norm_parameters(c, h) if c.norm_scheme == "pre" else 0  # post-norm blocks end normalised
    norms = c.num_hidden_layers * 2 * norm_parameters(c, h) + final_norm
    positions = c.max_position_embeddings * h if c.position_embedding_type == "learned" else 0
    # XPos: one learnable decay rate per rotated pair of dims
    xpos = int(d * c.rope_config.partial_rotary_factor) // 2 if c.position_embedding_type == "xpos" else 0
    layers = c.num_hidden_layers
    return ParameterCounts(
        token_embedding=c.vocab_size * h,
        position_embedding=positions,
        xpos_scale=xpos,
        attention=layers * attn,
        mlp=layers * mlp,
        norms=norms,
        layer_scale=layers * 2 * h if c.layer_scale_init else 0,
        lm_head=0 if c.tie_word_embeddings else c.vocab_size * h,
        attention_per_layer=attn,
        mlp_per_layer=mlp,
        matmul_weights=layers * (attn_weights + mlp_weights) + c.vocab_size * h,
    )


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


# ---- memory ----------------------------------------------------------------------------------------------


def kv_cache_bytes(config: ByteConfig, batch_size: int, seq_len: int, dtype: str | torch.dtype = "bfloat16") -> int:
    """2 (K and V) * L * B * T * Hkv * head_dim * bytes; a sliding window keeps only the last W tokens."""
    _check_shape(config, batch_size, seq_len)
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
            lines += [f"    {i.name:<{width}}  {i.elements:>15,} x {i.bytes_per_element} B = {_bytes(i.bytes)}"
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
    _check_shape(config, batch_size, seq_len)
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


def _check_shape(config: ByteConfig, batch_size: int, seq_len: int) -> None:
    if not isinstance(batch_size, int) or batch_size <= 0:
        raise ValueError(f"batch_size must be a positive integer, got {batch_size!r}")
    if not isinstance(seq_len, int) or seq_len <= 0:
        raise ValueError(f"seq_len must be a positive integer, got {seq_len!r}")
    if seq_len > config.context_length:
        raise ValueError(f"seq_len={seq_len} exceeds the model's context window of {config.context_length} tokens "
                         f"(max_position_embeddings); pass a smaller --seq-len")


# ---- per-module table ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ModuleRow:
    """One module: its dotted name, class, depth, parameters it owns directly or below (tied ones count at
    their first appearance, as model.parameters() does), and the shapes of its direct parameters."""

    name: str
    type: str
    depth: int
    params: int
    shapes: str


def module_table(config: ByteConfig, max_depth: int | None = None, collapse_layers: bool = False) -> list[ModuleRow]:
    """A torchinfo-like listing of ByteModel(config), built on the meta device (no memory, no init cost).

    collapse_layers lists block 0 in full and the other (identical) blocks as one summary row.
    """
    from stellarbyte.model.transformer import ByteModel

    with torch.device("meta"):
        model = ByteModel(config)
    owner: dict[int, str] = {}  # id(param) -> first module name owning it
    for module_name, module in model.named_modules():
        for param in module.parameters(recurse=False):
            owner.setdefault(id(param), module_name)
    rows = []
    layers = config.num_hidden_layers
    for name, module in model.named_modules():
        depth = 0 if not name else name.count(".") + 1
        if max_depth is not None and depth > max_depth:
            continue
        block = name.split(".")[2] if name.startswith("model.layers.") else None  # "3" in model.layers.3.mlp
        if collapse_layers and block is not None and block != "0":
            if name == "model.layers.1":  # one row standing for blocks 1 .. L-1
                per_block = sum(p.numel() for p in module.parameters())
                label = "model.layers.1" if layers == 2 else f"model.layers.1-{layers - 1}"
                rows.append(ModuleRow(label, f"{type(module).__name__} x{layers - 1}",
                                      depth, per_block * (layers - 1), "same as model.layers.0"))
            continue
        prefix = name + "." if name else ""
        count = 0
        for sub_name, sub in module.named_modules():
            full = prefix + sub_name if sub_name else name
            count += sum(p.numel() for p in sub.parameters(recurse=False) if owner[id(p)] == full)
        shapes = []
        for pname, p in module.named_parameters(recurse=False):
            shape = "x".join(str(s) for s in p.shape)
            shapes.append(f"{pname} {shape}" + (f" (tied to {owner[id(p)]})" if owner[id(p)] != name else ""))
        rows.append(ModuleRow(name or "(model)", type(module).__name__, depth, count, ", ".join(shapes)))
    return rows


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
        params = [(name.replace("_", " "), _count(v)) for name, v in p.by_component().items()]
        params += [("total", f"{_count(p.total)}  ({p.total:,})"),
                   ("non-embedding (Kaplan N)", _count(p.non_embedding)),
                   ("in matmuls (LM head incl.)", _count(p.matmul_weights)),
                   ("per layer: attention / mlp", f"{_count(p.attention_per_layer)} / {_count(p.mlp_per_layer)}")]
        tokens = self.batch_size * self.seq_len
        flops = [("attention context (full / causal)", f"{f.context:g} / {fc.context:g} keys per query"),
                 ("forward: projections", _flops(f.projections)),
                 ("forward: attention QK^T + AV (full / causal)", f"{_flops(f.attention)} / {_flops(fc.attention)}"),
                 ("forward: LM head", _flops(f.lm_head)),
                 ("forward total (full / causal)", f"{_flops(f.forward)} / {_flops(fc.forward)}"),
                 ("training = 3x forward (PaLM 6N + 12LHQT)", _flops(f.training)),
                 ("training with gradient checkpointing", _flops(f.training_checkpointed)),
                 ("Kaplan 6N (non-embedding) / Chinchilla 6N (all)",
                  f"{_flops(f.kaplan_6n)} / {_flops(f.chinchilla_6n)}"),
                 (f"training step ({tokens:,} tokens)", _flops(f.training * tokens, per_token=False))]
        memory = [(f"weights ({self.dtype})", _bytes(self.weight_bytes)),
                  (f"KV cache (B={self.batch_size}, T={self.seq_len})", _bytes(self.kv_cache)),
                  ("logits returned by forward (B T V)", _bytes(self.logits_bytes)),
                  ("activations per layer", _bytes(a.per_layer)),
                  ("activations total (no checkpointing)", _bytes(a.total)),
                  ("activations with checkpointing (stored / peak)",
                   f"{_bytes(a.checkpointed_stored)} / {_bytes(a.checkpointed_peak)}")]
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
    _check_shape(config, batch_size, seq_len)
    return ModelReport(
        config=config, batch_size=batch_size, seq_len=seq_len, dtype=dtype_name(dtype),
        params=count_parameters(config),
        flops=count_flops(config, seq_len, "full"),
        causal_flops=count_flops(config, seq_len, "causal"),
        activations=activation_memory(config, batch_size, seq_len, dtype, device),
        kv_cache=kv_cache_bytes(config, batch_size, seq_len, dtype),
        modules=module_table(config, module_depth, collapse_layers) if modules else None,
    )


# ---- human-readable units --------------------------------------------------------------------------------


def _count(n: float) -> str:
    for unit, scale in (("B", 1e9), ("M", 1e6), ("K", 1e3)):
        if abs(n) >= scale:
            return f"{n / scale:.2f}{unit}"
    return f"{n:g}"


def _flops(n: float, per_token: bool = True) -> str:
    for unit, scale in (("P", 1e15), ("T", 1e12), ("G", 1e9), ("M", 1e6), ("K", 1e3)):
        if abs(n) >= scale:
            text = f"{n / scale:.3f} {unit}FLOP"
            break
    else:
        text = f"{n:g} FLOP"
    return text + ("/token" if per_token else "")


def _bytes(n: float) -> str:
    for unit in ("B", "KiB", "MiB", "GiB"):
        if abs(n) < 1024 or unit == "GiB":
            return f"{n:.0f} B" if unit == "B" else f"{n:.2f} {unit}"
        n /= 1024
    raise AssertionError("unreachable")


__all__ = [
    "ActivationItem", "ActivationMemory", "FlopCounts", "ModelReport", "ModuleRow", "ParameterCounts",
    "activation_memory", "analyze", "attention_context", "count_flops", "count_parameters", "dtype_bytes",
    "kv_cache_bytes", "mfu", "model_flops_per_token", "module_table",
]
