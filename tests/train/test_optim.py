"""AdamW from scratch vs torch.optim.AdamW; Newton-Schulz vs SVD; Muon's update rule; decay groups; the builder."""

from __future__ import annotations

import math
from types import SimpleNamespace

import pytest
import torch
from tiny_models import tiny_model

from stellarbyte.train.optim import AdamW, Muon, build_optimizer, newton_schulz, param_groups


def _cfg(**kw):
    base = dict(optimizer="adamw", lr=1e-3, betas=(0.9, 0.95), eps=1e-8, weight_decay=0.1, decay_embeddings=True,
                muon_lr=0.02, muon_momentum=0.95)
    base.update(kw)
    return SimpleNamespace(**base)


@pytest.mark.parametrize("wd,betas", [(0.0, (0.9, 0.999)), (0.1, (0.9, 0.95))])
def test_adamw_matches_torch_over_100_steps(wd, betas):
    ours, ref = tiny_model(seed=1).train(), tiny_model(seed=1).train()
    opt_ours = AdamW(param_groups(ours, wd), lr=3e-3, betas=betas, eps=1e-8)
    opt_ref = torch.optim.AdamW(param_groups(ref, wd), lr=3e-3, betas=betas, eps=1e-8, foreach=False)
    gen = torch.Generator().manual_seed(0)
    for _ in range(100):
        ids = torch.randint(0, 128, (2, 12), generator=gen)
        for model, opt in ((ours, opt_ours), (ref, opt_ref)):
            opt.zero_grad()
            model(ids, labels=ids).loss.backward()
            opt.step()
    worst = max((a - b).abs().max().item() for a, b in zip(ours.parameters(), ref.parameters()))
    assert worst < 1e-6
    # same state layout as torch's, so the two are interchangeable in checkpoints
    s_ours, s_ref = opt_ours.state_dict()["state"][0], opt_ref.state_dict()["state"][0]
    assert set(s_ours) == set(s_ref) and s_ours["step"].item() == s_ref["step"].item() == 100
    torch.testing.assert_close(s_ours["exp_avg_sq"], s_ref["exp_avg_sq"], rtol=1e-5, atol=1e-9)


def test_adamw_rejects_bad_hyperparameters():
    p = [torch.nn.Parameter(torch.zeros(2))]
    with pytest.raises(ValueError, match="betas"):
        AdamW(p, betas=(0.9, 1.0))
    with pytest.raises(ValueError, match="lr"):
        AdamW(p, lr=-1.0)


@pytest.mark.parametrize("shape", [(32, 32), (16, 48), (48, 16)])
def test_newton_schulz_approximates_polar_factor(shape):
    g = torch.randn(*shape, generator=torch.Generator().manual_seed(0))
    u, s, vh = torch.linalg.svd(g, full_matrices=False)
    out = newton_schulz(g, steps=5)
    assert out.shape == g.shape
    sv = torch.linalg.svdvals(out)
    # Keller Jordan's coefficients trade exactness for speed: singular values land in roughly [0.7, 1.2]
    assert sv.min() > 0.5 and sv.max() < 1.3
    # and the singular vectors are g's: out ~ U diag(sv') V^T, so U^T out V is nearly diagonal
    core = u.T @ out @ vh.T
    off = core - torch.diag(torch.diagonal(core))
    assert off.abs().max() < 0.1
    cos = torch.nn.functional.cosine_similarity(out.flatten(), (u @ vh).flatten(), dim=0)
    assert cos > 0.97


def test_muon_step_matches_hand_computation():
    torch.manual_seed(0)
    w = torch.nn.Parameter(torch.randn(8, 4))
    b = torch.nn.Parameter(torch.randn(4))
    w0, b0 = w.detach().clone(), b.detach().clone()
    opt = Muon([{"params": [w], "use_muon": True, "weight_decay": 0.1},
                {"params": [b], "use_muon": False, "lr": 1e-3}], lr=0.02, momentum=0.95, betas=(0.9, 0.95))
    gw, gb = torch.randn(8, 4), torch.randn(4)
    w.grad, b.grad = gw.clone(), gb.clone()
    opt.step()
    buf = gw  # first step: buf = g
    expected = w0 * (1 - 0.02 * 0.1) - 0.02 * math.sqrt(8 / 4) * newton_schulz(gw + 0.95 * buf)
    torch.testing.assert_close(w.detach(), expected)
    # the 1-D parameter took an AdamW step: at t=1 the update is lr * sign(g) (up to eps)
    torch.testing.assert_close(b.detach(), b0 - 1e-3 * gb.sign(), rtol=0, atol=1e-6)
    with pytest.raises(ValueError, match="2-D"):
        Muon([{"params": [b], "use_muon": True}])


def test_muon_trains_tiny_model():
    model = tiny_model(seed=0).train()
    opt = build_optimizer(model, _cfg(optimizer="muon", lr=3e-3, weight_decay=0.0))
    names = {g["name"]: len(g["params"]) for g in opt.param_groups}
    assert names["muon"] == 2 * 7  # q, k, v, o, gate, up, down per layer
    ids = torch.randint(0, 128, (4, 16), generator=torch.Generator().manual_seed(0))
    losses = []
    for _ in range(30):
        opt.zero_grad()
        loss = model(ids, labels=ids).loss
        loss.backward()
        opt.step()
        losses.append(loss.item())
    assert losses[-1] < 0.5 * losses[0]


def test_weight_decay_policy_matrices_only():
    model = tiny_model(seed=0, tie_word_embeddings=True)
    groups = {g["name"]: g for g in param_groups(model, 0.1)}
    assert all(p.dim() >= 2 for p in groups["decay"]["params"]) and groups["decay"]["weight_decay"] == 0.1
    assert all(p.dim() == 1 for p in groups["no_decay"]["params"]) and groups["no_decay"]["weight_decay"] == 0.0
    n_unique = len({id(p) for p in model.parameters()})
    assert sum(len(g["params"]) for g in groups.values()) == n_unique  # tied embedding counted once
    no_emb = {g["name"]: g for g in param_groups(model, 0.1, decay_embeddings=False)}
    assert any(p is model.model.embed_tokens.weight for p in no_emb["no_decay"]["params"])


def test_build_optimizer_kinds_and_errors():
    model = tiny_model(seed=0)
    assert isinstance(build_optimizer(model, _cfg()), torch.optim.AdamW)
    assert isinstance(build_optimizer(model, _cfg(optimizer="adamw_scratch")), AdamW)
    with pytest.raises(ValueError, match="unknown optimizer 'sgdx'"):
        build_optimizer(model, _cfg(optimizer="sgdx"))
