"""`stellarbyte bench profile`: profile training steps of a named config with torch.profiler, write a Chrome
trace (open in chrome://tracing or https://ui.perfetto.dev) and print the top kernels by self time."""

from __future__ import annotations

import argparse
import os

import torch
from torch.profiler import ProfilerActivity, profile

import stellarbyte.kernels as K
from stellarbyte.bench._configs import CONFIGS, get_config
from stellarbyte.bench._timing import resolve_device


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--config", default="tiny", help=f"one of {', '.join(CONFIGS)}")
    parser.add_argument("--backend", default=None, help="kernel backend: torch | triton | auto (default: registry)")
    parser.add_argument("--steps", type=int, default=2, help="profiled steps (after one warm-up step)")
    parser.add_argument("--batch", type=int, default=None)
    parser.add_argument("--device", default="auto")
    parser.add_argument("--top", type=int, default=15)
    parser.add_argument("--out", default="runs/bench/profile", help="directory for trace.json")


def top_kernels(prof, device: str, n: int) -> list[tuple[str, float, int]]:
    """(name, self milliseconds, calls) of the n most expensive ops/kernels, device time when on CUDA."""
    out = []
    for evt in prof.key_averages():
        t = evt.self_device_time_total if device.startswith("cuda") else evt.self_cpu_time_total
        if t > 0:
            out.append((evt.key, t / 1e3, evt.count))
    return sorted(out, key=lambda r: -r[1])[:n]


def run(args: argparse.Namespace) -> int:
    from stellarbyte import ByteConfig, ByteModel

    device = resolve_device(args.device)
    cfg = get_config(args.config)
    if args.steps < 1:
        raise ValueError("--steps must be >= 1")
    batch = args.batch or cfg.batch
    torch.manual_seed(0)
    model = ByteModel(ByteConfig(**cfg.byte_config_kwargs())).to(device)
    if device.startswith("cuda"):
        model = model.to(torch.bfloat16)
    opt = torch.optim.AdamW(model.parameters(), lr=1e-4)
    ids = torch.randint(0, cfg.vocab, (batch, cfg.seq), device=device)
    backend = args.backend or K.get_backend()

    def step():
        loss = model(ids, labels=ids).loss
        loss.backward()
        opt.step()
        opt.zero_grad(set_to_none=True)

    activities = [ProfilerActivity.CPU] + ([ProfilerActivity.CUDA] if device.startswith("cuda") else [])
    with K.use_backend(backend):
        step()  # warm-up: compilation and autotuning stay out of the trace
        with profile(activities=activities, record_shapes=True) as prof:
            for _ in range(args.steps):
                step()
            if device.startswith("cuda"):
                torch.cuda.synchronize()
    os.makedirs(args.out, exist_ok=True)
    path = os.path.join(args.out, "trace.json")
    tmp = path + ".tmp"
    prof.export_chrome_trace(tmp)
    os.replace(tmp, path)
    rows = top_kernels(prof, device, args.top)
    total = sum(r[1] for r in top_kernels(prof, device, 10**6))
    clock = "device" if device.startswith("cuda") else "CPU"
    print(f"config {args.config}, backend {backend}, {args.steps} step(s); top {len(rows)} by self {clock} time:")
    print(f"{'ms':>9}  {'share':>6}  {'calls':>6}  name")
    for name, ms, calls in rows:
        print(f"{ms:9.3f}  {ms / total:6.1%}  {calls:6d}  {name[:90]}")
    print(f"\nwrote {path}")
    return 0
