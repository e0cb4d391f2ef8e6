"""The model calls the kernels through the registry: ByteModel's loss and gradients with the Triton backend
(interpreter on CPU) match the torch backend, and the torch backend is what the model computed before."""

from __future__ import annotations

import pytest
import torch

import stellarbyte.kernels as K

CONFIGS = [
    {},  # Llama-style: RMSNorm, SwiGLU, RoPE
    {"norm_type": "rmsnorm_offset", "mlp_type": "geglu"},  # Gemma-style gain and GeGLU
    {"norm_type": "layernorm", "rope_config": {"partial_rotary_factor": 0.5}},
]


def _loss_and_grads(model, ids, backend):
    model.zero_grad(set_to_none=True)
    with K.use_backend(backend):
        loss = model(ids, labels=ids).loss
    loss.backward()
    return loss.detach(), {n: p.grad.clone() for n, p in model.named_parameters() if p.grad is not None}


@pytest.mark.parametrize("overrides", CONFIGS)
def test_model_backends_agree(device, overrides):
    from stellarbyte import ByteConfig, ByteModel, RoPEConfig

    kwargs = dict(vocab_size=101, hidden_size=64, intermediate_size=96, num_hidden_layers=2, num_attention_heads=4,
                  num_key_value_heads=2, max_position_embeddings=64)
    if "rope_config" in overrides:
        overrides = dict(overrides, rope_config=RoPEConfig(**overrides["rope_config"]))
    torch.manual_seed(0)
    model = ByteModel(ByteConfig(**kwargs, **overrides)).to(device)
    ids = torch.randint(0, 101, (2, 12), device=device)
    calls = []
    real = K.api.dispatch

    def spy(name, backend, *tensors):
        calls.append(name)
        return real(name, backend, *tensors)

    K.api.dispatch = spy
    try:
        ref_loss, ref_grads = _loss_and_grads(model, ids, "torch")
        tri_loss, tri_grads = _loss_and_grads(model, ids, "triton")
    finally:
        K.api.dispatch = real
    assert {"apply_rope", "cross_entropy"} <= set(calls), f"the model did not route through the kernels: {calls}"
    assert ("layer_norm" if overrides.get("norm_type") == "layernorm" else "rms_norm") in calls
    assert ("gelu_mul" if overrides.get("mlp_type") == "geglu" else "silu_mul") in calls
    torch.testing.assert_close(tri_loss, ref_loss, rtol=1e-5, atol=1e-5)
    assert ref_grads.keys() == tri_grads.keys()
    for name, g in ref_grads.items():
        torch.testing.assert_close(tri_grads[name], g, rtol=1e-4, atol=1e-5, msg=lambda m, n=name: f"{n}: {m}")
