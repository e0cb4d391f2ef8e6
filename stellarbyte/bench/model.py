"""`stellarbyte bench model`: training throughput of a named config built with ByteModel: tokens/s of a full
step (forward, backward, AdamW), MFU against the bf16 matmul rate measured in the same run, and peak memory,
for each kernel backend (the model calls the kernels through the registry).

MFU counts stellarbyte.model.analysis.model_flops_per_token per token (PaLM appendix B: 6 N + 12 L H Q T, N = the
matmul weights including the LM head, attention over the full T x T square), the count `bench train` and the
trainer use. (Before the training benchmark existed this file halved the attention term for causal masking, so
its older MFU figures in docs/benchmarks.md are a little lower than this count gives.)
"""

from __future__ import annotations

import argparse
import os
import time

import torch

import stellarbyte.kernels as K
from stellarbyte.bench._configs import CONFIGS, get_config
from stellarbyte.bench._timing import measure_peaks, print_table, resolve_device, sync, write_csv


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--config", default=None, help=f"one of {', '.join(CONFIGS)} (default llama-1b on CUDA, "
                                                       "tiny on CPU)")
    parser.add_argument("--backends", default="torch,triton")
    parser.add_argument("--steps", type=int, default=10, help="timed steps (after 3 warm-up steps)")
    parser.add_argument("--device", default="auto")
    parser.add_argument("--batch", type=int, default=None, help="override the config's batch size")
    parser.add_argument("--out", default="runs/bench/model")


def step_flops(model: torch.nn.Module, cfg, tokens: int) -> float:
    from stellarbyte.model.analysis import model_flops_per_token

    return model_flops_per_token(model.config, cfg.seq) * tokens


def _train_steps(model: torch.nn.Module, cfg, backend: str, batch: int, steps: int, device: str, peaks) -> dict:
    torch.manual_seed(0)
    model = model.to(device)
    cuda = device.startswith("cuda")
    opt = torch.optim.AdamW(model.parameters(), lr=1e-4, fused=cuda)
    ids = torch.randint(0, cfg.vocab, (batch, cfg.seq), device=device)

    def step():
        with torch.autocast("cuda" if cuda else "cpu", dtype=torch.bfloat16, enabled=cuda):
            loss = model(ids, labels=ids).loss
        loss.backward()
        opt.step()
        opt.zero_grad(set_to_none=True)
        return loss

    try:
        with K.use_backend(backend):
            for _ in range(3):
                step()
            sync(device)
            if cuda:
                torch.cuda.reset_peak_memory_stats()
            t0 = time.perf_counter()
            for _ in range(steps):
                loss = step()
            sync(device)
            dt = (time.perf_counter() - t0) / steps
    except Exception as err:  # noqa: BLE001 -- report and go on with the other backends
        return {"error": f"{type(err).__name__}: {str(err).splitlines()[0][:160] if str(err) else ''}"}
    tokens = batch * cfg.seq
    return dict(step_ms=dt * 1e3, tokens_per_s=tokens / dt, loss=float(loss.detach()),
                mfu=step_flops(model, cfg, tokens) / dt / 1e12 / peaks.bf16_tflops,
                peak_GB=torch.cuda.max_memory_allocated() / 1e9 if cuda else float("nan"))


def run(args: argparse.Namespace) -> int:
    from stellarbyte import ByteConfig, ByteModel

    device = resolve_device(args.device)
    name = args.config or ("llama-1b" if device.startswith("cuda") else "tiny")
    cfg = get_config(name)
    batch = args.batch or cfg.batch
    peaks = measure_peaks(device)
    rows = []
    for backend in args.backends.split(","):
        row = {"config": name, "backend": backend, "batch": batch, "seq": cfg.seq}
        row.update(_train_steps(ByteModel(ByteConfig(**cfg.byte_config_kwargs())), cfg, backend, batch, args.steps,
                                device, peaks))
        rows.append(row)
        print(f"  {backend:8s} {row.get('step_ms', float('nan')):9.2f} ms/step {row.get('error', '')}", flush=True)
        if device.startswith("cuda"):
            torch.cuda.empty_cache()
    print(f"\nconfig {name} (batch {batch}, seq {cfg.seq}); bf16 matmul peak {peaks.bf16_tflops:.0f} TFLOP/s\n")
    print_table(rows, ["config", "backend", "batch", "seq", "step_ms", "tokens_per_s", "mfu", "peak_GB", "loss"])
    path = os.path.join(args.out, "model.csv")
    write_csv(path, rows)
    print(f"\nwrote {path}")
    return 0
