"""torchrun entry point for tests/train/test_distributed.py (no tests here): one training run from a JSON spec.

    python -m torch.distributed.run --standalone --nproc_per_node 2 tests/train/test_distributed_worker.py SPEC.json

SPEC: {"cfg": TrainConfig fields, "model": tiny_config overrides, "model_seed": int, "data": packed dataset dir,
       "resume": null | "latest" | a checkpoint directory, "save_model": bool, "out": directory,
       "kill_rank_at": [rank, step] (that rank alone sends itself SIGTERM after that step),
       "disk_full_at": step (rank 0's meta.json write of that step's checkpoint raises ENOSPC),
       "sft": true (synthetic SFT batches of one row with unequal numbers of labelled tokens instead of the packed
               data; rank r of dp takes batches r, r + dp, ...; one process (dp = 1) takes them concatenated in
               groups of `sft_group`, i.e. the same global batch), "sft_group": int}
Each rank writes OUT/rank<r>.json: {"losses", "val", "step", "status", "inputs" (the input ids it trained on,
one list of rows per step), "dp_rank", "tp_rank"}. Also importable: `run(spec)` runs the same thing in-process
(the single-process reference).
"""

from __future__ import annotations

import json
import os
import signal
import sys
from pathlib import Path

import torch
from tiny_models import tiny_model

from stellarbyte.train.batches import SFTBatches, pretrain_batches, validation_batches
from stellarbyte.train.config import TrainConfig
from stellarbyte.train.distributed import destroy_distributed, init_distributed
from stellarbyte.train.trainer import Trainer


class Recording:
    """A data source that remembers every batch's input ids (and keeps the source's resume state)."""

    def __init__(self, source) -> None:
        self.source, self.seen = source, []

    def __iter__(self):
        return self

    def __next__(self):
        batch = next(self.source)
        self.seen.append(batch["input_ids"].tolist())
        return batch

    def state_dict(self):
        return self.source.state_dict()

    def load_state_dict(self, state):
        self.source.load_state_dict(state)


def sft_batches(rank: int, world: int, group: int, seq_len: int, n: int = 24) -> SFTBatches:
    """n one-row batches whose first m_i labels are -100 (m_i from 0 to seq_len - 2: 1 to 15 targets each)."""
    g = torch.Generator().manual_seed(0)
    rows = []
    for _ in range(n):
        ids = torch.randint(3, 128, (1, seq_len), generator=g)
        labels = ids.clone()
        labels[:, : int(torch.randint(0, seq_len - 1, (1,), generator=g))] = -100  # the "prompt": no loss
        rows.append({"input_ids": ids, "labels": labels})
    if group > 1:  # one process: the global batch of `group` ranks as one batch of `group` rows
        rows = [{k: torch.cat([r[k] for r in rows[i:i + group]]) for k in rows[0]} for i in range(0, n, group)]
    return SFTBatches(rows[rank::world])


def run(spec: dict) -> tuple[Trainer, dict]:
    cfg = TrainConfig(**spec["cfg"])
    env = init_distributed(cfg)
    model = tiny_model(seed=spec.get("model_seed", 0), **spec.get("model", {}))
    if spec.get("sft"):
        data = Recording(sft_batches(env.dp_rank, env.dp_size, spec.get("sft_group", 1), cfg.seq_len))
    else:
        data = Recording(pretrain_batches(spec["data"], cfg.batch_size, cfg.seq_len, seed=cfg.seed,
                                          rank=env.dp_rank, world_size=env.dp_size))
    # validation batches of the global batch size, the same on every rank (so the one-process numbers)
    val = validation_batches(spec["data"], cfg.batch_size * env.dp_size, cfg.seq_len, cfg.eval_batches) \
        if cfg.eval_every else None
    on_step = None
    if spec.get("kill_rank_at"):
        rank, step = spec["kill_rank_at"]

        def on_step(trainer, metrics):
            if trainer.dist.rank == rank and trainer.step == step:
                os.kill(os.getpid(), signal.SIGTERM)

    if spec.get("disk_full_at"):
        from stellarbyte.train.checkpoint import CheckpointManager

        real, when = CheckpointManager.write_meta, spec["disk_full_at"]

        def write_meta(directory, step, *args, **kwargs):
            if step == when:
                raise OSError(28, "No space left on device")
            return real(directory, step, *args, **kwargs)

        CheckpointManager.write_meta = staticmethod(write_meta)
    trainer = Trainer(model, cfg, data, val, on_step=on_step)
    resume = spec.get("resume")
    if resume not in (None, "latest"):
        trainer.resume(resume)
    result = trainer.train(resume=resume == "latest")
    if spec.get("save_model"):
        trainer.save_model(Path(cfg.run_dir) / "model")
    record = {"losses": result.losses, "val": result.val, "step": result.step, "status": result.status,
              "inputs": data.seen, "dp_rank": env.dp_rank, "tp_rank": env.tp_rank}
    return trainer, record


def main() -> None:
    spec = json.loads(Path(sys.argv[1]).read_text())
    trainer, record = run(spec)
    out = Path(spec["out"])
    out.mkdir(parents=True, exist_ok=True)
    (out / f"rank{trainer.dist.rank}.json").write_text(json.dumps(record))
    destroy_distributed()


if __name__ == "__main__":
    main()
