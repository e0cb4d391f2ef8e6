"""Convergence: a tiny 2-layer Llama-style model built only from the kernel ops, trained with the torch backend
and with the Triton backend from the same initialisation, gives matching losses step by step."""

from __future__ import annotations

import math

import pytest
import torch
from torch import nn

import stellarbyte.kernels as K


class TinyBlock(nn.Module):
    def __init__(self, dim: int, heads: int, kv_heads: int, ffn: int) -> None:
        super().__init__()
        self.heads, self.kv_heads, self.head_dim = heads, kv_heads, dim // heads
        self.input_norm = nn.Parameter(torch.ones(dim))
        self.post_norm = nn.Parameter(torch.ones(dim))
        self.qkv = nn.Linear(dim, (heads + 2 * kv_heads) * self.head_dim, bias=False)
        self.o = nn.Linear(dim, dim, bias=False)
        self.gate_up = nn.Linear(dim, 2 * ffn, bias=False)
        self.down = nn.Linear(ffn, dim, bias=False)

    def forward(self, x, residual, cos, sin):
        b, t, _ = x.shape
        h, residual = K.add_rms_norm(x, residual, self.input_norm) if residual is not None else (
            K.rms_norm(x, self.input_norm), x)
        q, k, v = self.qkv(h).split([self.heads * self.head_dim, self.kv_heads * self.head_dim,
                                     self.kv_heads * self.head_dim], dim=-1)
        q = q.view(b, t, self.heads, self.head_dim).transpose(1, 2)  # (B, H, T, hd)
        k = k.view(b, t, self.kv_heads, self.head_dim).transpose(1, 2)
        v = v.view(b, t, self.kv_heads, self.head_dim).transpose(1, 2)
        q, k = K.apply_rope(q, k, cos, sin)
        attn = K.attention(q, k, v, causal=True).transpose(1, 2).reshape(b, t, -1)
        h, residual = K.add_rms_norm(self.o(attn), residual, self.post_norm)
        gate, up = self.gate_up(h).chunk(2, dim=-1)
        return self.down(K.silu_mul(gate, up)), residual


class TinyLM(nn.Module):
    def __init__(self, vocab: int = 97, dim: int = 32, layers: int = 2, heads: int = 4, kv_heads: int = 2) -> None:
        super().__init__()
        self.embed = nn.Embedding(vocab, dim)
        self.blocks = nn.ModuleList(TinyBlock(dim, heads, kv_heads, 64) for _ in range(layers))
        self.norm = nn.Parameter(torch.ones(dim))
        self.lm_head = nn.Parameter(torch.randn(vocab, dim) / math.sqrt(dim))
        hd = dim // heads
        inv_freq = 1.0 / (10000 ** (torch.arange(0, hd, 2).float() / hd))
        freqs = torch.outer(torch.arange(64).float(), inv_freq)
        self.cos, self.sin = torch.cat((freqs, freqs), -1).cos(), torch.cat((freqs, freqs), -1).sin()

    def loss(self, ids: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        t = ids.shape[1]
        cos, sin = self.cos[None, :t].to(ids.device), self.sin[None, :t].to(ids.device)
        x, residual = self.embed(ids), None
        for block in self.blocks:
            x, residual = block(x, residual, cos, sin)
        h, _ = K.add_rms_norm(x, residual, self.norm)
        return K.fused_linear_cross_entropy(h, self.lm_head, labels, chunk_size=16)


def _train(backend: str, device: str, steps: int = 8, keep: list | None = None) -> list[float]:
    torch.manual_seed(0)
    model = TinyLM().to(device)
    opt = torch.optim.AdamW(model.parameters(), lr=1e-2)
    gen = torch.Generator().manual_seed(1)
    ids = torch.randint(0, 97, (2, 17), generator=gen).to(device)  # one fixed batch: the model memorises it
    labels = ids[:, 1:].clone()
    labels[:, ::3] = -100  # some ignored positions
    losses = []
    with K.use_backend(backend):
        for _ in range(steps):
            loss = model.loss(ids[:, :-1], labels)
            opt.zero_grad()
            loss.backward()
            opt.step()
            losses.append(loss.item())
    if keep is not None:
        keep.append((model, ids, labels))
    return losses


@pytest.mark.slow
def test_torch_and_triton_backends_train_the_same(device):
    ref = _train("torch", device)
    kept: list = []
    tri = _train("triton", device, keep=kept)
    assert ref[-1] < ref[0] - 1.0, f"the tiny model did not learn: {ref}"
    for step, (a, b) in enumerate(zip(ref, tri)):
        assert abs(a - b) <= 1e-3 * max(1.0, abs(a)), f"step {step}: torch {a:.6f} vs triton {b:.6f}"

    # a model trained with one backend runs with the other: the kernels own no parameters
    model, ids, labels = kept[0]
    state = {k: v.clone() for k, v in model.state_dict().items()}
    reloaded = TinyLM().to(device)
    reloaded.load_state_dict(state)
    with torch.no_grad():
        with K.use_backend("triton"):
            trained_with = model.loss(ids[:, :-1], labels).item()
        with K.use_backend("torch"):
            other = reloaded.loss(ids[:, :-1], labels).item()
    assert abs(trained_with - other) <= 1e-4 * max(1.0, abs(other))
