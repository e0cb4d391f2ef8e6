"""Parameter counts by component, from a ByteConfig alone (no weights allocated)."""

from __future__ import annotations

from dataclasses import dataclass

from stellarbyte.config import ByteConfig

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
