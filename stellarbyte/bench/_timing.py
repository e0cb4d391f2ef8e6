"""Timing, peak and output helpers shared by the kernel, layer, model and roofline benchmarks.

Method (see docs/kernels.md): medians of many runs after warm-up, CUDA events through
triton.testing.do_bench when a GPU is present (perf_counter medians on CPU); device peaks are measured in the
same run -- a large device-to-device copy for bandwidth (bytes read + written) and a large bf16 matmul on
random data for compute -- so "fraction of peak" compares like with like.
"""

from __future__ import annotations

import csv
import os
import statistics
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import torch


def sync(device: str) -> None:
    if device.startswith("cuda"):
        torch.cuda.synchronize()


def bench_ms(fn: Callable[[], object], device: str, warmup_ms: float = 25, rep_ms: float = 100) -> float:
    """Median milliseconds of fn()."""
    if device.startswith("cuda"):
        import triton.testing

        return float(triton.testing.do_bench(fn, warmup=warmup_ms, rep=rep_ms, return_mode="median"))
    fn()  # warm-up
    times = []
    deadline = time.perf_counter() + rep_ms / 1e3
    while len(times) < 3 or (time.perf_counter() < deadline and len(times) < 50):
        t0 = time.perf_counter()
        fn()
        times.append((time.perf_counter() - t0) * 1e3)
    return statistics.median(times)


@dataclass(slots=True)
class Peaks:
    """Device ceilings measured in this run (or given by the user)."""

    bandwidth_gbps: float  # GB/s, counting bytes read + written
    bf16_tflops: float
    measured: bool = True


def measure_peaks(device: str, copy_bytes: int = 2 << 30, matmul_n: int = 8192) -> Peaks:
    """A large device-to-device copy and a large bf16 matmul on random data."""
    if not device.startswith("cuda"):
        return Peaks(bandwidth_gbps=float("nan"), bf16_tflops=float("nan"), measured=False)
    bandwidth = 2 * copy_bytes / (_copy_ms(device, copy_bytes) * 1e-3) / 1e9
    tflops = 2 * matmul_n**3 / (_matmul_ms(device, matmul_n) * 1e-3) / 1e12
    torch.cuda.empty_cache()
    return Peaks(bandwidth, tflops)


def _copy_ms(device: str, copy_bytes: int) -> float:
    src = torch.randn(copy_bytes // 2, device=device, dtype=torch.bfloat16)  # random data, never zeros
    dst = torch.empty_like(src)
    return bench_ms(lambda: dst.copy_(src), device)


def _matmul_ms(device: str, n: int) -> float:
    a = torch.randn(n, n, device=device, dtype=torch.bfloat16)
    b = torch.randn(n, n, device=device, dtype=torch.bfloat16)
    return bench_ms(lambda: a @ b, device)


def extra_peak_bytes(fn: Callable[[], object], device: str) -> float:
    """Peak memory allocated while fn() runs, above what was allocated before it (CUDA only; NaN on CPU)."""
    if not device.startswith("cuda"):
        return float("nan")
    sync(device)
    torch.cuda.empty_cache()
    before = torch.cuda.memory_allocated()
    torch.cuda.reset_peak_memory_stats()
    fn()
    sync(device)
    return float(torch.cuda.max_memory_allocated() - before)


def write_csv(path: str, rows: Sequence[dict]) -> None:
    """Write rows atomically (temp file, then os.replace)."""
    if not rows:
        return
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    fields = list(rows[0].keys())
    for row in rows:
        fields += [k for k in row if k not in fields]
    fd, tmp = tempfile.mkstemp(dir=os.path.dirname(os.path.abspath(path)), suffix=".csv.tmp")
    with os.fdopen(fd, "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=fields)
        writer.writeheader()
        writer.writerows(rows)
    os.replace(tmp, path)


def fmt(value: object) -> str:
    if isinstance(value, float):
        if value != value:  # NaN
            return "-"
        return f"{value:.3g}" if abs(value) < 1000 else f"{value:.0f}"
    return str(value)


def print_table(rows: Sequence[dict], columns: Sequence[str]) -> None:
    cells = [[fmt(r.get(c, "")) for c in columns] for r in rows]
    widths = [max(len(c), *(len(row[i]) for row in cells)) if cells else len(c) for i, c in enumerate(columns)]
    print("  ".join(c.ljust(w) for c, w in zip(columns, widths)))
    print("  ".join("-" * w for w in widths))
    for row in cells:
        print("  ".join(v.ljust(w) for v, w in zip(row, widths)))


def resolve_device(name: str) -> str:
    if name == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    if name.startswith("cuda") and not torch.cuda.is_available():
        raise ValueError("--device cuda asked for, but torch sees no CUDA device; use --device cpu")
    return name


DTYPES = {"bf16": torch.bfloat16, "fp16": torch.float16, "fp32": torch.float32}


def parse_dtype(name: str) -> torch.dtype:
    if name not in DTYPES:
        raise ValueError(f"--dtype must be one of {', '.join(DTYPES)}, got {name!r}")
    return DTYPES[name]
