"""Tiny models shared by tests (tests/ is on sys.path via pyproject pythonpath)."""


import torch

from stellarbyte import ByteConfig, ByteModel


def tiny_config(**overrides) -> ByteConfig:
    base = dict(vocab_size=128, hidden_size=64, intermediate_size=128, num_hidden_layers=2, num_attention_heads=4,
                num_key_value_heads=2, max_position_embeddings=128, attention_implementation="eager")
    base.update(overrides)
    return ByteConfig(**base)


def tiny_model(seed: int = 0, **overrides) -> ByteModel:
    torch.manual_seed(seed)
    return ByteModel(tiny_config(**overrides)).eval()


# One entry per architecture option; tests run each through padding, training and cached decoding.
VARIANTS = {
    "llama": {},
    "mha": dict(num_key_value_heads=4),
    "mqa": dict(num_key_value_heads=1),
    "sdpa": dict(attention_implementation="sdpa"),
    "qk_norm_bias": dict(qk_norm=True, qkv_bias=True, attention_out_bias=True, mlp_bias=True),
    "window": dict(sliding_window=6),
    "alibi": dict(position_embedding_type="alibi"),
    "xpos": dict(position_embedding_type="xpos"),
    "learned": dict(position_embedding_type="learned"),
    "sinusoidal": dict(position_embedding_type="sinusoidal"),
    "nope": dict(position_embedding_type="none"),
    "yarn": dict(rope_config=dict(rope_type="yarn", factor=4.0, original_max_position_embeddings=32)),
    "llama3": dict(rope_config=dict(rope_type="llama3", factor=8.0, original_max_position_embeddings=32)),
    "layernorm_post": dict(norm_type="layernorm", norm_scheme="post"),
    "deepnorm": dict(norm_scheme="deepnorm"),
    "offset_parallel_gelu": dict(norm_type="rmsnorm_offset", parallel_residual=True, mlp_type="gelu"),
    "geglu_layerscale_tied": dict(mlp_type="geglu", layer_scale_init=0.1, tie_word_embeddings=True),
    "relu2": dict(mlp_type="relu2"),
}


def save_tiny_model_dir(out, text: str = "the cat sat on the mat. the dog ran to the park and back again.\n",
                        vocab_size: int = 300, **overrides):
    """A model directory as save_pretrained writes it, with a tiny BPE tokenizer trained on `text` * 50.

    Returns (model, tokenizer); the model's vocabulary and EOS id follow the tokenizer's."""
    from stellarbyte.tokenizer import train_tokenizer

    corpus = out / "corpus.txt"
    corpus.write_text(text * 50)
    tok = train_tokenizer([str(corpus)], vocab_size, out)
    model = tiny_model(vocab_size=tok.vocab_size, eos_token_id=tok.eos_token_id, **overrides)
    model.save_pretrained(out)
    return model, tok
