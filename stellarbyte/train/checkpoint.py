"""Training checkpoints: everything needed to continue a run bit for bit, written atomically.

Layout under <run_dir>/checkpoints/:
    step_00000100/state.pt      model, optimizer, scheduler, GradScaler, data-loader position, RNG states, step
    step_00000100/meta.json     step, val_loss, config, model_config, time: human-readable, best-tracking, export
  or, for a distributed run (stellarbyte.train.dist_checkpoint):
    step_00000100/dcp/          torch.distributed.checkpoint: model + optimizer, sharded (.metadata + *.distcp)
    step_00000100/train_state.pt  step, scheduler, scaler, counters, per-rank data positions and RNG states
    step_00000100/meta.json
    latest                      text file naming the newest complete checkpoint directory
    best                        text file naming the checkpoint with the lowest validation loss

Atomicity (the contract a crash must not break): a checkpoint is written into a hidden temporary directory
(".tmp-step_00000100-<pid>"), its files are flushed and fsync'ed, the directory is renamed into place, and only
then is `latest` replaced (write "latest.tmp-<pid>", fsync, os.replace). A crash at any point leaves either the
old `latest` pointing at an intact older checkpoint, or the new one complete; stale temporaries are removed by the
next save. Retention: keep the newest `keep_last` checkpoints plus the best one.

Loading uses torch.load(weights_only=True): every object stored is a tensor or plain Python data. numpy's RNG state
(which holds an ndarray) is converted to a tensor and back for that reason.
"""

from __future__ import annotations

import json
import os
import random
import shutil
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch

STATE_FILE = "state.pt"
META_FILE = "meta.json"
PREFIX = "step_"
DCP_DIR = "dcp"                     # torch.distributed.checkpoint directory of a distributed checkpoint
TRAIN_STATE_FILE = "train_state.pt"  # its non-tensor-parallel state


def is_distributed_checkpoint(path: Path) -> bool:
    return (path / DCP_DIR / ".metadata").is_file() and (path / TRAIN_STATE_FILE).is_file()


def is_checkpoint(path: Path) -> bool:
    """A complete checkpoint directory of either kind (single-process state.pt, or DCP)."""
    return (path / META_FILE).is_file() and ((path / STATE_FILE).is_file() or is_distributed_checkpoint(path))


def rng_state() -> dict[str, Any]:
    """Python, numpy, torch CPU and (when present) every CUDA device's generator state."""
    kind, keys, pos, has_gauss, gauss = np.random.get_state()
    state = {"python": random.getstate(),
             "numpy": {"kind": kind, "keys": torch.from_numpy(keys.astype(np.int64)), "pos": int(pos),
                       "has_gauss": int(has_gauss), "gauss": float(gauss)},
             "torch": torch.get_rng_state()}
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state: dict[str, Any]) -> None:
    version, internal, gauss = state["python"]
    random.setstate((version, tuple(internal), gauss))
    n = state["numpy"]
    np.random.set_state((n["kind"], n["keys"].numpy().astype(np.uint32), n["pos"], n["has_gauss"], n["gauss"]))
    torch.set_rng_state(state["torch"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def _fsync_dir(path: Path) -> None:
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:  # some platforms cannot open directories; the rename is still atomic there
        return
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _write_text_atomic(path: Path, text: str) -> None:
    tmp = path.with_name(f"{path.name}.tmp-{os.getpid()}")
    with open(tmp, "w") as f:
        f.write(text)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)
    _fsync_dir(path.parent)


class CheckpointManager:
    """Saves, finds, loads and prunes the checkpoints of one run directory."""

    def __init__(self, run_dir: str | os.PathLike, keep_last: int = 3, keep_best: bool = True) -> None:
        if keep_last < 1:
            raise ValueError(f"keep_last must be >= 1 (the newest checkpoint is always kept), got {keep_last}")
        self.dir = Path(run_dir) / "checkpoints"
        self.keep_last, self.keep_best = keep_last, keep_best

    # ---- naming ----------------------------------------------------------------------------------------
    def name(self, step: int) -> str:
        return f"{PREFIX}{step:08d}"

    def checkpoints(self) -> list[Path]:
        """Complete checkpoint directories, oldest first."""
        if not self.dir.is_dir():
            return []
        found = [p for p in self.dir.iterdir() if p.is_dir() and p.name.startswith(PREFIX) and is_checkpoint(p)]
        return sorted(found, key=lambda p: p.name)

    def _pointer(self, name: str) -> Path | None:
        path = self.dir / name
        if not path.is_file():
            return None
        target = self.dir / path.read_text().strip()
        return target if is_checkpoint(target) else None

    def latest(self) -> Path | None:
        """The newest complete checkpoint (the `latest` pointer, else the highest step on disk)."""
        found = self._pointer("latest")
        if found is not None:
            return found
        ckpts = self.checkpoints()
        return ckpts[-1] if ckpts else None

    def best(self) -> Path | None:
        return self._pointer("best")

    def meta(self, path: Path) -> dict:
        return json.loads((path / META_FILE).read_text())

    # ---- save ------------------------------------------------------------------------------------------
    def save(self, state: dict[str, Any], step: int, val_loss: float | None = None,
             config: dict | None = None, model_config: dict | None = None) -> Path:
        """Write `state` (tensors and plain data only) as the checkpoint of `step`; returns its directory."""
        name = self.name(step)
        tmp = self.staging_dir(step, f"{os.getpid()}")
        try:
            with open(tmp / STATE_FILE, "wb") as f:
                torch.save({**state, "step": step}, f)
                f.flush()
                os.fsync(f.fileno())
            self.write_meta(tmp, step, val_loss, config, model_config)
            return self.commit(tmp, step, val_loss)
        except BaseException as err:
            shutil.rmtree(tmp, ignore_errors=True)
            if isinstance(err, OSError):
                raise OSError(f"could not write checkpoint {name} under {self.dir} ({err}); the previous "
                              f"checkpoint is intact; free disk space or choose another --run-dir") from err
            raise

    def staging_dir(self, step: int, tag: str) -> Path:
        """A fresh hidden temporary directory for the checkpoint of `step` (stale temporaries removed first)."""
        self.dir.mkdir(parents=True, exist_ok=True)
        self._remove_stale_temporaries()
        tmp = self.dir / f".tmp-{self.name(step)}-{tag}"
        if tmp.exists():
            shutil.rmtree(tmp)
        tmp.mkdir()
        return tmp

    @staticmethod
    def write_meta(directory: Path, step: int, val_loss: float | None, config: dict | None,
                   model_config: dict | None = None) -> None:
        """meta.json: step, val_loss, time, the train config and the model's own config (what export rebuilds)."""
        meta = {"step": step, "val_loss": val_loss, "time": time.time(), "config": config or {}}
        if model_config is not None:
            meta["model_config"] = model_config
        with open(directory / META_FILE, "w") as f:
            json.dump(meta, f, indent=2, default=str)
            f.flush()
            os.fsync(f.fileno())

    def commit(self, tmp: Path, step: int, val_loss: float | None = None) -> Path:
        """Rename a fully written (fsync'ed) staging directory into place, then move `latest` (and `best`) to it
        and prune. The one place where a checkpoint becomes visible."""
        name = self.name(step)
        final = self.dir / name
        if final.exists():  # re-saving a step (e.g. after a resume): move the old copy aside first
            old = self.dir / f".tmp-old-{name}-{os.getpid()}"
            os.replace(final, old)
            os.replace(tmp, final)
            shutil.rmtree(old, ignore_errors=True)
        else:
            os.replace(tmp, final)
        _fsync_dir(self.dir)
        _write_text_atomic(self.dir / "latest", name)
        if val_loss is not None and self.keep_best:
            best = self.best()
            if best is None or (self.meta(best).get("val_loss") is None) or val_loss < self.meta(best)["val_loss"]:
                _write_text_atomic(self.dir / "best", name)
        self._prune()
        return final

    def _remove_stale_temporaries(self) -> None:
        for p in self.dir.iterdir():
            if p.name.startswith(".tmp-") or ".tmp-" in p.name:
                shutil.rmtree(p, ignore_errors=True) if p.is_dir() else p.unlink(missing_ok=True)

    def _prune(self) -> None:
        ckpts = self.checkpoints()
        keep = {p.name for p in ckpts[-self.keep_last:]}
        for pointer in (self.latest(), self.best() if self.keep_best else None):
            if pointer is not None:
                keep.add(pointer.name)
        for p in ckpts:
            if p.name not in keep:
                shutil.rmtree(p, ignore_errors=True)

    # ---- load ------------------------------------------------------------------------------------------
    def resolve(self, which: str | os.PathLike = "latest") -> Path:
        """"latest", "best", a checkpoint directory, or a run directory (its latest)."""
        if str(which) in ("latest", "best"):
            found = self.latest() if str(which) == "latest" else self.best()
            if found is None:
                raise FileNotFoundError(f"{self.dir}: no {which} checkpoint to resume from; start without --resume")
            return found
        path = Path(which)
        if (path / STATE_FILE).is_file() or is_distributed_checkpoint(path):
            return path
        if (path / "checkpoints").is_dir():
            return CheckpointManager(path).resolve("latest")
        raise FileNotFoundError(f"{path}: not a checkpoint directory (no {STATE_FILE} nor {DCP_DIR}/) nor a run "
                                f"directory")

    def load(self, which: str | os.PathLike = "latest", map_location: str | torch.device = "cpu") -> dict[str, Any]:
        """A single-process checkpoint's state.pt (distributed ones load through dist_checkpoint.load)."""
        path = self.resolve(which)
        if not (path / STATE_FILE).is_file():
            raise ValueError(f"{path} is a distributed (DCP) checkpoint; load it with "
                             f"stellarbyte.train.dist_checkpoint.load, or export it with `stellarbyte export`")
        return torch.load(path / STATE_FILE, map_location=map_location, weights_only=True)
