"""Distributed checkpoints: model + optimizer through torch.distributed.checkpoint (DCP), the rest beside it.

Layout of <run_dir>/checkpoints/step_XXXXXXXX/ (checkpoint.py keeps the naming, pointers and retention):

    dcp/.metadata, dcp/__<rank>_0.distcp   {"model": ..., "optimizer": ...} from get_state_dict: each rank writes
                                           its own shards (FSDP: its dp shard; TP: its tp shard; DDP / plain:
                                           replicated tensors are written once, deduplicated by DCP's planner)
    train_state.pt                         step, scheduler, scaler, counters, the world's shape, and per-rank
                                           lists: data positions (by dp rank) and RNG states (by global rank)
    meta.json                              as for single-process checkpoints

Atomicity, as CheckpointManager.save: rank 0 creates the staging directory ".tmp-step_XXXXXXXX-dist"; barrier;
every rank writes its DCP shards into it; rank 0 writes train_state.pt and meta.json (fsync'ed); barrier; rank 0
renames the directory into place and moves `latest`; barrier. A crash before the rename leaves the previous
`latest` intact (its staging directory is removed by the next save).

Resharding. DCP stores every tensor with its global shape and each shard's offsets, so `dcp.load` into the state
dict of the CURRENT layout (another world size, DDP instead of FSDP, one process) reads the right slices.
The data position is translated through the global sample offset of the epoch:
    g = batch * batch_size * world_size          (samples consumed in this epoch, all ranks together)
    batch' = g / (batch_size' * world_size')     (must divide: keep the global batch, or a divisor of g)
With the same global batch the new run reads exactly the samples the old one would have (rank r of W takes
positions r, r+W, ... of the epoch's permutation, so a global batch k is always positions [kBW, (k+1)BW)).
SFT batch lists (each rank cycling over its share) translate position * W / W' the same way.
RNG states are restored per rank when the world size is unchanged, else every rank takes rank 0's (dropout
masks then differ from an uninterrupted run; without dropout the losses do not depend on them).

References: torch.distributed.checkpoint docs (save/load, get_state_dict/set_state_dict, resharding),
torchtitan's CheckpointManager (DCP + non-tensor state, rank-0 commit).
"""

from __future__ import annotations

import os
import shutil
import warnings
from pathlib import Path
from typing import Any

import torch
import torch.distributed as dist
from torch.distributed.checkpoint.api import CheckpointException

from stellarbyte.train.checkpoint import DCP_DIR, TRAIN_STATE_FILE, rng_state
from stellarbyte.train.distributed import any_rank


def error_reason(err: BaseException) -> str:
    """One line: the first failing rank's error for DCP's CheckpointException (a BaseException that wraps the
    per-rank exceptions), else the error's first line."""
    failures = getattr(err, "failures", None)
    if isinstance(failures, dict) and failures:
        rank, inner = next(iter(failures.items()))
        err = inner[0] if isinstance(inner, tuple) else inner
        prefix = f"rank {rank}: "
    else:
        prefix = ""
    text = next((line for line in str(err).splitlines() if line.strip()), type(err).__name__)
    return prefix + text[:300]


def _gather(obj: Any, env) -> list[Any]:
    """Every rank's `obj`, in rank order, on every rank."""
    if not env.enabled:
        return [obj]
    out: list[Any] = [None] * env.world_size
    dist.all_gather_object(out, obj)
    return out


def save(trainer) -> Path:
    """Collective: every rank calls it at the same step. Returns the checkpoint directory."""
    from torch.distributed.checkpoint import save as dcp_save
    from torch.distributed.checkpoint.state_dict import get_state_dict

    env, mgr, step = trainer.dist, trainer.checkpoints, trainer.step
    model_sd, optim_sd = get_state_dict(trainer.model, trainer.optimizer)
    data = trainer.train_data.state_dict() if hasattr(trainer.train_data, "state_dict") else None
    gathered = _gather({"dp_rank": env.dp_rank, "tp_rank": env.tp_rank, "data": data, "rng": rng_state()}, env)
    tmp = mgr.dir / f".tmp-{mgr.name(step)}-dist"
    name = mgr.name(step)

    def main_only(action) -> Any:
        """Run `action` on rank 0; every rank learns whether it failed (an all-reduce, so no rank waits forever
        at a barrier that rank 0, having raised, never reaches)."""
        result, error = None, None
        if env.is_main:
            try:
                result = action()
            except Exception as err:  # OSError, or torch.save's zip writer failing on a full disk (RuntimeError)
                error = err
        if any_rank(error is not None, env):
            if env.is_main:
                shutil.rmtree(tmp, ignore_errors=True)
            raise OSError(f"could not write checkpoint {name} under {mgr.dir} ({error or 'failed on rank 0'}); the "
                          f"previous checkpoint is intact; free disk space or choose another --run-dir") from error
        return result

    tmp = main_only(lambda: mgr.staging_dir(step, "dist")) or tmp
    try:
        # collective: DCP gathers every rank's write result and raises the same CheckpointException everywhere
        dcp_save({"model": model_sd, "optimizer": optim_sd}, checkpoint_id=str(tmp / DCP_DIR))
    except (Exception, CheckpointException) as err:
        if env.is_main:
            shutil.rmtree(tmp, ignore_errors=True)
        raise OSError(f"could not write checkpoint {name} under {mgr.dir} ({error_reason(err)}); the previous "
                      f"checkpoint is intact; free disk space or choose another --run-dir") from err

    def write_train_state() -> None:
        by_dp = {g["dp_rank"]: g["data"] for g in gathered if g["tp_rank"] == 0}
        state = {**trainer.progress_state(), "step": step,
                 "world": {"world_size": env.world_size, "dp_size": env.dp_size, "tp_size": env.tp_size,
                           "parallel": env.parallel},
                 "data": [by_dp[r] for r in range(env.dp_size)] if data is not None else None,
                 "rng": [g["rng"] for g in gathered]}
        with open(tmp / TRAIN_STATE_FILE, "wb") as f:
            torch.save(state, f)
            f.flush()
            os.fsync(f.fileno())
        mgr.write_meta(tmp, step, trainer.last_val, trainer.cfg.to_dict(), trainer.model_config_dict())

    main_only(write_train_state)
    final = main_only(lambda: mgr.commit(tmp, step, trainer.last_val))  # the rename, then `latest`
    return final if final is not None else mgr.dir / name


def translate_data_state(saved: list[dict], current: dict, dp_rank: int) -> dict:
    """The data-source state for this rank, from the per-dp-rank states of the run that saved (see the module
    docstring for the rule). `current` is this rank's fresh data source's state_dict (its identity) plus
    "_dp_size", the current number of data-parallel ranks."""
    old_world = len(saved)
    first = saved[0]
    if "world_size" in current:  # TokenBlockLoader (pretraining)
        if old_world == current["world_size"] and first["batch_size"] == current["batch_size"]:
            return saved[dp_rank]
        positions = {(s["epoch"], s["batch"]) for s in saved}
        if len(positions) != 1:
            raise ValueError(f"the checkpoint's ranks stopped at different loader positions {sorted(positions)}")
        consumed = first["batch"] * first["batch_size"] * first["world_size"]
        per_step = current["batch_size"] * current["world_size"]
        if consumed % per_step:
            raise ValueError(f"cannot resume: the saved run consumed {consumed} samples of epoch {first['epoch']} "
                             f"(batch_size {first['batch_size']} x {first['world_size']} ranks), not a multiple of "
                             f"this run's batch_size {current['batch_size']} x {current['world_size']} ranks; keep "
                             f"the global batch (batch_size x data-parallel ranks) when changing the world size")
        return {**first, "batch": consumed // per_step, "rank": current["rank"],
                "world_size": current["world_size"], "batch_size": current["batch_size"]}
    if "position" in current:  # SFTBatches: each rank cycles over its share of the batch list
        new_world = int(current.get("_dp_size", 1))
        if old_world == new_world:
            return saved[dp_rank]
        consumed = first["position"] * old_world
        if consumed % new_world:
            raise ValueError(f"cannot resume: {consumed} SFT batches consumed is not a multiple of {new_world} "
                             f"data-parallel ranks; resume with a world size that divides it")
        return {**first, "position": consumed // new_world, "num_batches": current["num_batches"]}
    if old_world == 1:
        return first
    raise ValueError("this data source's position cannot be translated to another world size; resume with the "
                     "world size that saved it")


def load(trainer, path: Path) -> None:
    """Load a distributed checkpoint (any world size) into `trainer` (distributed or not)."""
    from torch.distributed.checkpoint import load as dcp_load
    from torch.distributed.checkpoint.state_dict import get_state_dict, set_state_dict

    model_sd, optim_sd = get_state_dict(trainer.model, trainer.optimizer)  # the current layout to load into
    with warnings.catch_warnings():  # DCP warns that it "assumes" one process: here that is the intent
        warnings.filterwarnings("ignore", message="torch.distributed is disabled")
        try:
            dcp_load({"model": model_sd, "optimizer": optim_sd}, checkpoint_id=str(Path(path) / DCP_DIR),
                     no_dist=not dist.is_initialized())  # one process without a group: read every shard itself
        except (Exception, CheckpointException) as err:  # missing keys, shape mismatch
            raise ValueError(f"{path}: this distributed checkpoint does not fit the current model and optimizer "
                             f"({error_reason(err)}); resume with the model config and optimizer that wrote "
                             f"it") from err
    set_state_dict(trainer.model, trainer.optimizer, model_state_dict=model_sd, optim_state_dict=optim_sd)
    state = torch.load(Path(path) / TRAIN_STATE_FILE, map_location="cpu", weights_only=True)
    load_progress(trainer, state, state.get("data"), state["rng"], state["world"]["world_size"])


def load_progress(trainer, state: dict, data_states: list[dict] | None, rngs: list[dict], saved_world: int) -> None:
    """Scheduler, scaler, counters, step, this rank's data position and RNG from a saved run of `saved_world`."""
    env = trainer.dist
    data = None
    if data_states is not None and hasattr(trainer.train_data, "state_dict"):
        current = {**trainer.train_data.state_dict(), "_dp_size": env.dp_size}
        data = translate_data_state(data_states, current, env.dp_rank)
        data.pop("_dp_size", None)
    rng = rngs[env.rank] if saved_world == env.world_size else rngs[0]
    trainer.load_progress(state, data, rng)


def load_full_into_distributed(trainer, state: dict[str, Any]) -> None:
    """A single-process state.pt checkpoint into a distributed trainer: full tensors distributed to the current
    layout by set_state_dict(full_state_dict=True); the optimizer's index-keyed state re-keyed by parameter name."""
    from torch.distributed.checkpoint.state_dict import StateDictOptions, set_state_dict

    names = {id(p): n for n, p in trainer.model.named_parameters()}
    saved = state["optimizer"]
    have = [len(g["params"]) for g in trainer.optimizer.param_groups]
    want = [len(g["params"]) for g in saved["param_groups"]]
    if have != want:
        raise ValueError(f"the checkpoint's optimizer has parameter groups of sizes {want}, this run's {have}; "
                         f"resume with the model and optimizer settings that wrote it")
    groups, by_index = [], {}
    for group, saved_group in zip(trainer.optimizer.param_groups, saved["param_groups"]):
        fqns = [names[id(p)] for p in group["params"]]
        by_index.update(zip(saved_group["params"], fqns))
        groups.append({**saved_group, "params": fqns})
    optim_sd = {"state": {by_index[i]: s for i, s in saved["state"].items()}, "param_groups": groups}
    set_state_dict(trainer.model, trainer.optimizer, model_state_dict=state["model"], optim_state_dict=optim_sd,
                   options=StateDictOptions(full_state_dict=True))
    load_progress(trainer, state, [state["data"]] if "data" in state else None, [state["rng"]], 1)
