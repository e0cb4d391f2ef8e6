"""Distributed training from outside the model: process group, device mesh, and DDP / FSDP2 / tensor parallel.

The model code stays single-device (DESIGN.md); this module wraps or reshapes a built ByteModel in one fixed order
(torchtitan's, except that compile wraps the finished module instead of each block):

    1. tensor parallel   DTensor `parallelize_module` on each block's projections (tensor_parallel.py), "tp" mesh dim
    2. activation ckpt   the model's own flag (set by the trainer before this is called)
    3. data parallel     FSDP2 `fully_shard` per block, then the root, on the "dp" mesh dim; or DDP
    4. compile           torch.compile around the result (trainer, cfg.compile)

Launch: `torchrun --nproc_per_node N -m stellarbyte.cli pretrain ... --parallel fsdp [--tensor-parallel T]`.
torchrun sets RANK, WORLD_SIZE, LOCAL_RANK, MASTER_ADDR/PORT; the backend is nccl on CUDA (one GPU per process,
cuda:LOCAL_RANK) and gloo on CPU. A distributed config started without torchrun runs as a one-process group.
The 2-D mesh is (dp, tp) with dp = WORLD_SIZE / tp; ranks r = dp_rank * tp + tp_rank, so a TP group is a
contiguous range of ranks (one node's NVLink island on GPUs).

Contracts:
- Data: rank (dp_rank, tp_rank) reads the loader shard dp_rank of dp_size; all tp ranks of a dp group see the
  same batch (tensor parallel splits the weights, not the data).
- Gradients: DDP and FSDP average over dp; the trainer scales each rank's loss by dp_size / (global target count),
  so the averaged gradient is the global sum of token-loss gradients / global target count (the one-process
  gradient of the same global batch, also for SFT batches with unequal target counts).
- Everything here is a real torch.distributed engine; nothing re-implements a collective.

References: PyTorch FSDP2 (`torch.distributed.fsdp.fully_shard`, MixedPrecisionPolicy), DDP (no_sync),
DTensor / tensor parallel docs, torchtitan's parallelize_llama (the order, per-block sharding, 2-D mesh).
"""

from __future__ import annotations

import atexit
import contextlib
import os
import socket
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import timedelta

import torch
import torch.distributed as dist
from torch import nn

from stellarbyte.train.tensor_parallel import apply_tensor_parallel, check_tensor_parallel


@dataclass(frozen=True)
class DistEnv:
    """Where this process sits: global rank, the (dp, tp) coordinates, device and mesh (None = one process)."""

    rank: int = 0
    world_size: int = 1
    local_rank: int = 0
    dp_rank: int = 0
    dp_size: int = 1
    tp_rank: int = 0
    tp_size: int = 1
    device: torch.device = torch.device("cpu")
    mesh: object | None = None       # torch.distributed.device_mesh.DeviceMesh with dims ("dp", "tp")
    parallel: str = "none"

    @property
    def enabled(self) -> bool:
        return self.mesh is not None

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    @property
    def dp_group(self):
        return self.mesh["dp"].get_group() if self.mesh is not None else None


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _device_type(cfg_device: str) -> str:
    if cfg_device == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    return torch.device(cfg_device).type


_ENVS: dict[tuple, DistEnv] = {}  # (parallel, tensor_parallel, device type) -> the mesh built for it


def init_distributed(cfg) -> DistEnv:
    """Join (or start) the process group described by torchrun's environment and build the (dp, tp) mesh.

    cfg: a TrainConfig (parallel, tensor_parallel, device). Idempotent: a second call (the data loader asks for
    its shard, then the Trainer) returns the same DistEnv, process group and mesh.
    A config without parallelism under a multi-process launch is an error (every rank would train alone and write
    the same run directory)."""
    env_world = int(os.environ.get("WORLD_SIZE", "1"))
    if not cfg.distributed:
        if env_world > 1:
            raise ValueError(f"launched on {env_world} processes (torchrun) but parallel is none and "
                             f"tensor_parallel is 1; pass --parallel ddp or --parallel fsdp")
        return DistEnv()
    device_type = _device_type(cfg.device)
    key = (cfg.parallel, cfg.tensor_parallel, device_type)
    if key in _ENVS and dist.is_initialized():
        return _ENVS[key]
    if device_type == "cuda" and not torch.cuda.is_available():
        raise ValueError("device cuda requested but CUDA is not available; use --device cpu (gloo)")
    local_rank = int(os.environ.get("LOCAL_RANK", "0"))
    if device_type == "cuda":
        torch.cuda.set_device(local_rank)
    if not dist.is_initialized():
        backend = "nccl" if device_type == "cuda" else "gloo"
        if "RANK" in os.environ and "MASTER_ADDR" in os.environ:
            dist.init_process_group(backend, timeout=timedelta(minutes=30))
        else:  # no launcher: a one-process group, so the same code path (and checkpoint format) runs
            dist.init_process_group(backend, init_method=f"tcp://127.0.0.1:{_free_port()}", rank=0, world_size=1)
        atexit.register(destroy_distributed)  # the group we started is torn down cleanly at exit
    rank, world = dist.get_rank(), dist.get_world_size()
    tp = cfg.tensor_parallel
    if world % tp:
        raise ValueError(f"tensor_parallel {tp} must divide the world size {world} (dp = world / tp); "
                         f"launch a multiple of {tp} processes or change --tensor-parallel")
    dp = world // tp
    if dp > 1 and cfg.parallel == "none":
        raise ValueError(f"{world} processes with tensor_parallel {tp} leave {dp} data-parallel replicas; pass "
                         f"--parallel fsdp (or ddp without tensor parallel), or --tensor-parallel {world}")
    if tp > 1 and cfg.parallel == "ddp" and dp > 1:
        raise ValueError("tensor parallel composes with FSDP2 on the 2-D mesh (torchtitan's layout); use "
                         "--parallel fsdp with --tensor-parallel > 1")
    from torch.distributed.device_mesh import init_device_mesh

    mesh = init_device_mesh(device_type, (dp, tp), mesh_dim_names=("dp", "tp"))
    device = torch.device("cuda", local_rank) if device_type == "cuda" else torch.device("cpu")
    env = DistEnv(rank=rank, world_size=world, local_rank=local_rank, dp_rank=mesh["dp"].get_local_rank(),
                  dp_size=dp, tp_rank=mesh["tp"].get_local_rank(), tp_size=tp, device=device, mesh=mesh,
                  parallel=cfg.parallel)
    _ENVS[key] = env
    return env


def destroy_distributed() -> None:
    _ENVS.clear()
    if dist.is_initialized():
        dist.destroy_process_group()


def parallelize(model: nn.Module, env: DistEnv, precision: str) -> nn.Module:
    """Apply TP, then FSDP2 or DDP (steps 1 and 3 of the module docstring); returns the module to run forward on.

    model must already sit on env.device. FSDP2 and TP change `model` in place (its parameters become DTensors);
    DDP returns a wrapper whose .module is `model`. precision "bf16" gives FSDP2 a MixedPrecisionPolicy
    (parameters all-gathered in bf16, gradients reduced in fp32)."""
    if not env.enabled:
        return model
    if env.tp_size > 1:
        check_tensor_parallel(model.config, env.tp_size)
        apply_tensor_parallel(model, env.mesh["tp"])
    if env.parallel == "fsdp":
        from torch.distributed.fsdp import MixedPrecisionPolicy, fully_shard

        if precision == "fp16":
            raise ValueError("precision fp16 is not supported with FSDP2 here; use bf16 or fp32")
        mp = MixedPrecisionPolicy(param_dtype=torch.bfloat16, reduce_dtype=torch.float32) \
            if precision == "bf16" else MixedPrecisionPolicy()
        dp_mesh = env.mesh["dp"]
        for block in model.model.layers:
            # one all-gather / reduce-scatter unit per block: peak memory ~ one block's full parameters
            fully_shard(block, mesh=dp_mesh, mp_policy=mp)
        fully_shard(model, mesh=dp_mesh, mp_policy=mp)  # the root: embeddings, final norm, LM head
        return model
    if env.parallel == "ddp":
        import inspect

        from torch.nn.parallel import DistributedDataParallel as DDP

        # no buffer broadcast per forward: the only buffers are position tables, grown lazily per rank to the same
        # values (the newer name of the switch first, torch < 2.12 has only broadcast_buffers)
        no_sync_buffers = {"forward_sync_buffers": False} if "forward_sync_buffers" in \
            inspect.signature(DDP.__init__).parameters else {"broadcast_buffers": False}
        return DDP(model, device_ids=[env.local_rank] if env.device.type == "cuda" else None,
                   process_group=env.dp_group, **no_sync_buffers)
    return model  # tensor parallel alone (dp = 1)


@contextlib.contextmanager
def gradient_sync(wrapped: nn.Module, sync: bool) -> Iterator[None]:
    """Accumulation micro-steps skip the gradient all-reduce / reduce-scatter; the last one (sync=True) does it.
    DDP: no_sync(); FSDP2: set_requires_gradient_sync(); a plain module: nothing."""
    if hasattr(wrapped, "set_requires_gradient_sync"):  # FSDP2 (FSDPModule)
        wrapped.set_requires_gradient_sync(sync)
        yield
    elif hasattr(wrapped, "no_sync") and not sync:  # DDP
        with wrapped.no_sync():
            yield
    else:
        yield


def all_reduce_sum(value: torch.Tensor, env: DistEnv, group: str = "dp") -> torch.Tensor:
    """Sum of `value` over the dp group (or "world"); returns a new tensor, the input is untouched."""
    out = value.detach().clone()
    if env.enabled:
        dist.all_reduce(out, op=dist.ReduceOp.SUM, group=env.dp_group if group == "dp" else None)
    return out


def any_rank(flag: bool, env: DistEnv) -> bool:
    """True on every rank if it is true on any (a signal seen by one rank stops all of them at the same step)."""
    if not env.enabled:
        return flag
    t = torch.tensor([int(flag)], device=env.device)
    dist.all_reduce(t, op=dist.ReduceOp.MAX)
    return bool(t.item())


def barrier(env: DistEnv) -> None:
    if env.enabled:
        dist.barrier()


def clip_grad_norm(parameters: Iterable[nn.Parameter], max_norm: float) -> torch.Tensor:
    """Global gradient 2-norm and clipping for plain tensors and DTensors on different meshes.

    torch.nn.utils.clip_grad_norm_ handles DTensors, but stacks every per-parameter norm into one tensor, which
    fails when parameters live on different meshes (FSDP2 + TP: block projections on (dp, tp), norms and
    embeddings on dp). So: torch's get_total_norm per mesh group, each made a full (replicated) value, combined as
    sqrt(sum of squares), then torch's clip_grads_with_norm_ per group with that one total."""
    from torch.distributed.tensor import DTensor

    groups: dict[object, list[nn.Parameter]] = {}
    for p in parameters:
        if p.grad is not None:
            key = p.grad.device_mesh if isinstance(p.grad, DTensor) else None
            groups.setdefault(key, []).append(p)
    if not groups:  # no gradients (every rank has the same parameters, so every rank agrees)
        return torch.zeros(())
    norms = []
    for params in groups.values():
        norm = torch.nn.utils.get_total_norm([p.grad for p in params], 2.0)
        norms.append(norm.full_tensor() if isinstance(norm, DTensor) else norm)
    total = norms[0] if len(norms) == 1 else torch.linalg.vector_norm(torch.stack([n.float() for n in norms]))
    if max_norm != float("inf"):
        for params in groups.values():
            torch.nn.utils.clip_grads_with_norm_(params, max_norm, total)
    return total


def full_model_state_dict(model: nn.Module) -> dict[str, torch.Tensor]:
    """The full (unsharded) model state dict on CPU on rank 0 (other ranks get {}); a collective: every rank
    calls it. A plain module returns its own state_dict on CPU."""
    from torch.distributed.checkpoint.state_dict import StateDictOptions, get_model_state_dict

    return get_model_state_dict(model, options=StateDictOptions(full_state_dict=True, cpu_offload=True))
