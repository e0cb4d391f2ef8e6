"""Metric backends beside metrics.jsonl: TensorBoard (default), Weights & Biases, SwanLab.

Contract: a backend has log(step, metrics) and close(). `metrics` may nest one level (per-layer telemetry):
{"act_rms": {"layer.0": 1.2}} is logged as the scalar "act_rms/layer.0". Non-numeric values are dropped.
Packages are optional: TensorBoard (the default) missing is reported once in the log and the run goes on with
metrics.jsonl; wandb or swanlab asked for but not installed is an error naming the pip command.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

from stellarbyte.train.config import LOGGERS as BACKENDS


def flatten_scalars(metrics: dict[str, Any]) -> dict[str, float]:
    out: dict[str, float] = {}
    for key, value in metrics.items():
        if isinstance(value, dict):
            for sub, v in value.items():
                if isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v):
                    out[f"{key}/{sub}"] = float(v)
        elif isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value):
            out[key] = float(value)
    return out


class TensorBoardBackend:
    def __init__(self, run_dir: Path) -> None:
        from torch.utils.tensorboard import SummaryWriter  # needs the `tensorboard` package

        self.writer = SummaryWriter(log_dir=str(run_dir / "tensorboard"))

    def log(self, step: int, metrics: dict[str, Any]) -> None:
        for key, value in flatten_scalars(metrics).items():
            self.writer.add_scalar(key, value, step)

    def close(self) -> None:
        self.writer.flush()
        self.writer.close()


class WandbBackend:
    def __init__(self, run_dir: Path, config: dict, project: str) -> None:
        import wandb

        self.run = wandb.init(project=project, dir=str(run_dir), config=config, name=run_dir.name, resume="allow")

    def log(self, step: int, metrics: dict[str, Any]) -> None:
        self.run.log(flatten_scalars(metrics), step=step)

    def close(self) -> None:
        self.run.finish()


class SwanLabBackend:
    def __init__(self, run_dir: Path, config: dict, project: str) -> None:
        import swanlab

        self.swanlab = swanlab
        swanlab.init(project=project, experiment_name=run_dir.name, config=config, logdir=str(run_dir / "swanlab"))

    def log(self, step: int, metrics: dict[str, Any]) -> None:
        self.swanlab.log(flatten_scalars(metrics), step=step)

    def close(self) -> None:
        self.swanlab.finish()


def build_backends(names: list[str], run_dir: Path, config: dict,
                   project: str = "stellarbyte") -> tuple[list, list[str]]:
    """(backends, notes): TensorBoard missing is a note (it is the default); wandb / swanlab missing an error."""
    backends, notes = [], []
    for name in names:
        if name not in BACKENDS:
            raise ValueError(f"unknown logger {name!r}; choose from {', '.join(BACKENDS)} (or [] for none)")
        package = "tensorboard" if name == "tensorboard" else name
        try:
            if name == "tensorboard":
                backends.append(TensorBoardBackend(run_dir))
            elif name == "wandb":
                backends.append(WandbBackend(run_dir, config, project))
            else:
                backends.append(SwanLabBackend(run_dir, config, project))
        except ModuleNotFoundError:
            if name == "tensorboard":
                notes.append("tensorboard is not installed (pip install tensorboard); metrics go to metrics.jsonl")
                continue
            raise ValueError(f"logger {name!r} needs the {package} package: pip install {package}, or drop it "
                             f"from --loggers") from None
    return backends, notes
