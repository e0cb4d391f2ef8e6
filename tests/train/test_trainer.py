"""The loop end to end on CPU float32: resume equality (SIGTERM at step k), accumulation invariance, NaN skip and
abort, evaluation, logs; plus the batch helpers."""

from __future__ import annotations

import json
import math
import os
import signal

import pytest
import torch
from tiny_models import tiny_model

from stellarbyte.train.batches import (
    SFTBatches,
    labels_to_targets,
    lm_loss,
    pretrain_batches,
    validation_batches,
)
from stellarbyte.train.config import TrainConfig
from stellarbyte.train.trainer import Trainer, TrainingDiverged


def _cfg(tmp_path, name="run", **kw):
    base = dict(seq_len=16, batch_size=4, grad_accum=1, max_steps=8, warmup_steps=2, lr=3e-3, precision="fp32",
                device="cpu", eval_every=4, eval_batches=2, save_every=0, log_every=1, progress=False,
                run_dir=str(tmp_path / name), weight_decay=0.1, loggers=[])
    base.update(kw)
    return TrainConfig(**base)


def _trainer(cfg, packed, on_step=None, model_seed=0, **model_kw):
    model = tiny_model(seed=model_seed, **model_kw)
    data = pretrain_batches(packed, cfg.batch_size, cfg.seq_len, seed=cfg.seed)
    val = validation_batches(packed, cfg.batch_size, cfg.seq_len, cfg.eval_batches)
    return Trainer(model, cfg, data, val, on_step=on_step)


@pytest.mark.parametrize("optimizer", ["adamw", "muon"])
def test_resume_after_sigterm_is_bitwise_identical(tmp_path, packed, optimizer):
    """Dropout is on, so the torch RNG state must be restored too, not only weights and data position."""
    kw = dict(optimizer=optimizer, max_steps=10, lr_schedule="cosine")
    full = _trainer(_cfg(tmp_path, "full", **kw), packed, hidden_dropout=0.1).train()
    assert full.status == "finished" and len(full.losses) == 10

    def kill_at_6(trainer, metrics):
        if trainer.step == 6:
            os.kill(os.getpid(), signal.SIGTERM)  # handled by the trainer: checkpoint, then clean exit

    first = _trainer(_cfg(tmp_path, "cut", **kw), packed, on_step=kill_at_6, hidden_dropout=0.1).train()
    assert first.status == "interrupted" and first.step == 6
    # a fresh process would build a new model with other weights: the checkpoint must override all of it
    torch.manual_seed(999)  # and the new process's RNG is elsewhere
    second = _trainer(_cfg(tmp_path, "cut", **kw), packed, model_seed=123, hidden_dropout=0.1).train(resume=True)
    assert second.status == "finished" and sorted(second.losses) == list(range(7, 11))
    for step in range(1, 11):
        got = first.losses.get(step, second.losses.get(step))
        assert got == full.losses[step], f"step {step}: {got!r} != {full.losses[step]!r}"  # bitwise
    assert second.val[8] == full.val[8] and second.val[10] == full.val[10]


def test_accumulation_invariance(tmp_path, packed):
    """batch 8 x accum 1 and batch 1 x accum 8 see the same samples and make the same updates."""
    a = _trainer(_cfg(tmp_path, "a", batch_size=8, grad_accum=1, max_steps=5, eval_every=0), packed)
    b = _trainer(_cfg(tmp_path, "b", batch_size=1, grad_accum=8, max_steps=5, eval_every=0), packed)
    ra, rb = a.train(), b.train()
    for step in range(1, 6):
        assert ra.losses[step] == pytest.approx(rb.losses[step], rel=1e-5)
    for (name, pa), pb in zip(a.model.named_parameters(), b.model.parameters()):
        torch.testing.assert_close(pa, pb, rtol=1e-4, atol=1e-5, msg=name)


def test_loss_decreases_and_logs_are_written(tmp_path, packed):
    cfg = _cfg(tmp_path, max_steps=30, eval_every=10, lr=1e-2, warmup_steps=3)
    result = _trainer(cfg, packed).train()
    assert result.losses[30] < result.losses[1] - 1.0
    assert result.val[30] < result.val[10] and sorted(result.val) == [10, 20, 30]
    run = tmp_path / "run"
    records = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    evals = [r for r in records if "val_loss" in r]
    assert [r["step"] for r in evals] == [10, 20, 30]
    assert evals[-1]["val_ppl"] == pytest.approx(math.exp(evals[-1]["val_loss"]))
    assert all(r["tokens_per_s"] > 0 for r in records if "loss" in r)
    assert "val_loss" in (run / "train.log").read_text() and (run / "config.yaml").is_file()
    assert (run / "checkpoints" / "latest").read_text() == "step_00000030"


def test_mfu_uses_model_flop_count(tmp_path, packed):
    from stellarbyte.model.analysis import model_flops_per_token

    seen = []
    cfg = _cfg(tmp_path, max_steps=2, eval_every=0, peak_flops=1e12)
    _trainer(cfg, packed, on_step=lambda t, m: seen.append(m)).train()
    expected = model_flops_per_token(tiny_model().config, 16) * seen[-1]["tokens_per_s"] / 1e12
    assert seen[-1]["mfu"] == pytest.approx(expected)


def test_nan_steps_are_skipped_then_abort(tmp_path, packed):
    calls = {"n": 0}

    def poisoned(model, batch):
        calls["n"] += 1
        loss = lm_loss(model, batch)
        return loss * float("nan") if calls["n"] in (3, 5, 6, 7) else loss

    cfg = _cfg(tmp_path, max_steps=10, eval_every=0, max_bad_steps=3)
    model = tiny_model(seed=0)
    trainer = Trainer(model, cfg, pretrain_batches(packed, 4, 16), loss_fn=poisoned)
    before = {}

    def snapshot(t, m):
        before[t.step] = [p.detach().clone() for p in t.model.parameters()]

    trainer.on_step = snapshot
    with pytest.raises(TrainingDiverged, match="3 consecutive"):
        trainer.train()
    assert trainer.skipped_total == 4 and trainer.step == 7
    # step 3 was skipped: weights after step 3 equal those after step 2; all finite
    assert all(torch.equal(a, b) for a, b in zip(before[2], before[3]))
    assert all(torch.isfinite(p).all() for p in trainer.model.parameters())
    assert trainer.checkpoints.latest().name == "step_00000007"


def test_bf16_autocast_runs_on_cpu(tmp_path, packed):
    result = _trainer(_cfg(tmp_path, precision="bf16", max_steps=3, eval_every=3), packed).train()
    assert all(math.isfinite(v) for v in result.losses.values()) and math.isfinite(result.val[3])


def test_labels_to_targets_and_sft_batches_resume():
    labels = torch.tensor([[-100, -100, 5, 6, 7]])
    assert labels_to_targets(labels).tolist() == [[-100, 5, 6, 7, -100]]
    collated = [{"input_ids": torch.full((1, 5), i), "labels": labels} for i in range(3)]
    data = SFTBatches(collated)
    firsts = [int(next(data)["input_ids"][0, 0]) for _ in range(4)]
    assert firsts == [0, 1, 2, 0]
    state = data.state_dict()
    again = SFTBatches(collated)
    again.load_state_dict(state)
    assert int(next(again)["input_ids"][0, 0]) == 1
    with pytest.raises(ValueError, match="same data"):
        SFTBatches(collated[:2]).load_state_dict(state)


def test_missing_data_dir_is_clear(tmp_path):
    with pytest.raises(FileNotFoundError, match="stellarbyte data pack"):
        pretrain_batches(tmp_path / "nope", 4, 16)


def test_telemetry_per_layer_numbers(tmp_path, packed):
    """Group grad norms recombine to torch's global norm; activation RMS matches the model's hidden states."""
    from stellarbyte.train.telemetry import Telemetry

    model = tiny_model(seed=0).train()
    tele = Telemetry(model)
    ids = torch.randint(0, 128, (2, 16), generator=torch.Generator().manual_seed(0))
    tele.recording = True
    out = model(ids, labels=ids, output_hidden_states=True)
    out.loss.backward()
    norms = tele.grad_norms()
    assert set(norms) == {"embed", "layer.0", "layer.1", "head"}
    total = torch.nn.utils.get_total_norm([p.grad for p in model.parameters()])
    assert math.sqrt(sum(v * v for v in norms.values())) == pytest.approx(float(total), rel=1e-5)
    # hidden_states[i + 1] is block i's output (the last one after the final norm, so compare block 0)
    h1 = out.hidden_states[1]
    assert tele.activation_rms["layer.0"] == pytest.approx(float(h1.detach().pow(2).mean().sqrt()), rel=1e-6)
    model.model.layers[1].self_attn.q_proj.weight.grad[0, 0] = float("inf")
    assert tele.non_finite_groups() == ["layer.1"]


def test_telemetry_and_samples_are_logged(tmp_path, packed):
    cfg = _cfg(tmp_path, max_steps=4, eval_every=2, telemetry_every=2)
    model = tiny_model(seed=0)
    trainer = Trainer(model, cfg, pretrain_batches(packed, 4, 16),
                      validation_batches(packed, 4, 16, 2), sampler=lambda m: [f"sample at {m.training}"])
    trainer.train()
    records = [json.loads(line) for line in (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()]
    tele = [r for r in records if "act_rms" in r]
    assert [r["step"] for r in tele] == [2, 4] and set(tele[0]["act_rms"]) == {"layer.0", "layer.1"}
    assert "sample: 'sample at False'" in (tmp_path / "run" / "train.log").read_text()


def test_fp16_with_grad_scaler_on_cpu(tmp_path, packed):
    trainer = _trainer(_cfg(tmp_path, precision="fp16", max_steps=3, eval_every=0), packed)
    assert trainer.scaler.is_enabled() and trainer.autocast_dtype == torch.float16
    result = trainer.train()
    assert all(math.isfinite(v) for v in result.losses.values())
    assert trainer.scaler.get_scale() > 0 and trainer.checkpoints.load()["scaler"]["scale"] > 0


def test_resume_with_longer_max_steps_follows_the_new_schedule(tmp_path, packed):
    from stellarbyte.train.schedule import make_schedule

    _trainer(_cfg(tmp_path, max_steps=4, eval_every=0, lr_schedule="cosine", min_lr_ratio=0.0), packed).train()
    lrs = []
    cfg = _cfg(tmp_path, max_steps=8, eval_every=0, lr_schedule="cosine", min_lr_ratio=0.0)
    _trainer(cfg, packed, on_step=lambda t, m: lrs.append(m["lr"])).train(resume=True)
    f = make_schedule("cosine", 8, warmup_steps=2)
    assert lrs == pytest.approx([3e-3 * f(s) for s in range(4, 8)], rel=1e-12)
    assert lrs[0] > 0  # the 4-step schedule had decayed to 0 here


def test_gradient_checkpointing_gives_the_same_losses(tmp_path, packed):
    a = _trainer(_cfg(tmp_path, "a", max_steps=3, eval_every=0), packed).train()
    b = _trainer(_cfg(tmp_path, "b", max_steps=3, eval_every=0, gradient_checkpointing=True), packed).train()
    assert b.losses == pytest.approx(a.losses, rel=1e-6)


@pytest.mark.slow
def test_compile_switch_matches_eager_and_saves_plain_keys(tmp_path, packed):
    """torch.compile wraps forward only: same losses as eager here, checkpoint keys without '_orig_mod.'."""
    eager = _trainer(_cfg(tmp_path, "e", max_steps=2, eval_every=0), packed).train()
    trainer = _trainer(_cfg(tmp_path, "c", max_steps=2, eval_every=0, compile=True), packed)
    compiled = trainer.train()
    assert compiled.losses == pytest.approx(eager.losses, rel=1e-5)
    assert not any(k.startswith("_orig_mod") for k in trainer.checkpoints.load()["model"])


def test_tensorboard_backend_records_scalars(tmp_path, packed):
    """Read the event file back with TensorBoard's own EventAccumulator."""
    pytest.importorskip("tensorboard", reason="optional backend: pip install tensorboard")
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    cfg = _cfg(tmp_path, max_steps=4, eval_every=2, telemetry_every=2, loggers=["tensorboard"])
    result = _trainer(cfg, packed).train()
    acc = EventAccumulator(str(tmp_path / "run" / "tensorboard"))
    acc.Reload()
    tags = acc.Tags()["scalars"]
    assert {"loss", "lr", "val_loss", "val_ppl", "act_rms/layer.1", "grad_norm_layers/embed"} <= set(tags)
    losses = {e.step: e.value for e in acc.Scalars("loss")}
    assert losses == pytest.approx(result.losses, rel=1e-6)
    assert [e.step for e in acc.Scalars("val_loss")] == [2, 4]


def test_unknown_or_missing_logger_is_clear(tmp_path, packed):
    with pytest.raises(ValueError, match="unknown logger in loggers=\\['tensorbord'\\]"):
        _cfg(tmp_path, loggers=["tensorbord"])
    try:
        import wandb  # noqa: F401
    except ModuleNotFoundError:
        with pytest.raises(ValueError, match="pip install wandb"):
            _trainer(_cfg(tmp_path, max_steps=2, loggers=["wandb"]), packed).train()


def test_out_of_memory_suggests_accumulation(tmp_path, packed):
    def oom(model, batch):
        raise torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB")

    cfg = _cfg(tmp_path, max_steps=2, eval_every=0, batch_size=4)
    trainer = Trainer(tiny_model(), cfg, pretrain_batches(packed, 4, 16), loss_fn=oom)
    with pytest.raises(ValueError, match="lower --batch-size and raise --grad-accum"):
        trainer.train()
    assert trainer.checkpoints.latest() is None  # nothing half-written


def test_second_signal_stops_immediately(tmp_path, packed):
    def double_kill(trainer, metrics):
        os.kill(os.getpid(), signal.SIGINT)
        os.kill(os.getpid(), signal.SIGINT)

    with pytest.raises(KeyboardInterrupt):
        _trainer(_cfg(tmp_path, max_steps=4, eval_every=0), packed, on_step=double_kill).train()
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler  # handlers restored


def test_sft_accumulation_weights_every_target_equally(tmp_path):
    """Rows with 2 and 9 assistant targets: one batch of 2 rows == 2 micro-batches of 1 row (sum / total targets),
    which a mean per micro-batch would not give; prompt tokens carry no loss."""
    g = torch.Generator().manual_seed(0)
    ids = torch.randint(3, 128, (2, 12), generator=g)
    labels = ids.clone()
    labels[0, :10] = -100  # row 0: 2 labelled tokens
    labels[1, :3] = -100   # row 1: 9 labelled tokens
    rows = [{"input_ids": ids[i:i + 1], "labels": labels[i:i + 1]} for i in range(2)]
    both = [{"input_ids": ids, "labels": labels}]
    cfg_a = _cfg(tmp_path, "a", batch_size=2, grad_accum=1, max_steps=1, warmup_steps=0, eval_every=0,
                 lr_schedule="constant")
    cfg_b = _cfg(tmp_path, "b", batch_size=1, grad_accum=2, max_steps=1, warmup_steps=0, eval_every=0,
                 lr_schedule="constant")
    a = Trainer(tiny_model(seed=0), cfg_a, SFTBatches(both))
    b = Trainer(tiny_model(seed=0), cfg_b, SFTBatches(rows))
    ra, rb = a.train(), b.train()
    # the reference loss: the model's own mean over labelled tokens only (labels shifted inside); a mean per
    # micro-batch would report (mean_row0 + mean_row1) / 2 instead, weighting row 0's 2 tokens like row 1's 9
    with torch.no_grad():
        expected = float(tiny_model(seed=0)(ids, labels=labels).loss)
        per_row = [float(tiny_model(seed=0)(ids[i:i + 1], labels=labels[i:i + 1]).loss) for i in range(2)]
    assert abs(sum(per_row) / 2 - expected) > 1e-3
    assert ra.losses[1] == pytest.approx(expected, rel=1e-6) and rb.losses[1] == pytest.approx(expected, rel=1e-6)
    # Adam's first step is ~lr * sign(g): elements with |g| ~ eps may differ by float noise, hence atol 1e-5
    for pa, pb in zip(a.model.parameters(), b.model.parameters()):
        torch.testing.assert_close(pa, pb, rtol=1e-5, atol=1e-5)
