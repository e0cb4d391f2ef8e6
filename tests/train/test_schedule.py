"""LR schedules against transformers.optimization's published formulas, plus pinned values and state round-trip."""

from __future__ import annotations

import io
from types import SimpleNamespace

import pytest
import torch
from transformers import optimization as hf

from stellarbyte.train.schedule import build_scheduler, make_schedule


def _hf_multipliers(factory, steps, **kw):
    p = torch.nn.Parameter(torch.zeros(1))
    opt = torch.optim.SGD([p], lr=1.0)
    sched = factory(opt, **kw)
    return [sched.lr_lambdas[0](s) for s in range(steps)]


def test_cosine_matches_transformers():
    ours = make_schedule("cosine", total_steps=100, warmup_steps=10, min_lr_ratio=0.1)
    ref = _hf_multipliers(hf.get_cosine_with_min_lr_schedule_with_warmup, 101, num_warmup_steps=10,
                          num_training_steps=100, min_lr_rate=0.1)
    assert [ours(s) for s in range(101)] == pytest.approx(ref, abs=1e-12)
    # pinned: start of warmup, end of warmup, middle of decay (halfway between 1 and 0.1), the floor
    assert (ours(0), ours(5), ours(10), ours(55), ours(100), ours(500)) == pytest.approx((0, 0.5, 1, 0.55, 0.1, 0.1))


@pytest.mark.parametrize("shape", ["linear", "cosine", "1-sqrt"])
def test_wsd_matches_transformers(shape):
    ours = make_schedule("wsd", total_steps=100, warmup_steps=10, min_lr_ratio=0.05, decay_fraction=0.2,
                         decay_shape=shape)
    ref = _hf_multipliers(hf.get_wsd_schedule, 110, num_warmup_steps=10, num_stable_steps=72, num_decay_steps=18,
                          min_lr_ratio=0.05, decay_type=shape)
    assert [ours(s) for s in range(110)] == pytest.approx(ref, abs=1e-12)
    assert ours(50) == 1.0 and ours(100) == pytest.approx(0.05)


def test_wsd_linear_pinned_values():
    f = make_schedule("wsd", total_steps=20, warmup_steps=0, decay_fraction=0.5)  # 10 stable, 10 decay
    assert [f(s) for s in (0, 9, 10, 15, 19, 20)] == pytest.approx([1, 1, 1, 0.5, 0.1, 0])


def test_constant_matches_transformers():
    ours = make_schedule("constant", total_steps=50, warmup_steps=4)
    ref = _hf_multipliers(hf.get_constant_schedule_with_warmup, 50, num_warmup_steps=4)
    assert [ours(s) for s in range(50)] == pytest.approx(ref, abs=1e-12)
    assert make_schedule("constant", total_steps=5)(0) == 1.0


def test_scheduler_drives_group_lrs_and_round_trips():
    p = torch.nn.Parameter(torch.zeros(1))
    cfg = SimpleNamespace(lr_schedule="cosine", max_steps=10, warmup_steps=2, min_lr_ratio=0.0, decay_fraction=0.2,
                          decay_shape="linear")
    opt = torch.optim.SGD([{"params": [p], "lr": 2.0}], lr=2.0)
    sched = build_scheduler(opt, cfg)
    for _ in range(3):
        opt.step()
        sched.step()
    assert opt.param_groups[0]["lr"] == pytest.approx(2.0 * make_schedule("cosine", 10, 2)(3))
    buf = io.BytesIO()
    torch.save(sched.state_dict(), buf)
    buf.seek(0)
    state = torch.load(buf, weights_only=True)
    opt2 = torch.optim.SGD([{"params": [p], "lr": 2.0}], lr=2.0)
    sched2 = build_scheduler(opt2, cfg)
    sched2.load_state_dict(state)
    assert sched2.last_epoch == 3 and sched2.get_last_lr() == sched.get_last_lr()


def test_schedule_errors():
    with pytest.raises(ValueError, match="unknown lr schedule 'linearr'"):
        make_schedule("linearr", 10)
    with pytest.raises(ValueError, match="warmup_steps"):
        make_schedule("cosine", 10, warmup_steps=11)
    with pytest.raises(ValueError, match="decay_shape"):
        make_schedule("wsd", 10, decay_shape="exp")
