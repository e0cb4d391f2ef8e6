"""quantize_model: swap a ByteModel's nn.Linear layers for quantized ones, in place, and report the bytes.

Modes (aliases resolved against the model's device by `resolve_mode`):
  "int8-dynamic"  CPU: Int8DynamicLinear or torch.ao's dynamic Linear (backend="ours" | "ao" | "auto")
  "int8-weight"   GPU: WeightOnlyLinear(bits=8), per-channel scales
  "int4"          GPU: WeightOnlyLinear(bits=4), group-wise (group_size 32/64/128), symmetric or not
  "int8"          alias: int8-dynamic on CPU, int8-weight on CUDA (what `--quantize int8` means in the CLIs)
What is quantized, and why:
  * every nn.Linear of the decoder (q/k/v/o projections, gate/up/down): >95% of the weight bytes a decode
    step reads once lm_head is excluded;
  * lm_head is skipped by default (`skip=("lm_head",)`): it sets every logit directly, so its error reaches the
    perplexity undamped; with tied embeddings a quantized copy would ADD bytes (the embedding stays float).
    Pass skip=() to quantize it anyway (it then gets our module, never torch.ao's, whose `weight` is a method);
  * embeddings are never quantized: a lookup reads one row per token, so there is no bandwidth to save.
Errors name the fix: an unknown mode lists the modes; int4 / int8-weight on a CPU model say that the CPU
path would dequantize every call (slower than float) and point to int8 (dynamic); int8-dynamic on CUDA points
to int8 weight-only. Tests pass allow_reference=True to run the weight-only torch reference on CPU.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch
from torch import nn

from stellarbyte.infer.quant.base import QuantizedLinear
from stellarbyte.infer.quant.int8_dynamic import Int8DynamicLinear, ao_dynamic_linear
from stellarbyte.infer.quant.schemes import GROUP_SIZES
from stellarbyte.infer.quant.weight_only import KERNELS, WeightOnlyLinear

MODES = ("int8-dynamic", "int8-weight", "int4")
ALIASES = {"int8": None, "int8-weight-only": "int8-weight", "int4-weight": "int4", "int4-weight-only": "int4",
           "w8a8": "int8-dynamic", "dynamic-int8": "int8-dynamic"}
INT8_DYNAMIC_BACKENDS = ("auto", "ours", "ao")
# "auto" for int8-dynamic: torch.ao's fused FBGEMM/oneDNN kernel measured faster than our module at decode on
# this 2-core CPU (docs/quantization.md: bench quant), so it is the default where it applies (float32, CPU).
AUTO_INT8_DYNAMIC = "ao"


def resolve_mode(mode: str, device: torch.device | str) -> str:
    """Canonical mode for a model on `device`, or a ValueError naming what to use instead."""
    key = str(mode).strip().lower()
    if key in MODES:
        canonical = key
    elif key in ALIASES:
        canonical = ALIASES[key] or ("int8-weight" if torch.device(device).type == "cuda" else "int8-dynamic")
    else:
        raise ValueError(f"unknown quantization mode {mode!r}; choose one of {', '.join(MODES)} "
                         f"(or 'int8': dynamic on CPU, weight-only on CUDA)")
    on_cuda = torch.device(device).type == "cuda"
    if canonical == "int8-dynamic" and on_cuda:
        raise ValueError("int8-dynamic is the CPU scheme; on CUDA use 'int8' (weight-only int8) or 'int4'")
    return canonical


def _check_device(mode: str, device: torch.device, allow_reference: bool) -> None:
    if mode in ("int8-weight", "int4") and device.type != "cuda" and not allow_reference:
        raise ValueError(f"{mode} weight-only quantization runs its fused kernel on CUDA; on {device.type} every "
                         f"call would dequantize the weights first (slower than float). Use 'int8' (dynamic int8) "
                         f"for CPU inference, or move the model to a GPU first")


@dataclass(slots=True)
class QuantReport:
    mode: str
    group_size: int | None
    quantized: list[str] = field(default_factory=list)  # module names swapped
    skipped: list[str] = field(default_factory=list)  # nn.Linear names left in float (skip list)
    linear_bytes_before: int = 0  # float bytes of the swapped layers' weights (+ bias)
    linear_bytes_after: int = 0  # bytes of their quantized replacements
    model_bytes_before: int = 0  # every parameter and buffer, tied tensors once
    model_bytes_after: int = 0

    @property
    def ratio(self) -> float:
        return self.model_bytes_after / max(self.model_bytes_before, 1)

    def summary(self) -> str:
        mib = 1 / 2**20
        return (f"{self.mode}: {len(self.quantized)} linear layers quantized ({len(self.skipped)} skipped: "
                f"{', '.join(self.skipped[:3]) or '-'}); their weights {self.linear_bytes_before * mib:.2f} -> "
                f"{self.linear_bytes_after * mib:.2f} MiB; model {self.model_bytes_before * mib:.2f} -> "
                f"{self.model_bytes_after * mib:.2f} MiB ({self.ratio:.1%})")


def model_bytes(model: nn.Module) -> int:
    """Bytes of every parameter and buffer, tied tensors counted once, plus torch.ao modules' packed weights
    (which are neither parameters nor buffers)."""
    seen: dict[int, torch.Tensor] = {}
    for t in list(model.parameters()) + [b for b in model.buffers() if b.numel()]:
        seen.setdefault(id(t), t)
    packed = sum(_module_bytes(m) for m in model.modules() if _is_ao_linear(m))
    return sum(t.numel() * t.element_size() for t in seen.values()) + packed


def _is_ao_linear(module: nn.Module) -> bool:
    return type(module).__module__.startswith("torch.ao.nn.quantized") and callable(getattr(module, "weight", None))


def _skipped(name: str, skip: tuple[str, ...]) -> bool:
    parts = name.split(".")
    return any(name == s or name.endswith("." + s) or s in parts for s in skip)


def quantize_model(model: nn.Module, mode: str, group_size: int = 128, symmetric: bool = True,
                   skip: tuple[str, ...] | list[str] = ("lm_head",), backend: str = "auto",
                   allow_reference: bool = False, kernel: str = "auto") -> QuantReport:
    """Replace every nn.Linear of `model` (except names in `skip`) with its quantized version; returns a report.

    backend applies to int8-dynamic: "ours" (Int8DynamicLinear), "ao" (torch.ao), "auto" (see AUTO_INT8_DYNAMIC).
    kernel applies to weight-only layers: "auto" | "triton" | "tinygemm" | "torch" (WeightOnlyLinear.kernel)."""
    device = next(model.parameters()).device
    mode = resolve_mode(mode, device)
    _check_device(mode, device, allow_reference)
    if mode == "int4" and group_size not in GROUP_SIZES:
        raise ValueError(f"group_size={group_size} is not supported; choose one of {GROUP_SIZES}")
    if kernel not in KERNELS:
        raise ValueError(f"unknown weight-only kernel {kernel!r}; choose one of {KERNELS}")
    if backend not in INT8_DYNAMIC_BACKENDS:
        raise ValueError(f"unknown int8-dynamic backend {backend!r}; choose one of {INT8_DYNAMIC_BACKENDS}")
    if any(isinstance(m, QuantizedLinear) or _is_ao_linear(m) for m in model.modules()):
        raise ValueError("this model is already quantized; load the float checkpoint again to change the mode")
    skip = tuple(skip)
    report = QuantReport(mode, group_size if mode == "int4" else None, model_bytes_before=model_bytes(model))
    targets = [(name, m) for name, m in model.named_modules() if type(m) is nn.Linear]
    for name, linear in targets:
        if _skipped(name, skip):
            report.skipped.append(name)
            continue
        new = _convert(linear, mode, group_size, symmetric, backend, is_head=name.endswith("lm_head"))
        if isinstance(new, WeightOnlyLinear):
            new.kernel = kernel
        parent_name, _, leaf = name.rpartition(".")
        setattr(model.get_submodule(parent_name) if parent_name else model, leaf, new)
        report.quantized.append(name)
        report.linear_bytes_before += sum(p.numel() * p.element_size() for p in linear.parameters())
        report.linear_bytes_after += _module_bytes(new)
    report.model_bytes_after = model_bytes(model)
    return report


def _convert(linear: nn.Linear, mode: str, group_size: int, symmetric: bool, backend: str,
             is_head: bool) -> nn.Module:
    if mode == "int8-weight":
        return WeightOnlyLinear.from_linear(linear, bits=8)
    if mode == "int4":
        return WeightOnlyLinear.from_linear(linear, bits=4, group_size=group_size, symmetric=symmetric)
    use_ao = backend == "ao" or (backend == "auto" and AUTO_INT8_DYNAMIC == "ao"
                                 and linear.weight.dtype == torch.float32 and not linear.weight.is_cuda)
    if use_ao and not is_head:
        return ao_dynamic_linear(linear)
    return Int8DynamicLinear.from_linear(linear)


def _module_bytes(module: nn.Module) -> int:
    if isinstance(module, QuantizedLinear):
        return module.weight_bytes()
    # torch.ao dynamic Linear: int8 weight + per-channel float scale and zero point (+ bias), packed inside
    w = module.weight()
    n = w.shape[0]
    bias = module.bias()
    return w.numel() + n * 8 + (bias.numel() * bias.element_size() if bias is not None else 0)
