"""Command-line glue for the toy world: `add_arguments(parser)` and `run(args) -> int`.

The `stellarbyte data toyworld` verb (owned by stellarbyte/data) can register these directly; the module also runs
standalone: `python -m stellarbyte.data.toyworld --out DIR --size 1MB --seed 0`. `run` prints one table (file,
records, bytes), the generation speed in MB/s and the held-out kinds with their chance levels.
"""

from __future__ import annotations

import argparse
import time

from .build import build_toyworld


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--out", required=True, help="output directory (created; must be empty or a toy world)")
    parser.add_argument("--size", default="1MB", help="total size: a byte count or e.g. 300KB, 1MB, 50MB, 1GB")
    parser.add_argument("--seed", type=int, default=0, help="world seed; same seed and size give identical files")
    parser.add_argument("--overwrite", action="store_true", help="replace a different toy world in --out")


def run(args: argparse.Namespace) -> int:
    start = time.perf_counter()
    manifest = build_toyworld(args.out, args.size, args.seed, overwrite=args.overwrite)
    seconds = time.perf_counter() - start
    print(f"toy world {manifest['version']} seed={manifest['seed']} size={manifest['size']} -> {args.out}")
    w = manifest["world"]
    print(f"world: {w['people']} people, {w['towns']} towns, {w['countries']} countries, {w['facts']} facts")
    print(f"{'file':<26}{'records':>10}{'bytes':>14}")
    for rel, info in manifest["files"].items():
        print(f"{rel:<26}{info.get('records', info.get('documents', 0)):>10}{info['bytes']:>14}")
    total = manifest["total_bytes"]
    print(f"{'total':<26}{'':>10}{total:>14}   {seconds:.1f} s, {total / 1e6 / max(seconds, 1e-9):.1f} MB/s")
    print(f"{'held-out kind':<26}{'count':>10}{'chance':>14}")
    for kind, info in manifest["heldout"]["kinds"].items():
        print(f"{kind:<26}{info['count']:>10}{info['chance']:>14.4f}")
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m stellarbyte.data.toyworld", description=__doc__.split("\n")[0])
    add_arguments(parser)
    return run(parser.parse_args(argv))
