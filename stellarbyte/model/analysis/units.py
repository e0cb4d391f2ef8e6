"""Dtype sizes and names, and human-readable units (counts, FLOPs, bytes) for the analysis report."""

from __future__ import annotations

import torch

# ---- dtypes ----------------------------------------------------------------------------------------------

DTYPE_ALIASES = {
    "float32": "float32", "fp32": "float32", "float": "float32",
    "bfloat16": "bfloat16", "bf16": "bfloat16",
    "float16": "float16", "fp16": "float16", "half": "float16",
    "float8_e4m3fn": "float8_e4m3fn", "fp8": "float8_e4m3fn", "int8": "int8",
}


def dtype_bytes(dtype: str | torch.dtype) -> int:
    """Bytes per element of a dtype name ('bfloat16', 'bf16', 'fp32', ...) or a torch.dtype."""
    if isinstance(dtype, torch.dtype):
        return dtype.itemsize
    name = DTYPE_ALIASES.get(str(dtype).lower().removeprefix("torch."))
    if name is None:
        raise ValueError(f"unknown dtype {dtype!r}: use one of {', '.join(sorted(set(DTYPE_ALIASES)))}")
    return getattr(torch, name).itemsize


def dtype_name(dtype: str | torch.dtype) -> str:
    if isinstance(dtype, torch.dtype):
        return str(dtype).removeprefix("torch.")
    dtype_bytes(dtype)  # validates
    return DTYPE_ALIASES[str(dtype).lower().removeprefix("torch.")]


# ---- human-readable units --------------------------------------------------------------------------------


def format_count(n: float) -> str:
    for unit, scale in (("B", 1e9), ("M", 1e6), ("K", 1e3)):
        if abs(n) >= scale:
            return f"{n / scale:.2f}{unit}"
    return f"{n:g}"


def format_flops(n: float, per_token: bool = True) -> str:
    for unit, scale in (("P", 1e15), ("T", 1e12), ("G", 1e9), ("M", 1e6), ("K", 1e3)):
        if abs(n) >= scale:
            text = f"{n / scale:.3f} {unit}FLOP"
            break
    else:
        text = f"{n:g} FLOP"
    return text + ("/token" if per_token else "")


def format_bytes(n: float) -> str:
    for unit in ("B", "KiB", "MiB", "GiB"):
        if abs(n) < 1024 or unit == "GiB":
            return f"{n:.0f} B" if unit == "B" else f"{n:.2f} {unit}"
        n /= 1024
    raise AssertionError("unreachable")

