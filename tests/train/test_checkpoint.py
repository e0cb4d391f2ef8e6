"""Checkpoints: full round trip under weights_only, RNG restore, crash mid-save, keep-last-N and best-by-val-loss."""

from __future__ import annotations

import random

import numpy as np
import pytest
import torch

from stellarbyte.train import checkpoint as ckpt_mod
from stellarbyte.train.checkpoint import CheckpointManager, rng_state, set_rng_state


def _state(value: float) -> dict:
    return {"model": {"w": torch.full((3,), value)}, "loader": {"epoch": 0, "batch": int(value)}}


def test_round_trip_with_optimizer_scheduler_scaler_and_rng(tmp_path):
    model = torch.nn.Linear(4, 3)
    opt = torch.optim.AdamW(model.parameters(), lr=1e-3)
    model(torch.randn(2, 4)).sum().backward()
    opt.step()
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda s: 1.0)
    scaler = torch.amp.GradScaler("cpu", enabled=False)
    random.seed(1), np.random.seed(2), torch.manual_seed(3)
    state = {"model": model.state_dict(), "optimizer": opt.state_dict(), "scheduler": {"last_epoch": 1},
             "scaler": scaler.state_dict(), "rng": rng_state()}
    mgr = CheckpointManager(tmp_path)
    mgr.save(state, step=7, val_loss=2.5, config={"lr": 1e-3})
    expected = (random.random(), np.random.rand(), torch.rand(1).item())
    random.seed(9), np.random.seed(9), torch.manual_seed(9)
    loaded = mgr.load("latest")  # torch.load(weights_only=True) inside
    assert loaded["step"] == 7
    torch.testing.assert_close(loaded["model"]["weight"], model.weight)
    assert loaded["optimizer"]["state"][0]["step"].item() == 1
    set_rng_state(loaded["rng"])
    assert (random.random(), np.random.rand(), torch.rand(1).item()) == expected
    assert mgr.meta(mgr.latest())["config"] == {"lr": 1e-3} and sched.last_epoch == 0


def test_crash_mid_save_leaves_previous_latest_intact(tmp_path, monkeypatch):
    mgr = CheckpointManager(tmp_path, keep_last=2)
    mgr.save(_state(1.0), step=1)
    real_save = torch.save

    def crashing_save(obj, f, *a, **kw):
        f.write(b"half a checkpoint")  # bytes hit the disk, then the process "dies"
        raise KeyboardInterrupt("killed mid-save")

    monkeypatch.setattr(ckpt_mod.torch, "save", crashing_save)
    with pytest.raises(KeyboardInterrupt):
        mgr.save(_state(2.0), step=2)
    monkeypatch.setattr(ckpt_mod.torch, "save", real_save)
    assert mgr.latest().name == "step_00000001"
    assert [p.name for p in mgr.checkpoints()] == ["step_00000001"]
    assert mgr.load()["model"]["w"].tolist() == [1.0, 1.0, 1.0]


def test_crash_between_rename_and_pointer_update_is_recovered(tmp_path):
    """A temp dir left by a killed process is ignored by readers and cleaned by the next save."""
    mgr = CheckpointManager(tmp_path)
    mgr.save(_state(1.0), step=1)
    stale = mgr.dir / ".tmp-step_00000002-99999"
    stale.mkdir()
    (stale / "state.pt").write_bytes(b"garbage")
    assert mgr.latest().name == "step_00000001"
    mgr.save(_state(3.0), step=3)
    assert not stale.exists() and mgr.latest().name == "step_00000003"


def test_disk_error_gives_clear_message_and_keeps_old(tmp_path, monkeypatch):
    mgr = CheckpointManager(tmp_path)
    mgr.save(_state(1.0), step=1)

    def full_disk(obj, f, *a, **kw):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(ckpt_mod.torch, "save", full_disk)
    with pytest.raises(OSError, match="previous checkpoint is intact"):
        mgr.save(_state(2.0), step=2)
    assert mgr.latest().name == "step_00000001" and not list(mgr.dir.glob(".tmp-*"))


def test_keep_last_n_and_best(tmp_path):
    mgr = CheckpointManager(tmp_path, keep_last=2)
    for step, loss in [(1, 3.0), (2, 1.5), (3, 2.0), (4, 2.5), (5, None)]:
        mgr.save(_state(float(step)), step=step, val_loss=loss)
    # newest two plus the best (step 2, loss 1.5)
    assert [p.name for p in mgr.checkpoints()] == ["step_00000002", "step_00000004", "step_00000005"]
    assert mgr.best().name == "step_00000002" and mgr.latest().name == "step_00000005"
    assert mgr.load("best")["model"]["w"][0].item() == 2.0


def test_resolve_errors(tmp_path):
    mgr = CheckpointManager(tmp_path)
    with pytest.raises(FileNotFoundError, match="no latest checkpoint"):
        mgr.load()
    with pytest.raises(FileNotFoundError, match="not a checkpoint directory"):
        mgr.resolve(tmp_path / "nope")
    with pytest.raises(ValueError, match="keep_last"):
        CheckpointManager(tmp_path, keep_last=0)
