"""Position information: rotary (with context-extension variants), XPos, ALiBi, learned and sinusoidal.

Each scheme is a small module with the same three hooks, so the decoder never branches on the scheme:
  embed(position_ids)           -> (B, T, hidden) added to the token embeddings, or None
  rotary(position_ids)          -> RotaryTables applied to q and k inside attention, or None
  attention_bias(q_slots, k_slots) -> (1, H, T, S) added to attention scores, or None

References
  RoPE    Su et al., 2021, "RoFormer"                          (rotate_half layout as in transformers' Llama)
  linear  Chen et al., 2023, "Extending Context Window ... via Positional Interpolation"
  dynamic bloc97 / emozilla, 2023, "Dynamically Scaled RoPE" (NTK-aware base change)
  YaRN    Peng et al., 2023, "YaRN: Efficient Context Window Extension"
  llama3  Meta, 2024, Llama 3.1 rope scaling (piecewise by wavelength)
  XPos    Sun et al., 2022, "A Length-Extrapolatable Transformer"
  ALiBi   Press et al., 2021, "Train Short, Test Long"
The frequency formulas follow transformers' modeling_rope_utils so HF checkpoints give identical logits.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import nn

from stellarbyte import kernels
from stellarbyte.config import ByteConfig, RoPEConfig
from stellarbyte.model.tracing import is_tracing


@dataclass
class RotaryTables:
    """cos/sin of shape (B, T, R) (R = rotated dims); XPos adds per-position scales of the same shape."""

    cos: torch.Tensor
    sin: torch.Tensor
    q_scale: torch.Tensor | None = None
    k_scale: torch.Tensor | None = None


def rotate_half(x: torch.Tensor) -> torch.Tensor:
    x1, x2 = x.chunk(2, dim=-1)
    return torch.cat((-x2, x1), dim=-1)


def apply_rotary(q: torch.Tensor, k: torch.Tensor, tables: RotaryTables) -> tuple[torch.Tensor, torch.Tensor]:
    """Rotate the first R dims of q (B, Hq, T, D) and k (B, Hkv, T, D); dims beyond R pass through."""
    if tables.q_scale is None and tables.cos.dim() == 3:  # plain RoPE: the kernel registry's apply_rope
        return kernels.apply_rope(q, k, tables.cos, tables.sin)
    cos = tables.cos.unsqueeze(1).to(q.dtype)  # (B, 1, T, R)
    sin = tables.sin.unsqueeze(1).to(q.dtype)
    rot = cos.shape[-1]
    q_rot, q_pass = q[..., :rot], q[..., rot:]
    k_rot, k_pass = k[..., :rot], k[..., rot:]
    q_rot = q_rot * cos + rotate_half(q_rot) * sin
    k_rot = k_rot * cos + rotate_half(k_rot) * sin
    if tables.q_scale is not None:  # XPos: q grows and k shrinks with position, so q.k decays with distance
        q_rot = q_rot * tables.q_scale.unsqueeze(1).to(q.dtype)
        k_rot = k_rot * tables.k_scale.unsqueeze(1).to(k.dtype)
    if rot == q.shape[-1]:
        return q_rot, k_rot
    return torch.cat((q_rot, q_pass), dim=-1), torch.cat((k_rot, k_pass), dim=-1)


# ---- inverse frequencies of each rope_type ------------------------------------------------------------


def default_inv_freq(dim: int, theta: float) -> torch.Tensor:
    return 1.0 / (theta ** (torch.arange(0, dim, 2, dtype=torch.int64).float() / dim))


def rope_inv_freq(rope: RoPEConfig, dim: int, max_position_embeddings: int,
                  seq_len: int | None = None) -> tuple[torch.Tensor, float]:
    """Inverse frequencies (dim/2,) and the attention scaling applied to cos/sin, per rope_type."""
    base = default_inv_freq(dim, rope.rope_theta)
    if rope.rope_type == "default":
        return base, 1.0
    if rope.rope_type == "linear":
        return base / rope.factor, 1.0
    if rope.rope_type == "dynamic":
        seq_len = max(seq_len or max_position_embeddings, max_position_embeddings)
        theta = rope.rope_theta * ((rope.factor * seq_len / max_position_embeddings) - (rope.factor - 1)) ** (
            dim / (dim - 2))
        return default_inv_freq(dim, theta), 1.0
    if rope.rope_type == "yarn":
        return _yarn_inv_freq(rope, dim, max_position_embeddings)
    if rope.rope_type == "llama3":
        return _llama3_inv_freq(rope, base, max_position_embeddings), 1.0
    raise ValueError(f"unknown rope_type {rope.rope_type!r}")


def _yarn_inv_freq(rope: RoPEConfig, dim: int, max_position_embeddings: int) -> tuple[torch.Tensor, float]:
    original = rope.original_max_position_embeddings or max_position_embeddings
    factor = rope.factor

    def mscale(scale: float, m: float = 1.0) -> float:
        return 1.0 if scale <= 1 else 0.1 * m * math.log(scale) + 1.0

    attention_factor = rope.attention_factor
    if attention_factor is None:
        if rope.mscale and rope.mscale_all_dim:
            attention_factor = mscale(factor, rope.mscale) / mscale(factor, rope.mscale_all_dim)
        else:
            attention_factor = mscale(factor)

    # dimension index at which a frequency completes `rotations` turns over the original context
    def correction_dim(rotations: float) -> float:
        return dim * math.log(original / (rotations * 2 * math.pi)) / (2 * math.log(rope.rope_theta))

    low, high = correction_dim(rope.beta_fast), correction_dim(rope.beta_slow)
    if rope.truncate:
        low, high = math.floor(low), math.ceil(high)
    low, high = max(low, 0), min(high, dim - 1)
    if low == high:
        high += 0.001  # avoid a zero-width ramp
    ramp = ((torch.arange(dim // 2, dtype=torch.float32) - low) / (high - low)).clamp(0, 1)
    pos_freqs = rope.rope_theta ** (torch.arange(0, dim, 2).float() / dim)
    extrapolation, interpolation = 1.0 / pos_freqs, 1.0 / (factor * pos_freqs)
    keep = 1 - ramp  # 1: high-frequency dims keep their original frequency; 0: interpolate fully
    return interpolation * (1 - keep) + extrapolation * keep, float(attention_factor)


def _llama3_inv_freq(rope: RoPEConfig, inv_freq: torch.Tensor, max_position_embeddings: int) -> torch.Tensor:
    original = rope.original_max_position_embeddings or max_position_embeddings
    low_wavelen = original / rope.low_freq_factor
    high_wavelen = original / rope.high_freq_factor
    wavelen = 2 * math.pi / inv_freq
    scaled = torch.where(wavelen > low_wavelen, inv_freq / rope.factor, inv_freq)
    smooth = (original / wavelen - rope.low_freq_factor) / (rope.high_freq_factor - rope.low_freq_factor)
    smoothed = (1 - smooth) * scaled / rope.factor + smooth * scaled
    medium = (wavelen >= high_wavelen) & (wavelen <= low_wavelen)
    return torch.where(medium, smoothed, scaled)


# ---- the position modules -----------------------------------------------------------------------------


class PositionEncoding(nn.Module):
    """Base: no position information. Subclasses override the hooks they use."""

    def embed(self, position_ids: torch.Tensor) -> torch.Tensor | None:
        return None

    def rotary(self, position_ids: torch.Tensor) -> RotaryTables | None:
        return None

    def reserve(self, length: int, device: torch.device) -> None:
        """Precompute tables for positions [0, length) on device (schemes without tables: nothing to do)."""

    def attention_bias(self, q_slots: torch.Tensor, k_slots: torch.Tensor) -> torch.Tensor | None:
        return None


class RotaryEmbedding(PositionEncoding):
    """RoPE with cos/sin tables cached for positions [0, cached_len) and grown (doubling) on demand.

    For `dynamic` the frequencies themselves depend on the sequence length; the table is rebuilt when the
    length outgrows it and reset when a short sequence comes back, with the same rule as transformers.
    """

    def __init__(self, config: ByteConfig) -> None:
        super().__init__()
        self.rope = config.rope_config
        self.dim = int(config.head_dim * self.rope.partial_rotary_factor)
        self.max_position_embeddings = config.max_position_embeddings
        # Plain float32 attributes, not buffers: model.to(bfloat16) must not round the frequencies.
        self.inv_freq, self.attention_scaling = rope_inv_freq(self.rope, self.dim, self.max_position_embeddings)
        self.cos_cached = self.sin_cached = torch.empty(0, self.dim)
        self.dynamic_len = self.max_position_embeddings  # the length `dynamic` frequencies were built for

    def _build(self, length: int, device: torch.device) -> None:
        self.inv_freq = self.inv_freq.to(device)
        t = torch.arange(length, device=device, dtype=torch.float32)
        freqs = torch.outer(t, self.inv_freq)  # (L, R/2)
        emb = torch.cat((freqs, freqs), dim=-1)  # (L, R): rotate_half layout
        self.cos_cached = emb.cos() * self.attention_scaling
        self.sin_cached = emb.sin() * self.attention_scaling

    def _update_dynamic(self, seq_len: int) -> None:
        grow = seq_len > self.dynamic_len
        reset = seq_len < self.max_position_embeddings < self.dynamic_len
        if grow or reset:
            self.dynamic_len = seq_len if grow else self.max_position_embeddings
            self.inv_freq, _ = rope_inv_freq(self.rope, self.dim, self.max_position_embeddings, self.dynamic_len)
            self.cos_cached = self.cos_cached[:0]  # frequencies changed: the table must be rebuilt

    def reserve(self, length: int, device: torch.device) -> None:
        if length > self.cos_cached.shape[0] or self.cos_cached.device != device:
            if self.rope.rope_type == "dynamic":
                self._update_dynamic(length)
            self._build(length, device)

    def tables(self, position_ids: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        if is_tracing():  # no host reads: use (and if need be build, at a static size) the reserved table
            if self.cos_cached.shape[0] < self.max_position_embeddings or self.cos_cached.device != position_ids.device:
                self._build(self.max_position_embeddings, position_ids.device)
            return self.cos_cached[position_ids], self.sin_cached[position_ids]
        needed = int(position_ids.max()) + 1 if position_ids.numel() else 1
        if self.rope.rope_type == "dynamic":
            self._update_dynamic(needed)
        if needed > self.cos_cached.shape[0] or self.cos_cached.device != position_ids.device:
            self._build(max(needed, 2 * self.cos_cached.shape[0], 256), position_ids.device)
        return self.cos_cached[position_ids], self.sin_cached[position_ids]  # (B, T, R) each

    def rotary(self, position_ids: torch.Tensor) -> RotaryTables:
        cos, sin = self.tables(position_ids)
        return RotaryTables(cos, sin)


class XPosEmbedding(RotaryEmbedding):
    """XPos: RoPE times a per-dimension decay zeta_i^(n / scale_base) on q and its inverse on k.

    zeta_i = (2i/R + 0.4) / 1.4 as in the paper, stored as a learnable parameter (clamped to (0, 1]) so
    training can tune how fast each frequency's attention decays with distance. Positions are centred on
    max_position_embeddings / 2 before exponentiation: q.k only depends on n - m, and centring keeps both
    scales near 1 in low precision.
    """

    def __init__(self, config: ByteConfig) -> None:
        super().__init__(config)
        self.scale_base = config.xpos_scale_base
        self.center = config.max_position_embeddings // 2
        zeta = (torch.arange(0, self.dim, 2, dtype=torch.float32) + 0.4 * self.dim) / (1.4 * self.dim)
        self.scale = nn.Parameter(zeta)  # (R/2,)

    def rotary(self, position_ids: torch.Tensor) -> RotaryTables:
        cos, sin = self.tables(position_ids)
        power = (position_ids.float() - self.center).unsqueeze(-1) / self.scale_base  # (B, T, 1)
        log_zeta = torch.log(self.scale.float().clamp(1e-4, 1.0))
        q_scale = torch.exp(power * log_zeta).repeat(1, 1, 2)  # (B, T, R)
        return RotaryTables(cos, sin, q_scale=q_scale, k_scale=1.0 / q_scale)


def alibi_slopes(num_heads: int) -> torch.Tensor:
    """Geometric slopes 2^(-8h/n); for n not a power of two, interleave those of the next power (paper, A)."""

    def power_of_two(n: int) -> list[float]:
        start = 2 ** (-8 / n)
        return [start ** (i + 1) for i in range(n)]

    if math.log2(num_heads).is_integer():
        return torch.tensor(power_of_two(num_heads))
    closest = 2 ** math.floor(math.log2(num_heads))
    extra = power_of_two(2 * closest)[0::2][: num_heads - closest]
    return torch.tensor(power_of_two(closest) + extra)


class ALiBi(PositionEncoding):
    def __init__(self, config: ByteConfig) -> None:
        super().__init__()
        self.slopes = alibi_slopes(config.num_attention_heads)  # (H,) float32 attribute

    def attention_bias(self, q_slots: torch.Tensor, k_slots: torch.Tensor) -> torch.Tensor:
        distance = (q_slots[:, None] - k_slots[None, :]).clamp(min=0).float()  # (T, S), future keys masked anyway
        slopes = self.slopes.to(distance.device)
        return -(slopes[:, None, None] * distance).unsqueeze(0)  # (1, H, T, S)


class LearnedPositions(PositionEncoding):
    """GPT-2's learned absolute position embeddings."""

    def __init__(self, config: ByteConfig) -> None:
        super().__init__()
        self.embed_positions = nn.Embedding(config.max_position_embeddings, config.hidden_size)

    def embed(self, position_ids: torch.Tensor) -> torch.Tensor:
        return self.embed_positions(position_ids)


class SinusoidalPositions(PositionEncoding):
    """Vaswani et al., 2017: PE[n, 2i] = sin(n / 10000^(2i/d)), PE[n, 2i+1] = cos(...); table grown on demand."""

    def __init__(self, config: ByteConfig) -> None:
        super().__init__()
        self.dim = config.hidden_size
        self.table = torch.empty(0, self.dim)  # float32 attribute, grown on demand

    def reserve(self, length: int, device: torch.device) -> None:
        if length > self.table.shape[0] or self.table.device != device:
            self._build(length, device)

    def embed(self, position_ids: torch.Tensor) -> torch.Tensor:
        if is_tracing():
            return self.table[position_ids]  # reserve_positions() built it beforehand
        needed = int(position_ids.max()) + 1 if position_ids.numel() else 1
        device = position_ids.device
        if needed > self.table.shape[0] or self.table.device != device:
            self._build(max(needed, 2 * self.table.shape[0], 256), device)
        return self.table[position_ids]

    def _build(self, length: int, device: torch.device) -> None:
        n = torch.arange(length, dtype=torch.float32, device=device)[:, None]
        div = torch.exp(torch.arange(0, self.dim, 2, device=device).float() * (-math.log(10000.0) / self.dim))
        table = torch.zeros(length, self.dim, device=device)
        table[:, 0::2] = torch.sin(n * div)
        table[:, 1::2] = torch.cos(n * div)[:, : self.dim // 2]
        self.table = table


POSITION_ENCODINGS: dict[str, type[PositionEncoding]] = {
    "rope": RotaryEmbedding,
    "xpos": XPosEmbedding,
    "alibi": ALiBi,
    "learned": LearnedPositions,
    "sinusoidal": SinusoidalPositions,
    "none": PositionEncoding,
}


def build_position_encoding(config: ByteConfig) -> PositionEncoding:
    cls = POSITION_ENCODINGS[config.position_embedding_type]
    return cls() if cls is PositionEncoding else cls(config)
