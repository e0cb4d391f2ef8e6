"""`stellarbyte bench engine`: offline serving throughput and batch-1 decode latency, ours against transformers.

The nano-vllm benchmark shape (issue 5): a Qwen3-0.6B-shaped model (hidden 1024, 28 layers, 16 q / 8 kv heads,
head dim 128, intermediate 3072, vocab 151936, QK-norm, tied embeddings) with random bf16 weights; N requests
with prompt and output lengths drawn uniformly from [lo, hi], random prompt tokens, EOS ignored, temperature 0.6.
Rows, all measured in one process on one device:
  engine               LLM.generate over all requests (continuous batching, paged KV, the chosen backend)
  transformers         the same weights exported with save_pretrained (Qwen3ForCausalLM), bf16, sdpa,
                       generate() in static batches with left padding; each batch decodes to its longest
                       request and only the tokens each request asked for are counted (a subset of the requests
                       when --hf-requests is smaller; the table says how many)
  batch-1 decode       ms per output token after a --latency-prompt prompt: (t(1 + K tokens) - t(1 token)) / K,
                       medians of 3, for the engine with and without CUDA graphs and for transformers; with
                       --latency-variants also for the engine with parts of the decode path turned off (the
                       compiled step, the projection fusion, the in-graph sampler), each in its own engine
  graph replay         the batch-1 decode graph replayed alone (no host work between steps): microseconds per
                       replay, which splits a token's time into GPU work and the host's share
  bandwidth floor      weight bytes / device bandwidth (a large device copy measured in the same run): no
                       batch-1 decode can be faster, since every step reads every weight once
--preset tiny runs a small fp32 model on the CPU (CI-sized); its numbers say nothing about GPUs.
"""

from __future__ import annotations

import argparse
import os
import random
import statistics
import tempfile
import time
from dataclasses import dataclass

import torch

from stellarbyte import ByteConfig, ByteModel
from stellarbyte.bench._timing import measure_peaks, print_table, resolve_device, sync, write_csv


@dataclass(frozen=True, slots=True)
class Preset:
    config: dict
    dtype: torch.dtype
    num_requests: int
    lo: int
    hi: int
    hf_requests: int
    hf_batch: int
    latency_prompt: int
    latency_tokens: int


QWEN3_06B = dict(vocab_size=151936, hidden_size=1024, intermediate_size=3072, num_hidden_layers=28,
                 num_attention_heads=16, num_key_value_heads=8, head_dim=128, qk_norm=True,
                 max_position_embeddings=4096, tie_word_embeddings=True, attention_implementation="sdpa",
                 eos_token_id=None, bos_token_id=None)
TINY = dict(vocab_size=1000, hidden_size=128, intermediate_size=352, num_hidden_layers=2, num_attention_heads=4,
            num_key_value_heads=2, qk_norm=True, max_position_embeddings=256, tie_word_embeddings=True,
            attention_implementation="sdpa", eos_token_id=None, bos_token_id=None)
PRESETS = {
    "qwen3-0.6b": Preset(QWEN3_06B, torch.bfloat16, 256, 100, 1024, 64, 64, 128, 128),
    "tiny": Preset(TINY, torch.float32, 16, 8, 48, 8, 8, 16, 16),
}


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--preset", default="qwen3-0.6b", choices=sorted(PRESETS),
                        help="qwen3-0.6b (the issue's GPU benchmark) or tiny (CPU, CI-sized)")
    parser.add_argument("--num-requests", type=int, default=None, help="engine requests (preset: 256 / 16)")
    parser.add_argument("--min-len", type=int, default=None, help="shortest prompt and output (preset: 100)")
    parser.add_argument("--max-len", type=int, default=None, help="longest prompt and output (preset: 1024)")
    parser.add_argument("--hf-requests", type=int, default=None,
                        help="requests given to transformers' generate (the first ones; 0 skips it; preset: 64)")
    parser.add_argument("--hf-batch-size", type=int, default=None, help="static batch of generate (preset: 64)")
    parser.add_argument("--latency-prompt", type=int, default=None, help="prompt tokens for batch-1 decode")
    parser.add_argument("--latency-tokens", type=int, default=None, help="decode tokens timed at batch 1")
    parser.add_argument("--backend", default="auto", choices=["auto", "torch", "flat", "triton"],
                        help="the engine's attention_backend")
    parser.add_argument("--kv-gib", type=float, default=None,
                        help="KV pool in GiB (default: 40 on CUDA, 0.25 on CPU)")
    parser.add_argument("--max-num-batched-tokens", type=int, default=16384)
    parser.add_argument("--block-size", type=int, default=16)
    parser.add_argument("--temperature", type=float, default=0.6)
    parser.add_argument("--device", default="auto")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--profile-steps", type=int, default=0,
                        help="also print a torch.profiler summary of this many decode steps at full batch")
    parser.add_argument("--engine-option", action="append", default=[], metavar="KEY=VALUE",
                        help="an EngineConfig field for the benchmarked engine, e.g. compile_decode=false "
                             "(repeatable; ints, floats, true/false, none)")
    parser.add_argument("--latency-variants", action=argparse.BooleanOptionalAction, default=True,
                        help="also time batch-1 decode with the compiled step / fusion / in-graph sampler off (CUDA)")
    parser.add_argument("--out", default=None, help="directory for engine.csv (default: no file)")


def parse_engine_options(items: list[str]) -> dict:
    """["compile_decode=false", "compile_max_batch_size=8"] -> {"compile_decode": False, ...}, checked against
    EngineConfig's fields."""
    from dataclasses import fields

    from stellarbyte.infer.engine.config import EngineConfig

    known = {f.name for f in fields(EngineConfig)}
    words = {"true": True, "false": False, "none": None}
    options = {}
    for item in items:
        key, sep, raw = item.partition("=")
        if not sep or key not in known:
            raise ValueError(f"--engine-option {item!r}: want KEY=VALUE with KEY one of {sorted(known)}")
        value: object = words.get(raw.lower(), raw)
        if isinstance(value, str):
            for cast in (int, float):
                try:
                    value = cast(raw)
                    break
                except ValueError:
                    pass
        options[key] = value
    return options


def _replay_us(llm, device: str, reps: int = 200) -> float | None:
    """Microseconds per replay of the engine's batch-1 decode graph, back to back (no host work between). The replays
    rewrite the last step's K/V slot, so the engine is thrown away afterwards (a cached block may hold that slot)."""
    graphs = getattr(llm.engine.runner, "graphs", None)
    if graphs is None or device != "cuda":
        return None
    graphs.replay(1)
    sync(device)
    start = time.perf_counter()
    for _ in range(reps):
        graphs.replay(1)
    sync(device)
    return (time.perf_counter() - start) / reps * 1e6


def _requests(n: int, lo: int, hi: int, vocab: int, seed: int) -> tuple[list[list[int]], list[int]]:
    rng = random.Random(seed)
    prompts = [[rng.randrange(vocab) for _ in range(rng.randint(lo, hi))] for _ in range(n)]
    outputs = [rng.randint(lo, hi) for _ in range(n)]
    return prompts, outputs


def _timed(fn, device: str) -> float:
    sync(device)
    start = time.perf_counter()
    fn()
    sync(device)
    return time.perf_counter() - start


def _per_token_ms(generate_k, k: int, device: str) -> float:
    """(t(1 + k) - t(1)) / k in ms, medians of 3 after a warm-up: the prefill cancels out."""
    generate_k(1), generate_k(1 + k)  # warm-up
    one = statistics.median(_timed(lambda: generate_k(1), device) for _ in range(3))
    many = statistics.median(_timed(lambda: generate_k(1 + k), device) for _ in range(3))
    return (many - one) / k * 1e3


def _engine(model, args, kv_bytes: int, **overrides):
    from stellarbyte.infer.engine import LLM

    options = dict(block_size=args.block_size, kv_cache_memory_bytes=kv_bytes, max_num_seqs=256,
                   max_num_batched_tokens=args.max_num_batched_tokens, attention_backend=args.backend)
    options.update(parse_engine_options(args.engine_option))
    options.update(overrides)
    return LLM(model, **options)


def _engine_latency(llm, prompt: list[int], k: int, device: str) -> float:
    from stellarbyte.infer.engine import SamplingParams

    return _per_token_ms(lambda n: llm.generate([prompt], SamplingParams(temperature=0, max_tokens=n,
                                                                         ignore_eos=True)), k, device)


def _profile(llm, prompts, outputs, steps: int, temperature: float) -> None:
    """Fill the engine with every request, step until all are decoding, then profile `steps` steps."""
    from torch.profiler import ProfilerActivity, profile

    from stellarbyte.infer.engine import SamplingParams

    engine = llm.engine
    for p, n in zip(prompts, outputs):
        engine.add_request(p, SamplingParams(temperature=temperature, max_tokens=n, ignore_eos=True))
    while engine.scheduler.waiting or any(s.num_computed_tokens < s.num_prompt_tokens
                                          for s in engine.scheduler.running):
        engine.step()
    activities = [ProfilerActivity.CPU] + ([ProfilerActivity.CUDA] if torch.cuda.is_available() else [])
    with profile(activities=activities) as prof:
        for _ in range(steps):
            engine.step()
    sort = "cuda_time_total" if torch.cuda.is_available() else "cpu_time_total"
    print(f"\ntorch.profiler, {steps} decode steps at batch {len(engine.scheduler.running)}:")
    print(prof.key_averages().table(sort_by=sort, row_limit=18))
    for rid in list(engine.requests):
        engine.abort_request(rid)


def _hf_generate(hf_model, prompts, outputs, batch: int, device: str) -> tuple[float, int]:
    """Static batches, left padding; returns (seconds, counted output tokens)."""
    total_time, counted = 0.0, 0
    for start in range(0, len(prompts), batch):
        ps, outs = prompts[start:start + batch], outputs[start:start + batch]
        width = max(map(len, ps))
        ids = torch.tensor([[0] * (width - len(p)) + p for p in ps], device=device)
        mask = torch.tensor([[0] * (width - len(p)) + [1] * len(p) for p in ps], device=device)
        new = max(outs)
        kwargs = dict(input_ids=ids, attention_mask=mask, max_new_tokens=new, do_sample=False, pad_token_id=0)
        total_time += _timed(lambda kw=kwargs: hf_model.generate(**kw), device)  # no EOS: runs to max_new_tokens
        counted += sum(outs)
    return total_time, counted


def run(args: argparse.Namespace) -> int:
    preset = PRESETS[args.preset]
    device = resolve_device(args.device)
    n = args.num_requests or preset.num_requests
    lo, hi = args.min_len or preset.lo, args.max_len or preset.hi
    hf_n = preset.hf_requests if args.hf_requests is None else args.hf_requests
    hf_batch = args.hf_batch_size or preset.hf_batch
    lat_prompt = args.latency_prompt or preset.latency_prompt
    lat_k = args.latency_tokens or preset.latency_tokens
    if lo < 1 or hi < lo:
        raise ValueError(f"--min-len {lo} / --max-len {hi}: need 1 <= min-len <= max-len")
    config = ByteConfig(**preset.config)
    if 2 * hi > config.context_length:
        raise ValueError(f"--max-len {hi}: a prompt plus its output may reach {2 * hi} tokens but the model's window "
                         f"is {config.context_length}; use --max-len <= {config.context_length // 2}")
    kv_bytes = int((args.kv_gib if args.kv_gib is not None else (40 if device == "cuda" else 0.25)) * 2**30)

    peaks = measure_peaks(device)
    torch.manual_seed(args.seed)
    with torch.device(device):
        model = ByteModel(config).to(preset.dtype).eval()
    weight_bytes = model.num_parameters() * model.lm_head.weight.element_size()
    floor_ms = weight_bytes / (peaks.bandwidth_gbps * 1e9) * 1e3
    prompts, outputs = _requests(n, lo, hi, config.vocab_size, args.seed)
    lat_ids = prompts[0][:lat_prompt] + [1] * max(0, lat_prompt - len(prompts[0]))
    rows, latency = [], []

    from stellarbyte.infer.engine import SamplingParams

    def report(row: dict, kind: str) -> None:  # each row as it is measured: a run cut short keeps its rows
        print(f"[{kind}] " + ", ".join(f"{k}={v:.4g}" if isinstance(v, float) else f"{k}={v}"
                                      for k, v in row.items()), flush=True)

    started = time.perf_counter()
    llm = _engine(model, args, kv_bytes)
    runner = llm.engine.runner
    start_s = time.perf_counter() - started  # graph capture (+ compiles of the small decode sizes)
    backend = llm.engine.attention_backend
    features = _features(runner)
    print(f"engine start-up {start_s:.1f} s ({backend}; {features})", flush=True)
    # warm-up: a prefill of two sequences and graph-replayed decodes compile every kernel variant the run uses
    llm.generate([list(range(1, 40)), list(range(2, 70))], SamplingParams(temperature=args.temperature, max_tokens=4,
                                                                          ignore_eos=True))
    params = [SamplingParams(temperature=args.temperature, max_tokens=m, ignore_eos=True, seed=None)
              for m in outputs]
    start_steps = llm.engine.get_stats().num_steps
    seconds = _timed(lambda: llm.generate(prompts, params), device)
    stats = llm.engine.get_stats()
    produced = sum(outputs)
    rows.append(dict(system=f"stellarbyte engine ({backend}, {features})", requests=n, output_tokens=produced,
                     seconds=seconds, output_tok_s=produced / seconds, steps=stats.num_steps - start_steps,
                     preemptions=stats.num_preemptions))
    report(rows[-1], "throughput")
    graphs_on = getattr(runner, "graphs", None) is not None
    latency.append(dict(system=f"stellarbyte engine ({backend}, {features})",
                        ms_per_token=_engine_latency(llm, lat_ids, lat_k, device), replay_us=_replay_us(llm, device),
                        startup_s=start_s))
    report(latency[-1], "batch1")
    if args.profile_steps:
        _profile(llm, prompts, outputs, args.profile_steps, args.temperature)
    llm = runner = None  # free the pool before the variants
    fast, slow = [], []  # engine variants for the batch-1 rows: without compiles first, compiling ones last
    if graphs_on:
        fast = [dict(compile_decode=False, sample_in_graph=False), dict(cuda_graphs=False)]  # before / no graphs
        if args.latency_variants:
            slow = [dict(compile_decode=True, fuse_projections=False), dict(compile_decode=True, sample_in_graph=False)]

    def variant_rows(variants: list[dict]) -> None:
        for overrides in variants:
            torch.cuda.empty_cache()
            began = time.perf_counter()
            engine = _engine(model, args, 1 << 30, max_num_seqs=1, **overrides)
            took = time.perf_counter() - began
            latency.append(dict(system=f"stellarbyte engine ({backend}, {_features(engine.engine.runner)})",
                                ms_per_token=_engine_latency(engine, lat_ids, lat_k, device),
                                replay_us=_replay_us(engine, device), startup_s=took))
            report(latency[-1], "batch1")
            del engine
            if args.out:
                _write(args.out, rows, latency)

    variant_rows(fast)
    if device == "cuda":
        torch.cuda.empty_cache()

    if hf_n:
        from transformers import AutoModelForCausalLM

        with tempfile.TemporaryDirectory() as tmp:
            path = os.path.join(tmp, "export")
            model.save_pretrained(path)
            hf = AutoModelForCausalLM.from_pretrained(path, dtype=preset.dtype, attn_implementation="sdpa")
        hf = hf.to(device).eval()
        hf.generation_config.eos_token_id = None
        with torch.inference_mode():
            hf_seconds, hf_tokens = _hf_generate(hf, prompts[:hf_n], outputs[:hf_n], hf_batch, device)
            rows.append(dict(system=f"transformers {type(hf).__name__}.generate (sdpa, static batches of "
                                    f"{hf_batch}, first {hf_n} requests)",
                             requests=hf_n, output_tokens=hf_tokens, seconds=hf_seconds,
                             output_tok_s=hf_tokens / hf_seconds, steps="", preemptions=""))
            report(rows[-1], "throughput")
            ids = torch.tensor([lat_ids], device=device)
            hf_ms = _per_token_ms(lambda k: hf.generate(input_ids=ids, max_new_tokens=k, do_sample=False,
                                                        pad_token_id=0), min(lat_k, 64), device)
            latency.append(dict(system="transformers generate (sdpa, dynamic cache)", ms_per_token=hf_ms))
            report(latency[-1], "batch1")
        del hf
        if args.out:
            _write(args.out, rows, latency)
    variant_rows(slow)
    latency.append(dict(system=f"bandwidth floor: {weight_bytes / 1e9:.3f} GB of weights / "
                               f"{peaks.bandwidth_gbps:.0f} GB/s", ms_per_token=floor_ms))
    for row in latency:
        row["x_floor"] = row["ms_per_token"] / floor_ms if floor_ms == floor_ms else float("nan")

    print(f"\nengine benchmark: preset {args.preset} on {device} "
          f"({torch.cuda.get_device_name() if device == 'cuda' else 'cpu'}), {n} requests, prompt and output "
          f"lengths uniform in [{lo}, {hi}], temperature {args.temperature}, EOS ignored")
    print_table(rows, ["system", "requests", "output_tokens", "seconds", "output_tok_s", "steps", "preemptions"])
    print(f"\nbatch-1 decode after a {lat_prompt}-token prompt ({lat_k} tokens timed; transformers "
          f"{min(lat_k, 64)}):")
    for row in latency:
        row.setdefault("replay_us", None)
        row.setdefault("startup_s", None)
    print_table(latency, ["system", "ms_per_token", "x_floor", "replay_us", "startup_s"])
    if args.out:
        print(f"wrote {_write(args.out, rows, latency)}")
    return 0


def _features(runner) -> str:
    """What the engine's decode path uses, for the row labels."""
    graphs = getattr(runner, "graphs", None)
    parts = ["cuda graphs" if graphs is not None else "cuda graphs off"]
    if getattr(runner, "compiled", None) is not None:
        fused = bool(getattr(runner, "fused_groups", None)) and any(runner.fused_groups)
        parts.append(f"compiled decode <= {runner.compile_max_batch_size}" + (" + fused qkv/gate-up" if fused else ""))
    if graphs is not None:
        parts.append("sampler in graph" if graphs.sample is not None else "sampler outside")
    return ", ".join(parts)


def _write(out: str, rows: list[dict], latency: list[dict]) -> str:
    path = os.path.join(out, "engine.csv")
    csv_rows = [dict(kind="throughput", **r) for r in rows] + [dict(kind="batch1_decode", **r) for r in latency]
    os.makedirs(out, exist_ok=True)
    write_csv(path, csv_rows)
    return path


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_arguments(parser)
    return run(parser.parse_args(argv))


if __name__ == "__main__":
    raise SystemExit(main())
