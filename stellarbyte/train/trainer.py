"""The one training loop, shared by pretraining and SFT (and later alignment methods) through a plugged-in
batch source and loss function.

One optimizer step:
    fetch grad_accum micro-batches            (the data source advances; its state_dict is the resume position)
    n = targets in all of them                 (loss = sum of token losses / n: accumulation-invariant)
    for each: autocast forward + loss (inside the model, compiled with it), scaler.scale(loss_sum / n).backward()
    unscale, global grad norm, clip, skip the update if loss or norm is NaN/Inf
    optimizer.step, scheduler.step, zero_grad

The fast path (why the loop reads no GPU values per step). A host read (`float(loss)`) makes the CPU wait for the
GPU, which then idles while the CPU launches the next kernels. So the loss, the grad norm and the finite flag stay
on the device and are read once per log interval (`_flush`), with the throughput timer's one synchronisation.
The NaN-skip decision needs no read either when the optimizer is torch's fused AdamW (CUDA, one process): its
kernel takes GradScaler's `found_inf` flag and leaves parameters, moments and step count untouched when it is
set, and its `grad_scale` divisor applies the clipping coefficient inside the same kernel (no separate pass over
the gradients). Other optimizers (Muon, the from-scratch AdamW, fp16's GradScaler, distributed runs) read the
flag once per optimizer step. `Trainer.skip_on_device` says which path a run takes.

References: nanoGPT's train.py (accumulation, clipping, MFU), torch.amp docs (autocast + GradScaler recipe:
unscale_ before clipping), TRL's invariants (accumulation, resume).

Contracts:
- Resume: a checkpoint taken after step k holds model, optimizer, scheduler, scaler, data position, RNG states and
  counters; `train(resume=True)` continues so that every later loss equals an uninterrupted run's (bitwise on CPU
  float32; tests/train/test_trainer.py).
- SIGINT / SIGTERM: the current step finishes, a checkpoint is written, train() returns status "interrupted".
- NaN/Inf: the step is skipped (no update), counted and logged; `max_bad_steps` in a row save a checkpoint and
  raise TrainingDiverged (on the on-device path this is noticed at the next log interval: the skipped steps
  changed nothing, finite steps after them in the same interval trained normally).
- An `on_step` hook sees every step's numbers as floats, so with one the loop reads them every step.
- Logs: <run_dir>/train.log (text), <run_dir>/metrics.jsonl (one JSON object per logged step / eval), config.yaml.
- Distributed (cfg.parallel / cfg.tensor_parallel, launched by torchrun; stellarbyte.train.distributed): the model
  is parallelized from outside; each rank's loss is scaled so the dp-averaged gradient equals the one-process
  gradient of the global batch; accumulation micro-steps skip the gradient sync; the logged loss is the global
  mean; only rank 0 logs, writes config.yaml and shows progress; a signal on any rank stops every rank at the same
  step; checkpoints are DCP (dist_checkpoint.py) and resume on another world size.
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
from stellarbyte.train.distributed import (
    DistEnv,
    all_reduce_sum,
    any_rank,
    clip_grad_norm,
    gradient_sync,
    init_distributed,
    parallelize,
)
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


class _QuietLog:
    """What ranks other than 0 log: nothing (rank 0 writes the files, the bar and the backends)."""

    def text(self, line: str) -> None:
        pass

    def step(self, step: int, m: dict, every: int) -> None:
        pass

    def eval(self, step: int, v: dict) -> None:
        pass

    def close(self) -> None:
        pass


class Trainer:
    def __init__(self, model: nn.Module, cfg: TrainConfig, train_data: Iterator[Batch],
                 val_data: Callable[[], Iterable[Batch]] | None = None, loss_fn: LossFn = lm_loss,
                 on_step: Callable[[Trainer, dict], None] | None = None,
                 sampler: Callable[[nn.Module], list[str]] | None = None) -> None:
        self.cfg = cfg
        self.dist: DistEnv = init_distributed(cfg)  # DistEnv() (one process, no mesh) unless cfg is distributed
        self.device = self.dist.device if self.dist.enabled else resolve_device(cfg.device)
        self.precision = resolve_precision(cfg.precision, self.device)
        self.model = model.to(self.device)  # the plain module (FSDP/TP reshape it in place; DDP wraps it)
        if cfg.gradient_checkpointing:
            model.gradient_checkpointing_enable()
        decoder = getattr(model, "model", None)
        if cfg.compile and hasattr(decoder, "reserve_positions"):
            # the rotary tables are otherwise grown by the first forward: a second compilation at step 2
            decoder.reserve_positions(None, self.device)
        # fixed order (distributed.py): TP -> activation checkpointing -> FSDP / DDP -> compile
        self.wrapped = parallelize(model, self.dist, self.precision)
        # the compiled wrapper runs forward; checkpoints always hold the plain module's state_dict
        self.forward_model = torch.compile(self.wrapped) if cfg.compile else self.wrapped
        self.train_data, self.val_data, self.loss_fn, self.on_step = train_data, val_data, loss_fn, on_step
        self.sampler = sampler  # model -> a few generated texts, logged at each evaluation
        self.telemetry = Telemetry(model)
        self.optimizer = build_optimizer(model, cfg)
        self.scheduler = build_scheduler(self.optimizer, cfg)
        self.autocast_dtype = {"bf16": torch.bfloat16, "fp16": torch.float16}.get(self.precision)
        self.scaler = torch.amp.GradScaler(self.device.type, enabled=self.precision == "fp16")
        self.run_dir = Path(cfg.run_dir)
        self.checkpoints = CheckpointManager(self.run_dir, keep_last=cfg.keep_last)
        if self.dist.tp_size > 1 and sampler is not None:
            self.sampler = None  # KV-cache generation sizes its cache by the config's (unsplit) head counts
        self.step = 0
        self.bad_in_a_row = 0
        self.skipped_total = 0
        self.best_val: float | None = None
        self.last_val: float | None = None
        self._stop_signal: int | None = None
        self.throughput = Throughput(getattr(model, "config", None), cfg.seq_len, cfg.peak_flops, self.device)
        # the fused optimizer skips non-finite steps and clips by itself (module docstring); else one read per step
        self.skip_on_device = (not self.dist.enabled and not self.scaler.is_enabled()
                               and getattr(self.optimizer, "_step_supports_amp_scaling", False)
                               and all(g.get("fused") for g in self.optimizer.param_groups))

    # ---- state -----------------------------------------------------------------------------------------
    def progress_state(self) -> dict[str, Any]:
        """Scheduler, scaler and counters: the state every rank shares (no tensors of the model)."""
        return {"scheduler": self.scheduler.state_dict(), "scaler": self.scaler.state_dict(),
                "counters": {"bad_in_a_row": self.bad_in_a_row, "skipped_total": self.skipped_total,
                             "best_val": self.best_val, "last_val": self.last_val}}

    def state_dict(self) -> dict[str, Any]:
        state = {"model": self.model.state_dict(), "optimizer": self.optimizer.state_dict(),
                 **self.progress_state(), "rng": rng_state()}
        if hasattr(self.train_data, "state_dict"):
            state["data"] = self.train_data.state_dict()
        return state

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.model.load_state_dict(state["model"])
        self.optimizer.load_state_dict(state["optimizer"])
        self.load_progress(state, state.get("data"), state["rng"])

    def load_progress(self, state: dict[str, Any], data: dict | None, rng: dict[str, Any]) -> None:
        """Everything but model and optimizer: schedule position, scaler, data position, counters, step, RNG."""
        # the schedule's shape comes from the current config (so a run can be extended with a larger max_steps);
        # only the position (last_epoch) and base lrs come from the checkpoint
        sched_state = {**state["scheduler"], "lr_lambdas": [None] * len(self.optimizer.param_groups)}
        self.scheduler.load_state_dict(sched_state)
        for group, base, fn in zip(self.optimizer.param_groups, self.scheduler.base_lrs, self.scheduler.lr_lambdas):
            group["lr"] = base * fn(self.scheduler.last_epoch)  # same arithmetic as LambdaLR.get_lr
        self.scaler.load_state_dict(state["scaler"])
        if data is not None:
            if not hasattr(self.train_data, "load_state_dict"):
                raise ValueError("the checkpoint holds a data position but this data source cannot resume")
            self.train_data.load_state_dict(data)
        counters = state["counters"]
        self.bad_in_a_row, self.skipped_total = counters["bad_in_a_row"], counters["skipped_total"]
        self.best_val, self.last_val = counters["best_val"], counters.get("last_val")
        self.step = int(state["step"])
        set_rng_state(rng)  # last: nothing above may draw random numbers after it

    def save_checkpoint(self) -> Path:
        if self.dist.enabled:
            from stellarbyte.train import dist_checkpoint

            return dist_checkpoint.save(self)
        return self.checkpoints.save(self.state_dict(), self.step, val_loss=self.last_val, config=self.cfg.to_dict(),
                                     model_config=self.model_config_dict())

    def model_config_dict(self) -> dict | None:
        """The model's own config (ByteConfig.to_dict), stored in meta.json so a checkpoint can be rebuilt alone."""
        config = getattr(self.model, "config", None)
        return config.to_dict() if hasattr(config, "to_dict") else None

    def resume(self, which: str = "latest") -> Path:
        """Load a checkpoint of either kind into this trainer, whatever world size wrote it."""
        from stellarbyte.train import dist_checkpoint
        from stellarbyte.train.checkpoint import is_distributed_checkpoint

        path = self.checkpoints.resolve(which)
        if is_distributed_checkpoint(path):
            dist_checkpoint.load(self, path)
        elif self.dist.enabled:
            state = torch.load(path / "state.pt", map_location="cpu", weights_only=True)
            dist_checkpoint.load_full_into_distributed(self, state)
        else:
            # CPU first: RNG states must stay CPU tensors; model and optimizer state move to their params' device
            self.load_state_dict(self.checkpoints.load(path, map_location="cpu"))
        return path

    def save_model(self, directory: str | Path) -> None:
        """save_pretrained of the full model (gathered from every rank under FSDP / TP; rank 0 writes)."""
        if not self.dist.enabled:
            self.model.save_pretrained(directory)
            return
        from stellarbyte.train.distributed import barrier, full_model_state_dict

        state = full_model_state_dict(self.model)  # collective; full tensors on rank 0 only
        if self.dist.is_main:
            # FSDP2 swaps the module's class for a subclass of (FSDPModule, the original class): build the original
            cls = next(c for c in type(self.model).__mro__ if not c.__name__.startswith("FSDP"))
            plain = cls(self.model.config)
            plain.load_state_dict(state)
            plain.save_pretrained(directory)
        barrier(self.dist)

    # ---- one step --------------------------------------------------------------------------------------
    def _autocast(self):
        if self.autocast_dtype is None:
            return contextlib.nullcontext()
        return torch.autocast(self.device.type, dtype=self.autocast_dtype)

    def train_step(self) -> dict[str, Any] | None:
        """One optimizer step over grad_accum micro-batches; None when the data source is exhausted.

        Returns loss, grad_norm (0-dim device tensors: nothing is read back here), lr, tokens and skipped (a
        bool when the skip was decided on the host, None when the fused optimizer decided on the device)."""
        micro: list[Batch] = []
        for _ in range(self.cfg.grad_accum):
            try:
                micro.append(next(self.train_data))
            except StopIteration:
                return None
        n_targets = sum(count_targets(b) for b in micro)  # the loader's CPU tensors: no GPU sync
        if self.dist.enabled:  # the whole global batch's count: every rank divides by the same number
            n_targets = int(all_reduce_sum(torch.tensor(n_targets, device=self.device), self.dist))
        if n_targets == 0:
            raise ValueError(f"step {self.step + 1}: no targets in the batch (every label is -100); check the data")
        self.model.train()
        every = self.cfg.telemetry_every
        self.telemetry.recording = bool(every) and (self.step + 1) % every == 0
        loss_total = torch.zeros((), device=self.device)
        n_tokens = 0
        # DDP / FSDP average gradients over the dp ranks: scale by dp_size so the average is the global sum / n
        dp_scale = self.dist.dp_size
        try:
            for i, batch in enumerate(micro):
                batch = to_device(batch, self.device)
                n_tokens += batch["input_ids"].numel()
                with gradient_sync(self.wrapped, sync=i == len(micro) - 1):  # no all-reduce on earlier micro-steps
                    with self._autocast():  # forward + LM head + summed loss, all inside the compiled model
                        loss = self.loss_fn(self.forward_model, batch) / n_targets
                    self.scaler.scale(loss * dp_scale if dp_scale > 1 else loss).backward()
                loss_total += loss.detach().float()
        except torch.cuda.OutOfMemoryError as err:
            raise ValueError(f"out of memory with batch_size {self.cfg.batch_size} x seq_len {self.cfg.seq_len}; "
                             f"lower --batch-size and raise --grad-accum by the same factor (same global batch), "
                             f"or enable --gradient-checkpointing") from err
        self.scaler.unscale_(self.optimizer)
        extra: dict[str, Any] = {}
        if self.telemetry.recording:  # true gradients: after unscaling, before clipping
            extra = {"grad_norm_layers": self._group_grad_norms(), "act_rms": dict(self.telemetry.activation_rms)}
            self.telemetry.recording = False
        if self.dist.enabled:
            loss_total = all_reduce_sum(loss_total, self.dist)  # each rank holds its share of the global mean
        grad_norm, skipped = self._clip_and_step(loss_total)
        if skipped:  # decided on the host: say where the gradients went bad before zero_grad drops them
            extra["bad_groups"] = [k for k, v in self._group_grad_norms().items() if not math.isfinite(v)]
        self.scaler.update()
        self.optimizer.zero_grad(set_to_none=True)
        lr = self.optimizer.param_groups[0]["lr"]
        self.scheduler.step()
        self.step += 1
        return {"loss": loss_total, "grad_norm": grad_norm, "lr": lr, "tokens": n_tokens, "skipped": skipped,
                **extra}

    def _clip_and_step(self, loss: torch.Tensor) -> tuple[torch.Tensor, bool | None]:
        """Clip to cfg.grad_clip and update unless the loss or the gradient norm is NaN/Inf.

        Returns (grad norm before clipping, a 0-dim tensor; skipped: True/False, or None when the fused optimizer
        made that decision on the device)."""
        params = [p for p in self.model.parameters() if p.grad is not None]
        clip = self.cfg.grad_clip if self.cfg.grad_clip > 0 else float("inf")
        if self.skip_on_device:
            grad_norm = torch.nn.utils.get_total_norm([p.grad for p in params])  # one foreach pass, no sync
            # clip_grad_norm_ multiplies by min(1, clip / (norm + 1e-6)); the fused kernel divides by grad_scale
            grad_scale = torch.clamp((grad_norm + 1e-6) / clip, min=1.0)
            not_finite = ~(torch.isfinite(loss) & torch.isfinite(grad_norm))
            # GradScaler's protocol (torch.amp.GradScaler.step): the kernel reads these two attributes
            self.optimizer.grad_scale, self.optimizer.found_inf = grad_scale, not_finite.float()
            try:
                self.optimizer.step()
            finally:
                del self.optimizer.grad_scale, self.optimizer.found_inf
            return grad_norm, None
        if self.dist.enabled:  # DTensor grads on one or two meshes (FSDP2, TP): distributed.clip_grad_norm
            grad_norm = clip_grad_norm(params, clip)
        else:
            grad_norm = torch.nn.utils.clip_grad_norm_(params, clip)
        finite = torch.isfinite(loss) & (torch.isfinite(grad_norm) | self.scaler.is_enabled())
        if not bool(finite):  # the one host read of this step
            return grad_norm, True
        self.scaler.step(self.optimizer)  # with fp16 the scaler itself skips steps whose grads overflowed
        return grad_norm, False

    def _group_grad_norms(self) -> dict[str, float]:
        """Per-layer gradient norms (telemetry groups); for sharded DTensor gradients through the mesh-aware
        norm of distributed.py (a collective: every rank computes them at the same step)."""
        if not self.dist.enabled:
            return self.telemetry.grad_norms()
        return {key: float(clip_grad_norm(params, float("inf"))) for key, params in self.telemetry.groups.items()}

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
        if self._stop_signal is not None and not self.dist.enabled:
            raise KeyboardInterrupt  # a second Ctrl-C: stop now (a save in progress stays atomic)
        # under torchrun a Ctrl-C reaches each worker twice (the terminal's, then the one torchrun forwards): a
        # repeat is not a "stop now" there; torchrun itself SIGKILLs workers that have not exited after its timeout
        self._stop_signal = self._stop_signal or signum

    def _record_steps(self, steps: list[dict], interval_start: float, log: Any, result: TrainResult) -> None:
        """The host side of `steps` (train_step's outputs, oldest first): one read of their device numbers, the
        interval's tokens/s and MFU, skip counters, the divergence abort, logs. Updates each dict in place."""
        numbers = torch.stack([torch.stack([m["loss"].float(), m["grad_norm"].float()]) for m in steps])
        numbers = numbers.tolist()  # (n_steps, 2): the one host read of the interval
        rate = self.throughput.update(sum(m["tokens"] for m in steps), interval_start)  # synchronises on CUDA
        rate["step_time"] /= len(steps)
        first = self.step - len(steps) + 1
        for i, (m, (loss, grad_norm)) in enumerate(zip(steps, numbers)):
            step = first + i
            skipped = m["skipped"]
            if skipped is None:  # judged by the fused optimizer on the device: the same rule on the numbers read now
                skipped = not (math.isfinite(loss) and math.isfinite(grad_norm))
            m.update(loss=loss, grad_norm=grad_norm, skipped=skipped, **rate)
            result.losses[step] = loss
            if skipped:
                self.bad_in_a_row += 1
                self.skipped_total += 1
                groups = ", ".join(m.get("bad_groups", [])) or "not recorded on this path"
                log.text(f"step {step}: non-finite loss {loss} or grad norm {grad_norm} (non-finite gradients "
                         f"in: {groups}); update skipped ({self.bad_in_a_row} in a row)")
            else:
                self.bad_in_a_row = 0
            log.step(step, m, every=self.cfg.log_every)
            if self.bad_in_a_row >= self.cfg.max_bad_steps:
                path = self.save_checkpoint()
                raise TrainingDiverged(f"{self.bad_in_a_row} consecutive steps with NaN/Inf loss or gradients "
                                       f"(step {step}); saved the last good weights to {path}; lower lr, "
                                       f"enable grad_clip or use bf16/fp32")

    def train(self, resume: bool = False) -> TrainResult:
        cfg = self.cfg
        main = self.dist.is_main
        if main:
            self.run_dir.mkdir(parents=True, exist_ok=True)
        if resume:
            self.resume("latest")
        result = TrainResult(status="finished", step=self.step)
        if main:  # rank 0 alone writes the config, the logs, the progress bar and the metric backends
            save_config(cfg, self.run_dir / "config.yaml")
            backends, notes = build_backends(cfg.loggers, self.run_dir, cfg.to_dict(), cfg.project)
            log = RunLog(self.run_dir, total=cfg.max_steps, initial=self.step, progress=cfg.progress,
                         backends=backends)
            for note in notes:
                log.text(note)
        else:
            log = _QuietLog()
        d = self.dist
        layout = (f"; {d.world_size} ranks ({d.parallel}, dp {d.dp_size} x tp {d.tp_size})" if d.enabled else "")
        log.text(f"{'resumed at' if resume else 'starting'} step {self.step}/{cfg.max_steps} on {self.device} "
                 f"({self.precision}){layout}; {cfg.tokens_per_step * d.dp_size} tokens/step")
        handlers = {}
        if threading.current_thread() is threading.main_thread():
            for sig in (signal.SIGINT, signal.SIGTERM):
                handlers[sig] = signal.signal(sig, self._on_signal)
        pending: list[dict] = []  # this interval's steps, their numbers still on the device
        first_step = self.step + 1  # its time includes compilation: measured alone, left out of the averages
        interval_start = time.perf_counter()

        def flush() -> None:
            """Read the pending steps' numbers (one sync with the timer), then record and log each step."""
            if not pending:
                return
            done, pending[:] = list(pending), []
            self._record_steps(done, interval_start, log, result)

        try:
            while self.step < cfg.max_steps:
                if not pending:
                    interval_start = time.perf_counter()
                metrics = self.train_step()
                if metrics is None:
                    result.status = "data_exhausted"
                    break
                pending.append(metrics)
                eval_due = cfg.eval_every and (self.step % cfg.eval_every == 0 or self.step == cfg.max_steps)
                if (self.on_step is not None or self.step == first_step or self.step % cfg.log_every == 0
                        or eval_due or metrics["skipped"]):
                    flush()
                if eval_due:
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
                    self.on_step(self, metrics)  # flushed above: its numbers are floats now
                if cfg.empty_cache_every and self.step % cfg.empty_cache_every == 0:
                    gc.collect()
                    if self.device.type == "cuda":
                        torch.cuda.empty_cache()
                stop = any_rank(self._stop_signal is not None, self.dist)  # all ranks stop at the same step
                if stop or (cfg.save_every and self.step % cfg.save_every == 0) or self.step == cfg.max_steps:
                    flush()  # the counters a checkpoint holds are the host's: bring them up to date first
                    path = self.save_checkpoint()
                    log.text(f"step {self.step}: checkpoint {path}")
                if stop:
                    log.text(f"step {self.step}: signal {self._stop_signal} received (or by another rank); "
                             f"checkpoint written, exiting")
                    result.status = "interrupted"
                    break
            flush()
        finally:
            for sig, handler in handlers.items():
                signal.signal(sig, handler)
            self._stop_signal = None
            log.close()
        result.step, result.skipped_steps = self.step, self.skipped_total
        return result
