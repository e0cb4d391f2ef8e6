"""The `stellarbyte` command: one table from verb to the module that defines it.

Each verb lives beside the code it drives, in a module exposing `add_parser(subparsers, verb)`, which
registers an argparse sub-parser named `verb` whose `func` default takes the parsed namespace and returns an
exit code. Modules are imported lazily, so `stellarbyte --help` stays fast and one broken verb cannot take
the others down.

User errors (bad config, missing path, invalid data) raise ValueError / FileNotFoundError / StellarByteError;
`main` prints them as one line and exits with status 2 instead of a traceback.
"""

from __future__ import annotations

import argparse
import importlib
import sys

# verb -> (module with add_parser, one-line summary)
COMMANDS: dict[str, tuple[str, str]] = {
    "info": ("stellarbyte.model.analysis_cli", "parameter counts, FLOPs and memory of a config or checkpoint"),
    "generate": ("stellarbyte.infer.generate_cli", "generate text or token ids from a model directory"),
    "demo": ("stellarbyte.demo", "build a small model, save it, reload it and generate (end-to-end smoke run)"),
    "quickstart": ("stellarbyte.quickstart", "the main job: toy world -> tokenizer -> pretrain -> SFT -> eval"),
    "tokenizer": ("stellarbyte.tokenizer.commands", "train, inspect and test tokenizers"),
    "data": ("stellarbyte.data.commands", "ingest, clean, dedup, analyse and pack datasets; the toy world"),
    "bench": ("stellarbyte.bench.commands", "benchmarks: generation, kernels, layers, models, roofline"),
    "pretrain": ("stellarbyte.train.commands", "pretrain a model from a YAML config"),
    "sft": ("stellarbyte.train.commands", "supervised fine-tuning"),
    "eval": ("stellarbyte.eval.commands", "evaluate perplexity and task accuracy"),
    "serve": ("stellarbyte.serve.commands", "OpenAI-compatible HTTP server and web chat"),
    "chat": ("stellarbyte.serve.chat_cli", "terminal chat with a model directory"),
    "export": ("stellarbyte.train.export", "export a training run (any world size) as a Hugging Face checkpoint"),
}


class StellarByteError(Exception):
    """An error the user can fix; the CLI prints its message without a traceback."""


USER_ERRORS = (StellarByteError, ValueError, FileNotFoundError, FileExistsError, NotADirectoryError, KeyError)


def build_parser(argv: list[str]) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="stellarbyte", description="StellarByte: a from-scratch LLM stack.")
    subparsers = parser.add_subparsers(dest="command", metavar="<verb>")
    wanted = argv[0] if argv and not argv[0].startswith("-") else None
    for verb, (module_name, summary) in COMMANDS.items():
        if wanted is not None and verb != wanted:
            subparsers.add_parser(verb, help=summary, add_help=False)
            continue
        try:
            module = importlib.import_module(module_name)
        except ModuleNotFoundError as err:
            if not err.name or not module_name.startswith(err.name):
                raise
            continue  # verb not built yet: hidden from the table
        module.add_parser(subparsers, verb)
    return parser


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    parser = build_parser(argv)
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help()
        return 0 if not argv else 2
    try:
        return int(args.func(args) or 0)
    except USER_ERRORS as err:
        message = err.args[0] if isinstance(err, KeyError) and err.args else err
        print(f"stellarbyte {args.command}: error: {message}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"stellarbyte {args.command}: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
