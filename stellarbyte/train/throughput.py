"""Training throughput: tokens/s and MFU (PaLM, Chowdhery et al. 2022, App. B).

MFU = model_flops_per_token(config, seq_len) * tokens/s / peak FLOP/s, with the FLOP count from
stellarbyte.model.analysis (6 N + 12 L H Q T per token; recomputation from gradient checkpointing is not counted,
as PaLM defines it). The peak is the config's `peak_flops`, else a table of dense bf16 tensor-core peaks by GPU
name; on CPU there is no default peak and MFU is reported as None.
"""

from __future__ import annotations

import time

import torch

from stellarbyte.model.analysis import model_flops_per_token

# dense bf16 peak FLOP/s (vendor data sheets, without sparsity)
GPU_PEAK_BF16 = {"H200": 989e12, "H100": 989e12, "A100": 312e12, "L40S": 362e12, "A10G": 125e12, "L4": 121e12,
                 "RTX 4090": 165e12, "RTX 3090": 71e12}


def default_peak_flops(device: torch.device) -> float | None:
    if device.type != "cuda":
        return None
    name = torch.cuda.get_device_name(device)
    for key, peak in GPU_PEAK_BF16.items():
        if key in name:
            return peak
    return None


class Throughput:
    """Tokens/s and MFU per measured interval: the trainer calls `update` once per log interval (one host
    synchronisation for all its steps). The first interval (warm-up, compilation) is excluded from the mean and
    median."""

    def __init__(self, model_config, seq_len: int, peak_flops: float, device: torch.device) -> None:
        self.device = device
        self.peak = peak_flops if peak_flops > 0 else default_peak_flops(device)
        self.flops_per_token = model_flops_per_token(model_config, seq_len) if model_config is not None else None
        self.steps, self.tokens, self.seconds = 0, 0, 0.0
        self.rates: list[float] = []  # tokens/s of each interval after the first

    def update(self, tokens: int, start: float) -> dict[str, float | None]:
        if self.device.type == "cuda":
            torch.cuda.synchronize(self.device)  # time the GPU work, not the kernel launches
        dt = max(time.perf_counter() - start, 1e-9)
        self.steps += 1
        if self.steps > 1:
            self.tokens += tokens
            self.seconds += dt
            self.rates.append(tokens / dt)
        tps = tokens / dt
        mfu = None
        if self.peak and self.flops_per_token:
            mfu = self.flops_per_token * tps / self.peak
        return {"tokens_per_s": tps, "mfu": mfu, "step_time": dt}

    @property
    def mean_tokens_per_s(self) -> float | None:
        return self.tokens / self.seconds if self.seconds > 0 else None

    @property
    def median_tokens_per_s(self) -> float | None:
        """Robust to a few slow steps (checkpoint I/O, other processes on a shared machine)."""
        if not self.rates:
            return None
        ordered = sorted(self.rates)
        mid = len(ordered) // 2
        return ordered[mid] if len(ordered) % 2 else 0.5 * (ordered[mid - 1] + ordered[mid])
