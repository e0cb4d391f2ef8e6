"""`stellarbyte bench generate`: greedy decoding speed with and without the KV cache, and against transformers.

One random ~25M-parameter Llama-shaped model (vocab 8192, hidden 512, 6 layers, 8 heads / 4 KV heads) is
built once; the same weights are saved in HF format and loaded by transformers' LlamaForCausalLM, so every
row decodes the same tokens (checked) from the same prompt:
  ours, no cache       every step recomputes the whole sequence: O(T^2) attention and MLP work
  ours, dynamic cache  prefill once, then one token per step
  ours, static cache   preallocated K/V buffers written in place
  transformers         LlamaForCausalLM.generate(), sdpa attention, its default dynamic cache
Timings are medians over --repeats runs after one warm-up, in the same process, on the same threads.
"""

from __future__ import annotations

import argparse
import csv
import statistics
import tempfile
import time

import torch

from stellarbyte import ByteConfig, ByteModel

BENCH_CONFIG = dict(vocab_size=8192, hidden_size=512, intermediate_size=1408, num_hidden_layers=6,
                    num_attention_heads=8, num_key_value_heads=4, max_position_embeddings=2048,
                    eos_token_id=None, bos_token_id=None, attention_implementation="sdpa")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--new-tokens", type=int, default=256, help="tokens to generate (default 256)")
    parser.add_argument("--prompt-tokens", type=int, default=16, help="prompt length (default 16)")
    parser.add_argument("--batch-size", type=int, default=1)
    parser.add_argument("--repeats", type=int, default=3, help="timed runs per row; the median is reported")
    parser.add_argument("--threads", type=int, default=0, help="torch threads (0: torch's default)")
    parser.add_argument("--dtype", default="float32", choices=["float32", "bfloat16"])
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--no-hf", action="store_true", help="skip the transformers row")
    parser.add_argument("--csv", default=None, help="also write the table to this CSV file")


def _time(fn, repeats: int, device: str) -> tuple[float, torch.Tensor]:
    out = fn()  # warm-up (allocations, kernel selection)
    times = []
    for _ in range(repeats):
        if device.startswith("cuda"):
            torch.cuda.synchronize()
        start = time.perf_counter()
        out = fn()
        if device.startswith("cuda"):
            torch.cuda.synchronize()
        times.append(time.perf_counter() - start)
    return statistics.median(times), out


def run(args: argparse.Namespace) -> int:
    if args.threads:
        torch.set_num_threads(args.threads)
    dtype = getattr(torch, args.dtype)
    torch.manual_seed(0)
    model = ByteModel(ByteConfig(**BENCH_CONFIG)).to(device=args.device, dtype=dtype).eval()
    prompt = torch.randint(0, BENCH_CONFIG["vocab_size"], (args.batch_size, args.prompt_tokens), device=args.device)
    n = args.new_tokens
    rows: list[tuple[str, float, torch.Tensor]] = []
    for name, kwargs in (("ours, no cache", dict(use_cache=False)),
                         ("ours, dynamic cache", dict(cache_implementation="dynamic")),
                         ("ours, static cache", dict(cache_implementation="static"))):
        seconds, out = _time(lambda kw=kwargs: model.generate(prompt, max_new_tokens=n, **kw), args.repeats,
                             args.device)
        rows.append((name, seconds, out))
    if not args.no_hf:
        from transformers import AutoModelForCausalLM

        with tempfile.TemporaryDirectory() as tmp:
            model.save_pretrained(tmp)
            hf = AutoModelForCausalLM.from_pretrained(tmp, attn_implementation="sdpa", dtype=dtype)
        hf = hf.to(args.device).eval()
        mask = torch.ones_like(prompt)

        def hf_generate():
            with torch.inference_mode():
                return hf.generate(prompt, attention_mask=mask, max_new_tokens=n, min_new_tokens=n, do_sample=False,
                                   eos_token_id=None, pad_token_id=0)

        seconds, out = _time(hf_generate, args.repeats, args.device)
        rows.append(("transformers generate()", seconds, out))

    reference = rows[0][2]
    cached = dict((name, s) for name, s, _ in rows)["ours, dynamic cache"]
    params = model.num_parameters()
    print(f"greedy generation: {params / 1e6:.1f}M params, batch {args.batch_size}, prompt {args.prompt_tokens}, "
          f"{n} new tokens, {args.device} {args.dtype}, {torch.get_num_threads()} threads, median of {args.repeats}")
    header = ("implementation", "seconds", "tokens/s", "vs ours cached", "same tokens")
    print("| " + " | ".join(header) + " |\n|" + "---|" * len(header))
    table = []
    for name, seconds, out in rows:
        tps = args.batch_size * n / seconds
        same = bool(torch.equal(out.cpu(), reference.cpu()))
        table.append((name, f"{seconds:.3f}", f"{tps:.1f}", f"{cached / seconds:.2f}x", str(same)))
        print("| " + " | ".join(table[-1]) + " |")
    speedup = dict((r[0], float(r[1])) for r in table)
    print(f"KV cache speed-up over recomputation: {speedup['ours, no cache'] / speedup['ours, dynamic cache']:.2f}x")
    if args.csv:
        with open(args.csv, "w", newline="") as f:
            writer = csv.writer(f)
            writer.writerow(header)
            writer.writerows(table)
    return 0 if all(r[4] == "True" for r in table) else 1
