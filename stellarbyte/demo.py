"""`stellarbyte demo`: the core model end to end in about a minute on a laptop CPU, with nothing downloaded.

  1. write the embedded toy world (stellarbyte.data.toyworld) and train a byte-level BPE tokenizer on it
  2. build a small Llama-style ByteModel and report its size, FLOPs and KV-cache memory
  3. save it; reload it with ByteModel.from_pretrained and (when installed) transformers' AutoModelForCausalLM,
     and check the three give the same logits
  4. generate: greedy with and without the KV cache (same tokens, timed), then a streamed, sampled reply

The model is untrained here, so its text is noise; `stellarbyte quickstart` (the training issue) trains it.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import torch

from stellarbyte.config import ByteConfig

DEMO_CONFIG = dict(vocab_size=4096, hidden_size=128, intermediate_size=384, num_hidden_layers=4,
                   num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=512,
                   tie_word_embeddings=True, bos_token_id=1, eos_token_id=2, pad_token_id=0)


def add_parser(subparsers, verb: str) -> None:
    p = subparsers.add_parser(verb, help="end-to-end smoke run of the core model", description=__doc__,
                              formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--out", default="runs/demo", help="run directory (default runs/demo)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--new-tokens", type=int, default=64)
    p.set_defaults(func=run)


def _step(n: int, text: str) -> None:
    print(f"\n[{n}/4] {text}", flush=True)


def run(args: argparse.Namespace) -> int:
    from stellarbyte import ByteModel
    from stellarbyte.data.toyworld import build_toyworld
    from stellarbyte.model.analysis import analyze
    from stellarbyte.tokenizer import train_tokenizer

    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    torch.manual_seed(args.seed)

    _step(1, "toy world + tokenizer")
    world = out / "toyworld"
    build_toyworld(world, size="1MB", seed=args.seed, overwrite=True)
    model_dir = out / "model"
    tokenizer = train_tokenizer([world / "pretrain" / "train.txt"], DEMO_CONFIG["vocab_size"], model_dir)
    print(f"  tokenizer: {tokenizer.vocab_size} tokens, eos={tokenizer.eos_token_id}, pad={tokenizer.pad_token_id}")

    _step(2, "model")
    # the model's vocabulary is exactly the tokenizer's: a larger one could emit ids nothing decodes
    config = ByteConfig(**{**DEMO_CONFIG, "vocab_size": tokenizer.vocab_size})
    model = ByteModel(config).eval()
    report = analyze(config, batch_size=1, seq_len=config.max_position_embeddings, dtype="float32", device="cpu")
    print(f"  {model.num_parameters():,} parameters; analysis: {report.params.total:,}")
    print(f"  training FLOPs/token at T={config.max_position_embeddings}: "
          f"{report.flops.training:,.0f}; KV cache: {report.kv_cache / 2**20:.2f} MiB")

    _step(3, f"save -> {model_dir} -> reload")
    model.save_pretrained(model_dir)
    reloaded = ByteModel.from_pretrained(model_dir).eval()
    probe = torch.tensor([tokenizer.encode("Once upon a time", add_special_tokens=True)])
    with torch.no_grad():
        reference = model(probe).logits
        print(f"  ByteModel.from_pretrained: max |diff| = {(reloaded(probe).logits - reference).abs().max():.2e}")
        try:
            from transformers import AutoModelForCausalLM
        except ImportError:
            print("  transformers not installed: skipping the HF load check")
        else:
            hf = AutoModelForCausalLM.from_pretrained(model_dir).eval()
            print(f"  transformers {type(hf).__name__}: max |diff| = "
                  f"{(hf(probe).logits - reference).abs().max():.2e}")

    _step(4, "generate")
    timings = {}
    outputs = {}
    for use_cache in (False, True):
        start = time.perf_counter()
        outputs[use_cache] = model.generate(probe, max_new_tokens=args.new_tokens, use_cache=use_cache,
                                            eos_token_id=None)
        timings[use_cache] = time.perf_counter() - start
    same = torch.equal(outputs[False], outputs[True])
    print(f"  greedy, {args.new_tokens} tokens: no cache {args.new_tokens / timings[False]:.0f} tok/s, "
          f"KV cache {args.new_tokens / timings[True]:.0f} tok/s, identical tokens: {same}")
    print("  sampled (T=0.8, top-k 50, top-p 0.95, seed 0): Once upon a time", end="", flush=True)
    new: list[int] = []
    for token in model.generate(probe, max_new_tokens=24, do_sample=True, temperature=0.8, top_k=50,
                                top_p=0.95, seed=args.seed, stream=True):
        new.append(int(token[0]))
    print(tokenizer.decode(new, skip_special_tokens=True))
    print(f"\nTry: stellarbyte generate {model_dir} --prompt 'Once upon a time' --temperature 0.8 --seed 1")
    return 0 if same else 1
