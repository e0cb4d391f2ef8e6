"""`stellarbyte bench layers`: attention, MLP and one decoder block of a named config, forward and
forward+backward, with the torch and Triton kernel backends (and torch.compile of the torch one): median time,
TFLOP/s of the matrix products and the fraction of the bf16 matmul rate measured in the same run."""

from __future__ import annotations

import argparse
import os

import torch

import stellarbyte.kernels as K
from stellarbyte.bench._configs import CONFIGS, get_config
from stellarbyte.bench._layers import AttentionLayer, Block, MLPLayer, layer_flops, rope_tables
from stellarbyte.bench._timing import bench_ms, measure_peaks, parse_dtype, print_table, resolve_device, write_csv


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--config", default=None, help=f"one of {', '.join(CONFIGS)} (default llama-8b on CUDA, "
                                                       "tiny on CPU)")
    parser.add_argument("--backends", default="torch,compile,triton", help="torch, compile (of torch), triton")
    parser.add_argument("--dtype", default="bf16")
    parser.add_argument("--device", default="auto")
    parser.add_argument("--rep-ms", type=float, default=100.0)
    parser.add_argument("--out", default="runs/bench/layers")


def _time_part(module, part: str, backend: str, cfg, device: str, dtype, cos, sin, rep_ms: float, peaks) -> dict:
    x = torch.randn(cfg.batch, cfg.seq, cfg.hidden, device=device, dtype=dtype, requires_grad=True)
    res = torch.randn_like(x)
    fn = torch.compile(module) if backend == "compile" else module

    def call():
        if part == "attention":
            return fn(x, cos, sin)
        return fn(x) if part == "mlp" else fn(x, res, cos, sin)[0]

    try:
        with K.use_backend("torch" if backend == "compile" else backend):
            ms_f = bench_ms(call, device, rep_ms=rep_ms)
            ms_fb = bench_ms(lambda: call().sum().backward(), device, rep_ms=rep_ms)
    except Exception as err:  # noqa: BLE001 -- report and go on with the other parts
        return {"error": f"{type(err).__name__}: {str(err).splitlines()[0][:120] if str(err) else ''}"}
    flops = layer_flops(cfg, part)
    return dict(fwd_ms=ms_f, fwd_bwd_ms=ms_fb, fwd_TFLOPs=flops / ms_f / 1e9, fwd_bwd_TFLOPs=3 * flops / ms_fb / 1e9,
                mfu=3 * flops / ms_fb / 1e9 / peaks.bf16_tflops)


def run(args: argparse.Namespace) -> int:
    device = resolve_device(args.device)
    dtype = parse_dtype(args.dtype)
    name = args.config or ("llama-8b" if device.startswith("cuda") else "tiny")
    cfg = get_config(name)
    peaks = measure_peaks(device)
    torch.manual_seed(0)
    cos, sin = rope_tables(cfg, device)
    rows = []
    for part, cls in (("attention", AttentionLayer), ("mlp", MLPLayer), ("block", Block)):
        module = cls(cfg).to(device=device, dtype=dtype)
        for backend in args.backends.split(","):
            row = {"config": name, "part": part, "backend": backend}
            row.update(_time_part(module, part, backend, cfg, device, dtype, cos, sin, args.rep_ms, peaks))
            rows.append(row)
            print(f"  {part:10s} {backend:8s} {row.get('fwd_ms', float('nan')):8.3f} ms fwd "
                  f"{row.get('fwd_bwd_ms', float('nan')):8.3f} ms fwd+bwd {row.get('error', '')}", flush=True)
    print(f"\nconfig {name}: {cfg}; bf16 matmul peak {peaks.bf16_tflops:.0f} TFLOP/s\n")
    print_table(rows, ["config", "part", "backend", "fwd_ms", "fwd_bwd_ms", "fwd_TFLOPs", "fwd_bwd_TFLOPs", "mfu"])
    path = os.path.join(args.out, "layers.csv")
    write_csv(path, rows)
    print(f"\nwrote {path}")
    return 0
