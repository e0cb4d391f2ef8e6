"""Load a model directory for inference: checks, device and dtype, optional quantization, tokenizer.

Shared by `stellarbyte serve` and `stellarbyte chat`, which then size their engines differently (many
concurrent requests vs one conversation). Errors name the missing file or the flag to change.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any


def resolve_device_dtype(device: str | None, dtype: str | None) -> tuple[Any, Any]:
    """device None/"auto": CUDA when available; dtype None/"auto": bfloat16 on CUDA, float32 on CPU."""
    import torch

    if device in (None, "auto"):
        device = "cuda" if torch.cuda.is_available() else "cpu"
    dev = torch.device(device)
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise ValueError(f"--device {device} but CUDA is not available; use --device cpu")
    if dtype in (None, "auto"):
        return dev, torch.bfloat16 if dev.type == "cuda" else torch.float32
    return dev, getattr(torch, dtype)


def load_for_inference(model_dir: str | Path, tokenizer_dir: str | Path | None = None, device: str | None = None,
                       dtype: str | None = None, quantize: str = "none", threads: int | None = None) -> tuple:
    """Return (model in eval mode on device/dtype, possibly quantized, ByteTokenizer)."""
    import torch

    from stellarbyte import ByteModel
    from stellarbyte.tokenizer.tokenizer import ByteTokenizer

    model_dir = Path(model_dir)
    if not (model_dir / "config.json").is_file():
        raise FileNotFoundError(f"{model_dir} has no config.json; pass a directory saved by save_pretrained "
                                f"(e.g. a quickstart run's model/)")
    tok_dir = Path(tokenizer_dir or model_dir)
    if not (tok_dir / "tokenizer.json").is_file():
        raise FileNotFoundError(f"no tokenizer.json in {tok_dir}; pass --tokenizer DIR")
    if threads is not None:
        if threads < 1:
            raise ValueError(f"--threads {threads} must be >= 1")
        torch.set_num_threads(threads)
    dev, torch_dtype = resolve_device_dtype(device, dtype)
    model = ByteModel.from_pretrained(model_dir).to(device=dev, dtype=torch_dtype).eval()
    if quantize != "none":
        try:
            from stellarbyte.infer.quant import quantize_model
        except ImportError as err:
            raise ValueError(f"--quantize {quantize} needs stellarbyte.infer.quant, which this install lacks "
                             f"({err}); use --quantize none") from None
        report = quantize_model(model, quantize)  # swaps the nn.Linear layers in place
        summary = getattr(report, "summary", None)
        if callable(summary):
            print(f"quantized {summary()}", file=sys.stderr, flush=True)
    return model, ByteTokenizer.from_pretrained(tok_dir)
