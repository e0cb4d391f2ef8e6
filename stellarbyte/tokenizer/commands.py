"""`stellarbyte tokenizer train|encode|info`: the CLI for stellarbyte.tokenizer.

    stellarbyte tokenizer train --input a.txt b.jsonl --vocab-size 8192 --out tok/ [--model bpe] [--text-field text]
    stellarbyte tokenizer encode --tokenizer tok/ "Hello world"
    stellarbyte tokenizer info tok/
"""

from __future__ import annotations

import argparse
import time

from .pipeline import MODEL_TYPES
from .special_tokens import MIN_VOCAB_SIZE


def add_parser(subparsers, verb: str) -> None:
    parser = subparsers.add_parser(verb, help="train, inspect and test tokenizers", description=__doc__,
                                   formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="tokenizer_command", metavar="<command>", required=True)

    p = sub.add_parser("train", help="train a byte-level tokenizer and save a transformers-loadable directory")
    p.add_argument("--input", nargs="+", required=True, metavar="FILE",
                   help="training files (.txt, .jsonl, .parquet) or directories holding them")
    p.add_argument("--vocab-size", type=int, default=8192, help=f"number of ids incl. specials (>= {MIN_VOCAB_SIZE})")
    p.add_argument("--out", required=True, help="output directory")
    p.add_argument("--model", choices=MODEL_TYPES, default="bpe", help="tokenizer model (default: bpe)")
    p.add_argument("--text-field", default="text", help="the text field of .jsonl records / .parquet column")
    p.add_argument("--min-frequency", type=int, default=2, help="BPE/WordPiece: ignore pairs seen fewer times")
    p.set_defaults(func=_train)

    p = sub.add_parser("encode", help="print the ids and tokens of a text")
    p.add_argument("--tokenizer", required=True, help="tokenizer directory")
    p.add_argument("text", help="the text to encode")
    p.add_argument("--add-special-tokens", action="store_true", help="prepend <|bos|>")
    p.set_defaults(func=_encode)

    p = sub.add_parser("info", help="vocabulary size, model, special tokens and chat template of a tokenizer")
    p.add_argument("directory", help="tokenizer directory")
    p.set_defaults(func=_info)


def _train(args: argparse.Namespace) -> int:
    from .trainer import train_tokenizer

    start = time.perf_counter()
    tok = train_tokenizer(args.input, args.vocab_size, args.out, model=args.model, text_field=args.text_field,
                          min_frequency=args.min_frequency)
    print(f"trained {tok.model_type} tokenizer: vocab_size={tok.vocab_size} in {time.perf_counter() - start:.1f}s "
          f"-> {args.out}")
    return 0


def _encode(args: argparse.Namespace) -> int:
    from .tokenizer import ByteTokenizer

    tok = ByteTokenizer.from_pretrained(args.tokenizer)
    ids = tok.encode(args.text, add_special_tokens=args.add_special_tokens)
    print(f"ids ({len(ids)}): {ids}")
    print(f"{'id':>7}  {'token':<20}  text")
    for i in ids:
        print(f"{i:>7}  {tok.id_to_token(i)!s:<20}  {tok.decode([i])!r}")
    return 0


def _info(args: argparse.Namespace) -> int:
    from .tokenizer import ByteTokenizer

    tok = ByteTokenizer.from_pretrained(args.directory)
    print(f"directory:   {args.directory}")
    print(f"model:       {tok.model_type}")
    print(f"vocab_size:  {tok.vocab_size}")
    print(f"bos/eos/pad: {tok.bos_token_id} / {tok.eos_token_id} / {tok.pad_token_id}; image: {tok.image_token_id}")
    print("special tokens:")
    for i in sorted(tok.special_token_ids):
        print(f"  {i:>5}  {tok.id_to_token(i)}")
    example = tok.apply_chat_template([{"role": "user", "content": "Hi!"}], add_generation_prompt=True)
    print(f"chat template example: {example!r} -> {len(tok.encode(example))} ids")
    return 0
