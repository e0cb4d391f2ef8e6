"""Checkpoint save/load time, ours against transformers, side by side in one run (CPU).

  python -m stellarbyte.hf.load_bench [--hidden 512 --layers 8 --vocab 32000 --repeats 5]

Saves one random Llama-shaped ByteModel (HF-native, so both libraries read the same files), then times
ByteModel.from_pretrained and AutoModelForCausalLM.from_pretrained alternately, after one untimed warm-up
load of each (imports, page cache). Prints a markdown table of median seconds. Exposes add_arguments / run
in the shape `stellarbyte bench` expects.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

import torch

from stellarbyte.config import ByteConfig
from stellarbyte.model.transformer import ByteModel


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--hidden", type=int, default=512)
    parser.add_argument("--layers", type=int, default=8)
    parser.add_argument("--vocab", type=int, default=32000)
    parser.add_argument("--repeats", type=int, default=5)


def _median_seconds(fn, repeats: int) -> float:
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def run(args: argparse.Namespace) -> int:
    from transformers import AutoModelForCausalLM

    from stellarbyte.hf.parity import quiet_transformers

    quiet_transformers()
    if args.hidden % 64 or args.repeats < 1:
        raise ValueError("--hidden must be a multiple of 64 (head_dim 64) and --repeats at least 1")
    torch.manual_seed(0)
    heads = args.hidden // 64
    config = ByteConfig(vocab_size=args.vocab, hidden_size=args.hidden, num_hidden_layers=args.layers,
                        num_attention_heads=heads, num_key_value_heads=max(heads // 2, 1))
    model = ByteModel(config)
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "ckpt"
        save_s = _median_seconds(lambda: model.save_pretrained(path), args.repeats)
        ByteModel.from_pretrained(path)
        AutoModelForCausalLM.from_pretrained(path)
        ours = _median_seconds(lambda: ByteModel.from_pretrained(path), args.repeats)
        theirs = _median_seconds(lambda: AutoModelForCausalLM.from_pretrained(path), args.repeats)
        size_mb = sum(p.stat().st_size for p in path.iterdir()) / 1e6
    print(f"model: {model.num_parameters() / 1e6:.1f}M parameters, {size_mb:.0f} MB float32 checkpoint, "
          f"median of {args.repeats}")
    print("| step | seconds |\n| --- | --- |")
    print(f"| ByteModel.save_pretrained | {save_s:.3f} |")
    print(f"| ByteModel.from_pretrained | {ours:.3f} |")
    print(f"| AutoModelForCausalLM.from_pretrained | {theirs:.3f} |")
    print(f"\nours / transformers load time: {ours / theirs:.2f}x")
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m stellarbyte.hf.load_bench", description=__doc__.splitlines()[0])
    add_arguments(parser)
    return run(parser.parse_args(argv))


if __name__ == "__main__":
    raise SystemExit(main())
