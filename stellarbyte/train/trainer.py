"""The one training loop, shared by pretraining and SFT (and later alignment methods) through a plugged-in
batch source and loss function.

One optimizer step:
    fetch grad_accum micro-batches            (the data source advances; its state_dict is the resume position)
    n = targets in all of them                 (loss = sum of token losses / n: accumulation-invariant)
    for each: autocast forward, scaler.scale(loss_sum / n).backward()
    unscale, global grad norm (clip_grad_norm_), skip the update if loss or norm is NaN/Inf
    optimizer.step, scheduler.step, zero_grad

References: nanoGPT's train.py (accumulation, clipping, MFU), torch.amp docs (autocast + GradScaler recipe:
unscale_ before clipping), TRL's invariants (accumulation, resume).

Contracts:
- Resume: a checkpoint taken after step k holds model, optimizer, scheduler, scaler, data position, RNG states and
  counters; `train(resume=True)` continues so that every later loss equals an uninterrupted run's (bitwise on CPU
  float32; tests/train/test_trainer.py).
- SIGINT / SIGTERM: the current step finishes, a checkpoint is written, train() returns status "interrupted".
- NaN/Inf: the step is skipped (no update), counted and logged; `max_bad_steps` in a row save a checkpoint and
  raise TrainingDiverged.
- Logs: <run_dir>/train.log (text), <run_dir>/metrics.jsonl (one JSON object per logged step / eval), config.yaml.
"""

from __future__ import annotations

import contextlib
import gc
import math
import signal
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import nn

from stellarbyte.train.backends import build_backends
from stellarbyte.train.batches import Batch, count_targets, lm_loss, to_device
from stellarbyte.train.checkpoint import CheckpointManager, rng_state, set_rng_state
from stellarbyte.train.config import TrainConfig, save_config
from stellarbyte.train.optim import build_optimizer
from stellarbyte.train.runlog import RunLog
from stellarbyte.train.schedule import build_scheduler
from stellarbyte.train.telemetry import Telemetry
from stellarbyte.train.throughput import Throughput

LossFn = Callable[[nn.Module, Batch], torch.Tensor]


class TrainingDiverged(RuntimeError):
    """Too many consecutive NaN/Inf steps; a checkpoint of the last good weights was written."""


@dataclass
class TrainResult:
    status: str                    # "finished", "interrupted" or "data_exhausted"
    step: int
    losses: dict[int, float] = field(default_factory=dict)   # step -> training loss (this process's steps)
    val: dict[int, float] = field(default_factory=dict)      # step -> validation loss
    skipped_steps: int = 0


def resolve_device(name: str) -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(name)


def resolve_precision(precision: str, device: torch.device) -> str:
    if precision != "auto":
        return precision
    if device.type == "cuda":
        return "bf16" if torch.cuda.is_bf16_supported() else "fp16"
    return "fp32"


class Trainer:
    def __init__(self, model: nn.Module, cfg: TrainConfig, train_data: Iterator[Batch],
                 val_data: Callable[[], Iterable[Batch]] | None = None, loss_fn: LossFn = lm_loss,
                 on_step: Callable[[Trainer, dict], None] | None = None,
                 sampler: Callable[[nn.Module], list[str]] | None = None) -> None:
        self.cfg = cfg
        self.device = resolve_device(cfg.device)
        self.precision = resolve_precision(cfg.precision, self.device)
        self.model = model.to(self.device)
        if cfg.gradient_checkpointing:
            model.gradient_checkpointing_enable()
        # the compiled wrapper runs forward; checkpoints always hold the plain module's state_dict
        self.forward_model = torch.compile(model) if cfg.compile else model
        self.train_data, self.val_data, self.loss_fn, self.on_step = train_data, val_data, loss_fn, on_step
        self.sampler = sampler  # model -> a few generated texts, logged at each evaluation
        self.telemetry = Telemetry(model)
        self.optimizer = build_optimizer(model, cfg)
        self.scheduler = build_scheduler(self.optimizer, cfg)
        self.autocast_dtype = {"bf16": torch.bfloat16, "fp16": torch.float16}.get(self.precision)
        self.scaler = torch.amp.GradScaler(self.device.type, enabled=self.precision == "fp16")
        self.run_dir = Path(cfg.run_dir)
        self.checkpoints = CheckpointManager(self.run_dir, keep_last=cfg.keep_last)
        self.step = 0
        self.bad_in_a_row = 0
        self.skipped_total = 0
        self.best_val: float | None = None
        self.last_val: float | None = None
        self._stop_signal: int | None = None
        self.throughput = Throughput(getattr(model, "config", None), cfg.seq_len, cfg.peak_flops, self.device)

    # ---- state -----------------------------------------------------------------------------------------
    def state_dict(self) -> dict[str, Any]:
        state = {"model": self.model.state_dict(), "optimizer": self.optimizer.state_dict(),
                 "scheduler": self.scheduler.state_dict(), "scaler": self.scaler.state_dict(), "rng": rng_state(),
                 "counters": {"bad_in_a_row": self.bad_in_a_row, "skipped_total": self.skipped_total,
                              "best_val": self.best_val, "last_val": self.last_val}}
        if hasattr(self.train_data, "state_dict"):
            state["data"] = self.train_data.state_dict()
        return state

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.model.load_state_dict(state["model"])
        self.optimizer.load_state_dict(state["optimizer"])
        # the schedule's shape comes from the current config (so a run can be extended with a larger max_steps);
        # only the position (last_epoch) and base lrs come from the checkpoint
        sched_state = {**state["scheduler"], "lr_lambdas": [None] * len(self.optimizer.param_groups)}
        self.scheduler.load_state_dict(sched_state)
        for group, base, fn in zip(self.optimizer.param_groups, self.scheduler.base_lrs, self.scheduler.lr_lambdas):
            group["lr"] = base * fn(self.scheduler.last_epoch)  # same arithmetic as LambdaLR.get_lr
        self.scaler.load_state_dict(state["scaler"])
        if "data" in state:
            if not hasattr(self.train_data, "load_state_dict"):
                raise ValueError("the checkpoint holds a data position but this data source cannot resume")
            self.train_data.load_state_dict(state["data"])
        counters = state["counters"]
        self.bad_in_a_row, self.skipped_total = counters["bad_in_a_row"], counters["skipped_total"]
        self.best_val, self.last_val = counters["best_val"], counters.get("last_val")
        self.step = int(state["step"])
        set_rng_state(state["rng"])  # last: nothing above may draw random numbers after it

    def save_checkpoint(self) -> Path:
        return self.checkpoints.save(self.state_dict(), self.step, val_loss=self.last_val, config=self.cfg.to_dict())

    # ---- one step --------------------------------------------------------------------------------------
    def _autocast(self):
        if self.autocast_dtype is None:
            return contextlib.nullcontext()
        return torch.autocast(self.device.type, dtype=self.autocast_dtype)

    def train_step(self) -> dict[str, float] | None:
        """One optimizer step over grad_accum micro-batches; None when the data source is exhausted."""
        micro: list[Batch] = []
        for _ in range(self.cfg.grad_accum):
            try:
                micro.append(next(self.train_data))
            except StopIteration:
                return None
        n_targets = sum(count_targets(b) for b in micro)
        if n_targets == 0:
            raise ValueError(f"step {self.step + 1}: no targets in the batch (every label is -100); check the data")
        self.model.train()
        every = self.cfg.telemetry_every
        self.telemetry.recording = bool(every) and (self.step + 1) % every == 0
        loss_total = torch.zeros((), device=self.device)
        n_tokens = 0
        try:
            for batch in micro:
                batch = to_device(batch, self.device)
                n_tokens += batch["input_ids"].numel()
                with self._autocast():
                    loss = self.loss_fn(self.forward_model, batch) / n_targets
                self.scaler.scale(loss).backward()
                loss_total += loss.detach().float()
        except torch.cuda.OutOfMemoryError as err:
            raise ValueError(f"out of memory with batch_size {self.cfg.batch_size} x seq_len {self.cfg.seq_len}; "
                             f"lower --batch-size and raise --grad-accum by the same factor (same global batch), "
                             f"or enable --gradient-checkpointing") from err
        self.scaler.unscale_(self.optimizer)
        extra: dict[str, Any] = {}
        if self.telemetry.recording:  # true gradients: after unscaling, before clipping
            extra = {"grad_norm_layers": self.telemetry.grad_norms(), "act_rms": dict(self.telemetry.activation_rms)}
            self.telemetry.recording = False
        clip = self.cfg.grad_clip if self.cfg.grad_clip > 0 else float("inf")
        grad_norm = float(torch.nn.utils.clip_grad_norm_(self.model.parameters(), clip))
        loss_value = float(loss_total)
        finite = math.isfinite(loss_value) and (math.isfinite(grad_norm) or self.scaler.is_enabled())
        if not finite:
            extra["bad_groups"] = self.telemetry.non_finite_groups()
        if finite:
            self.scaler.step(self.optimizer)  # with fp16 the scaler itself skips steps whose grads overflowed
        self.scaler.update()
        self.optimizer.zero_grad(set_to_none=True)
        lr = self.optimizer.param_groups[0]["lr"]
        self.scheduler.step()
        self.step += 1
        if finite:
            self.bad_in_a_row = 0
        else:
            self.bad_in_a_row += 1
            self.skipped_total += 1
        return {"loss": loss_value, "grad_norm": grad_norm, "lr": lr, "tokens": n_tokens, "skipped": not finite,
                **extra}

    # ---- evaluation ------------------------------------------------------------------------------------
    @torch.no_grad()
    def evaluate(self) -> dict[str, float] | None:
        """Mean validation loss over the val_data batches and its perplexity exp(loss)."""
        if self.val_data is None:
            return None
        was_training = self.model.training
        self.model.eval()
        total, count = 0.0, 0
        for batch in self.val_data():
            batch = to_device(batch, self.device)
            with self._autocast():
                total += float(self.loss_fn(self.forward_model, batch))
            count += count_targets(batch)
        self.model.train(was_training)
        if count == 0:
            raise ValueError("validation data has no targets; check the validation split")
        loss = total / count
        return {"val_loss": loss, "val_ppl": math.exp(min(loss, 50.0))}

    @torch.no_grad()
    def sample(self) -> list[str]:
        """The sampler's texts, generated in eval mode (no dropout) without gradients."""
        was_training = self.model.training
        self.model.eval()
        try:
            return self.sampler(self.model) if self.sampler is not None else []
        finally:
            self.model.train(was_training)

    # ---- the loop --------------------------------------------------------------------------------------
    def _on_signal(self, signum: int, frame: Any) -> None:
        if self._stop_signal is not None:  # a second Ctrl-C: stop now (a save in progress stays atomic)
            raise KeyboardInterrupt
        self._stop_signal = signum

    def train(self, resume: bool = False) -> TrainResult:
        cfg = self.cfg
        self.run_dir.mkdir(parents=True, exist_ok=True)
        if resume:
            self.load_state_dict(self.checkpoints.load("latest", map_location=self.device))
        save_config(cfg, self.run_dir / "config.yaml")
        result = TrainResult(status="finished", step=self.step)
        backends, notes = build_backends(cfg.loggers, self.run_dir, cfg.to_dict(), cfg.project)
        log = RunLog(self.run_dir, total=cfg.max_steps, initial=self.step, progress=cfg.progress, backends=backends)
        for note in notes:
            log.text(note)
        log.text(f"{'resumed at' if resume else 'starting'} step {self.step}/{cfg.max_steps} on {self.device} "
                 f"({self.precision}); {cfg.tokens_per_step} tokens/step")
        handlers = {}
        if threading.current_thread() is threading.main_thread():
            for sig in (signal.SIGINT, signal.SIGTERM):
                handlers[sig] = signal.signal(sig, self._on_signal)
        try:
            while self.step < cfg.max_steps:
                t0 = time.perf_counter()
                metrics = self.train_step()
                if metrics is None:
                    result.status = "data_exhausted"
                    break
                rate = self.throughput.update(metrics["tokens"], t0)
                metrics.update(rate)
                result.losses[self.step] = metrics["loss"]
                if metrics["skipped"]:
                    log.text(f"step {self.step}: non-finite loss {metrics['loss']} or grad norm "
                             f"{metrics['grad_norm']} (non-finite gradients in: "
                             f"{', '.join(metrics['bad_groups']) or 'none'}); update skipped "
                             f"({self.bad_in_a_row} in a row)")
                if self.bad_in_a_row >= cfg.max_bad_steps:
                    path = self.save_checkpoint()
                    raise TrainingDiverged(f"{self.bad_in_a_row} consecutive steps with NaN/Inf loss or gradients "
                                           f"(step {self.step}); saved the last good weights to {path}; lower lr, "
                                           f"enable grad_clip or use bf16/fp32")
                log.step(self.step, metrics, every=cfg.log_every)
                if cfg.eval_every and (self.step % cfg.eval_every == 0 or self.step == cfg.max_steps):
                    val = self.evaluate()
                    if val is not None:
                        self.last_val = val["val_loss"]
                        self.best_val = min(self.best_val or math.inf, self.last_val)
                        result.val[self.step] = self.last_val
                        log.eval(self.step, val)
                    if self.sampler is not None:
                        for text in self.sample():
                            log.text(f"step {self.step} sample: {text!r}")
                if self.on_step is not None:
                    self.on_step(self, metrics)
                if cfg.empty_cache_every and self.step % cfg.empty_cache_every == 0:
                    gc.collect()
                    if self.device.type == "cuda":
                        torch.cuda.empty_cache()
                stop = self._stop_signal is not None
                if stop or (cfg.save_every and self.step % cfg.save_every == 0) or self.step == cfg.max_steps:
                    path = self.save_checkpoint()
                    log.text(f"step {self.step}: checkpoint {path}")
                if stop:
                    log.text(f"step {self.step}: signal {self._stop_signal} received; checkpoint written, exiting")
                    result.status = "interrupted"
                    break
        finally:
            for sig, handler in handlers.items():
                signal.signal(sig, handler)
            self._stop_signal = None
            log.close()
        result.step, result.skipped_steps = self.step, self.skipped_total
        return result
