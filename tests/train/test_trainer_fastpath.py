"""The trainer's fast path on CPU: the loss computed inside the model's forward (shift_labels, sum) equals the
logits path; the fused AdamW's on-device skip and clip (found_inf / grad_scale) equals the host-side rule; the
loop reads the device numbers once per log interval; the bench's ours-trainer row runs the real train_step."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F
from tiny_models import tiny_model

import stellarbyte.train.trainer as trainer_mod
from stellarbyte.train.batches import labels_to_targets, lm_loss, pretrain_batches
from stellarbyte.train.config import TrainConfig
from stellarbyte.train.optim import build_optimizer
from stellarbyte.train.trainer import Trainer, TrainingDiverged


def _cfg(tmp_path, name="run", **kw):
    base = dict(seq_len=16, batch_size=4, grad_accum=1, max_steps=6, warmup_steps=2, lr=3e-3, precision="fp32",
                device="cpu", eval_every=0, save_every=0, log_every=1, progress=False, run_dir=str(tmp_path / name),
                weight_decay=0.1, loggers=[], grad_clip=0.5)
    base.update(kw)
    return TrainConfig(**base)


def _fused_cpu_adamw(model, cfg):
    """torch's fused AdamW on the CPU (torch >= 2.4): the optimizer the trainer gets on CUDA."""
    groups = [{"params": g["params"], "weight_decay": g["weight_decay"]}
              for g in build_optimizer(model, cfg).param_groups]
    return torch.optim.AdamW(groups, lr=cfg.lr, betas=cfg.betas, eps=cfg.eps, fused=True)


def test_lm_loss_is_the_summed_logits_loss():
    model = tiny_model(seed=0)
    g = torch.Generator().manual_seed(0)
    ids = torch.randint(0, 128, (2, 16), generator=g)
    targets = torch.randint(0, 128, (2, 16), generator=g)
    targets[0, :5] = -100
    logits = model(ids).logits
    expected = F.cross_entropy(logits.flatten(0, 1).float(), targets.flatten(), ignore_index=-100, reduction="sum")
    got = lm_loss(model, {"input_ids": ids, "targets": targets})
    assert got.item() == pytest.approx(expected.item(), rel=1e-6)
    # labels (HF unshifted) and shift_labels give the same mean; the sum / count is that mean
    labels = ids.clone()
    mean = model(ids, labels=labels).loss
    summed = model(ids, shift_labels=labels_to_targets(labels), loss_reduction="sum", return_logits=False).loss
    assert (summed / 15 / 2).item() == pytest.approx(mean.item(), rel=1e-6)
    with pytest.raises(ValueError, match="not both"):
        model(ids, labels=labels, shift_labels=labels)
    with pytest.raises(ValueError, match="loss_reduction"):
        model(ids, labels=labels, loss_reduction="none")


def test_on_device_skip_and_clip_match_the_host_rule(tmp_path, packed, monkeypatch):
    """Same run, fused AdamW both times: the kernel's found_inf / grad_scale vs clip_grad_norm_ + a host read."""
    monkeypatch.setattr(trainer_mod, "build_optimizer", _fused_cpu_adamw)
    results, params = [], []
    for device_skip in (True, False):
        t = Trainer(tiny_model(seed=0), _cfg(tmp_path, f"d{device_skip}"), pretrain_batches(packed, 4, 16))
        assert t.skip_on_device  # fused, one process, no GradScaler
        t.skip_on_device = device_skip
        results.append(t.train())
        params.append([p.detach().clone() for p in t.model.parameters()])
    assert results[0].losses == pytest.approx(results[1].losses, rel=1e-5)
    for a, b in zip(*params):
        torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-6)


def test_on_device_skip_leaves_weights_and_counts_bad_steps(tmp_path, packed, monkeypatch):
    monkeypatch.setattr(trainer_mod, "build_optimizer", _fused_cpu_adamw)
    calls = {"n": 0}

    def poisoned(model, batch):
        calls["n"] += 1
        loss = lm_loss(model, batch)
        return loss * float("nan") if calls["n"] in (3, 5, 6, 7) else loss

    cfg = _cfg(tmp_path, max_steps=10, max_bad_steps=3, log_every=5)
    trainer = Trainer(tiny_model(seed=0), cfg, pretrain_batches(packed, 4, 16), loss_fn=poisoned)
    assert trainer.skip_on_device
    before = {}
    real = trainer.train_step

    def step_and_snapshot():
        m = real()
        before[trainer.step] = [p.detach().clone() for p in trainer.model.parameters()]
        return m

    trainer.train_step = step_and_snapshot
    with pytest.raises(TrainingDiverged, match="3 consecutive"):
        trainer.train()
    # noticed at the next read (step 10, a log interval), not at step 7; steps 8-10 were finite and trained
    assert trainer.skipped_total == 4 and trainer.step == 10
    assert all(torch.equal(a, b) for a, b in zip(before[2], before[3]))  # step 3 skipped
    assert not all(torch.equal(a, b) for a, b in zip(before[3], before[4]))  # step 4 updated
    assert all(torch.equal(a, b) for a, b in zip(before[4], before[7]))  # NaN steps 5-7 skipped
    assert all(torch.isfinite(p).all() for p in trainer.model.parameters())
    state = trainer.optimizer.state[next(iter(trainer.model.parameters()))]
    assert float(state["step"]) == 6  # 10 steps, 4 skipped: those do not advance Adam's step count


def test_numbers_are_read_once_per_log_interval(tmp_path, packed, monkeypatch):
    reads = []
    real = Trainer._record_steps

    def counting(self, steps, *args):
        reads.append([s for s in range(self.step - len(steps) + 1, self.step + 1)])
        return real(self, steps, *args)

    monkeypatch.setattr(Trainer, "_record_steps", counting)
    t = Trainer(tiny_model(seed=0), _cfg(tmp_path, max_steps=12, log_every=5, eval_every=8),
                pretrain_batches(packed, 4, 16))
    result = t.train()
    # step 1 alone (warm-up, compile), then log boundaries 5 and 10, the eval at 8, and the last step
    assert reads == [[1], [2, 3, 4, 5], [6, 7, 8], [9, 10], [11, 12]]
    assert sorted(result.losses) == list(range(1, 13)) and all(math.isfinite(v) for v in result.losses.values())


def test_bench_trainer_row_runs_the_real_step(tmp_path):
    from stellarbyte.bench import train as bench

    out = tmp_path / "b"
    bench.main(["--preset", "tiny", "--rows", "ours-compile,ours-trainer", "--compile-backend", "eager",
                "--steps", "2", "--warmup", "1", "--out", str(out), "--peak-tflops", "100"])
    import csv

    with open(out / "train.csv") as f:
        rows = {r["row"]: r for r in csv.DictReader(f)}
    assert float(rows["ours-trainer"]["loss_step0"]) == pytest.approx(float(rows["ours-compile"]["loss_step0"]),
                                                                      rel=1e-5)
    assert float(rows["ours-trainer"]["loop_ms"]) > 0 and float(rows["ours-trainer"]["tokens_per_s"]) > 0


def test_compile_reserves_the_position_tables_up_front(tmp_path, packed):
    """Otherwise the first forward grows the rotary tables and dynamo compiles the model a second time at step 2
    (seen with TORCH_LOGS=recompiles: a size guard on cos_cached, 0 -> 128)."""
    model = tiny_model(seed=0)
    assert model.model.position.cos_cached.shape[0] == 0
    Trainer(model, _cfg(tmp_path, compile=True), pretrain_batches(packed, 4, 16))
    assert model.model.position.cos_cached.shape[0] == model.config.max_position_embeddings
