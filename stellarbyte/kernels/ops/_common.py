"""Helpers shared by the Triton launchers: device checks, block sizes and per-device program counts."""

from __future__ import annotations

import functools

import torch
import triton


def is_interpreted(kernel: object) -> bool:
    """True when `kernel` was decorated under TRITON_INTERPRET=1 (it then runs on CPU tensors with numpy)."""
    return type(kernel).__name__ == "InterpretedFunction"


def check_device(kernel: object, *tensors: torch.Tensor | None) -> None:
    """Triton kernels need CUDA tensors, or CPU tensors when the kernels were built for the interpreter."""
    interpreted = is_interpreted(kernel)
    for t in tensors:
        if t is None:
            continue
        if t.is_cuda and interpreted:
            raise ValueError("Triton kernels were imported under TRITON_INTERPRET=1 and cannot run on CUDA "
                             "tensors; unset TRITON_INTERPRET in a fresh process")
        if not t.is_cuda and not interpreted:
            raise ValueError(f"backend 'triton' needs CUDA tensors (got {t.device}); use backend='torch' or 'auto', "
                             "or set TRITON_INTERPRET=1 before importing the kernels to run them on CPU")


@functools.lru_cache(maxsize=8)
def _sm_count(index: int) -> int:
    return torch.cuda.get_device_properties(index).multi_processor_count


def num_programs(x: torch.Tensor, rows: int, per_sm: int = 4) -> int:
    """A persistent grid: a few programs per multiprocessor (few on the interpreter, which runs them serially)."""
    if not x.is_cuda:
        return max(1, min(rows, 4))
    return max(1, min(rows, _sm_count(x.device.index or 0) * per_sm))


def row_block(n: int) -> int:
    """The power-of-two tile that holds a whole row of n elements."""
    return triton.next_power_of_2(max(n, 1))


def row_warps(block: int) -> int:
    """Warps for a one-row-per-program kernel: enough threads to keep 16-byte loads per thread."""
    if block >= 32768:
        return 32
    if block >= 8192:
        return 16
    if block >= 2048:
        return 8
    return 4
