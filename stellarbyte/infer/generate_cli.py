"""`stellarbyte generate MODEL_DIR`: text in, text out, from a saved model directory.

The directory holds a checkpoint (ours or HF Llama/Qwen2/Qwen3/Mistral) and, for text prompts, a tokenizer
saved beside it (tokenizer.json); without one, pass token ids with --ids.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path


def add_parser(subparsers, verb: str) -> None:
    p = subparsers.add_parser(verb, help="generate from a model directory", description=__doc__,
                              formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("model_dir", help="directory with config.json + safetensors (+ tokenizer.json for text)")
    source = p.add_mutually_exclusive_group(required=True)
    source.add_argument("--prompt", help="text prompt (needs a tokenizer in MODEL_DIR or --tokenizer)")
    source.add_argument("--ids", help="comma-separated prompt token ids, e.g. 1,52,97")
    p.add_argument("--tokenizer", help="tokenizer directory (default: MODEL_DIR)")
    p.add_argument("--max-new-tokens", type=int, default=64)
    p.add_argument("--temperature", type=float, default=0.0, help="0 = greedy (default)")
    p.add_argument("--top-k", type=int, default=0, help="keep the k most likely tokens (0 = off)")
    p.add_argument("--top-p", type=float, default=1.0, help="nucleus sampling mass (1.0 = off)")
    p.add_argument("--min-p", type=float, default=0.0, help="min-p threshold relative to the top token (0 = off)")
    p.add_argument("--repetition-penalty", type=float, default=1.0)
    p.add_argument("--seed", type=int, default=None, help="seed for reproducible sampling")
    p.add_argument("--no-stream", action="store_true", help="print only when generation has finished")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from stellarbyte import ByteModel

    model = ByteModel.from_pretrained(args.model_dir).eval()
    tokenizer = None
    if args.prompt is not None:
        from stellarbyte.tokenizer import ByteTokenizer

        tok_dir = Path(args.tokenizer or args.model_dir)
        if not (tok_dir / "tokenizer.json").is_file():
            raise FileNotFoundError(f"no tokenizer.json in {tok_dir}; pass --tokenizer DIR or use --ids")
        tokenizer = ByteTokenizer.from_pretrained(tok_dir)
        ids = tokenizer.encode(args.prompt, add_special_tokens=True)
    else:
        try:
            ids = [int(x) for x in args.ids.split(",") if x.strip()]
        except ValueError as err:
            raise ValueError(f"--ids must be comma-separated integers: {err}") from None
    import torch

    sampling = dict(max_new_tokens=args.max_new_tokens, do_sample=args.temperature > 0,
                    temperature=args.temperature or 1.0, top_k=args.top_k, top_p=args.top_p, min_p=args.min_p,
                    repetition_penalty=args.repetition_penalty, seed=args.seed)
    stream = model.generate(torch.tensor([ids]), stream=True, **sampling)
    new: list[int] = []
    printed = ""
    if args.prompt is not None:
        print(args.prompt, end="", flush=True)
    for token in stream:
        new.append(int(token[0]))
        if tokenizer is None:
            continue
        text = tokenizer.decode(new, skip_special_tokens=True)
        if not args.no_stream and not text.endswith("\ufffd"):  # wait for a whole UTF-8 character
            sys.stdout.write(text[len(printed):])
            sys.stdout.flush()
            printed = text
    if tokenizer is None:
        print(",".join(str(i) for i in ids + new))
    else:
        print(tokenizer.decode(new, skip_special_tokens=True)[len(printed):])
    return 0
