"""`stellarbyte bench <what>`: one table from benchmark name to the module that runs it.

Each benchmark module exposes `add_arguments(parser)` and `run(args) -> int`; it prints a table and, where it
makes sense, writes CSV/PNG next to it. Benchmarks are commands, never timed tests.
"""

from __future__ import annotations

import argparse
import importlib

BENCHMARKS: dict[str, tuple[str, str]] = {
    "generate": ("stellarbyte.bench.generate", "greedy tokens/s: KV cache vs none vs transformers' generate()"),
    "hf-load": ("stellarbyte.hf.load_bench", "checkpoint load/save time vs transformers' from_pretrained"),
    "tokenizer": ("stellarbyte.bench.tokenizer", "tokenizer encode throughput and BPE training time"),
    "dedup": ("stellarbyte.bench.dedup", "near-duplicate detector precision/recall on planted duplicates"),
    "kernels": ("stellarbyte.bench.kernels", "kernel sweep vs torch eager, torch.compile and Liger-Kernel"),
    "layers": ("stellarbyte.bench.layers", "attention / MLP / block timing"),
    "model": ("stellarbyte.bench.model", "model tokens/s, MFU and peak memory for named configs"),
    "roofline": ("stellarbyte.bench.roofline", "arithmetic intensity and attainable performance per op"),
    "profile": ("stellarbyte.bench.profile", "profile a model step: Chrome trace and top kernels"),
    "train": ("stellarbyte.bench.train", "training tokens/s and MFU: ours vs transformers, eager and compiled"),
    "engine": ("stellarbyte.bench.engine", "offline serving throughput and decode latency vs transformers"),
    "serve": ("stellarbyte.serve.bench", "HTTP server: requests/s and tokens/s under concurrent clients"),
    "quant": ("stellarbyte.bench.quant", "quantization: perplexity change and speed change per scheme"),
}


def add_parser(subparsers, verb: str) -> None:
    parser = subparsers.add_parser(verb, help="benchmarks", description=__doc__,
                                   formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="bench", metavar="<benchmark>", required=True)
    for name, (module_name, summary) in BENCHMARKS.items():
        try:
            module = importlib.import_module(module_name)
        except ModuleNotFoundError as err:
            if err.name and module_name.startswith(err.name):
                continue  # not built yet
            # an optional dependency is missing: keep the benchmark listed, and say what to install when run
            p = sub.add_parser(name, help=summary, description=summary, add_help=True)
            p.set_defaults(func=_missing(name, err.name))
            continue
        p = sub.add_parser(name, help=summary, description=summary)
        module.add_arguments(p)
        p.set_defaults(func=module.run)


def _missing(name: str, package: str | None):
    def run(args: argparse.Namespace) -> int:
        from stellarbyte.cli import StellarByteError

        raise StellarByteError(f"`stellarbyte bench {name}` needs the package {package!r}; install it "
                                  f"(pip install -e '.[dev]' brings every optional dependency)")
    return run
