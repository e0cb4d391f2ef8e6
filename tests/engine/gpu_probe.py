"""GPU probe for tuning the engine's fast path (a script, not a test): python3 tests/engine/gpu_probe.py [parts]

Parts: decode (tile sweep of the paged-attention kernel at batch 256), split (batch-1 split-KV sweep), prefill
(tile sweep for 16 x 1024-token prefills), steps (the benchmark workload with per-step timing: prefill vs decode
steps, GPU time of the model vs the host's share), sampler (cost of sampling 256 rows of the Qwen3 vocabulary).
Bandwidth figures count the K/V bytes the kernel must read once (sum of contexts x Hkv x D x 2 tensors x 2 bytes).
"""

from __future__ import annotations

import random
import sys
import time

import torch
import triton.testing

from stellarbyte.kernels.ops.paged_attention import paged_attention

HQ, HKV, D, PAGE = 16, 8, 128, 16


def bench(fn) -> float:
    return float(triton.testing.do_bench(fn, warmup=10, rep=50, return_mode="median"))


def make(q_lens, seq_lens, seed=0):
    g = torch.Generator().manual_seed(seed)
    width = max(-(-s // PAGE) for s in seq_lens)
    pool = width * len(seq_lens) + 8
    tables = torch.randperm(pool, generator=g)[: width * len(seq_lens)].view(len(seq_lens), width).cuda()
    kc = torch.randn(pool, PAGE, HKV, D, device="cuda", dtype=torch.bfloat16)
    vc = torch.randn_like(kc)
    q = torch.randn(sum(q_lens), HQ, D, device="cuda", dtype=torch.bfloat16)
    cu = torch.tensor([0, *torch.tensor(q_lens).cumsum(0).tolist()], device="cuda")
    lens = torch.tensor(seq_lens, device="cuda")
    return q, kc, vc, cu, lens, tables


def kv_bytes(seq_lens) -> float:
    return sum(seq_lens) * HKV * D * 2 * 2


def sweep(name, args, max_q, splits, tiles):
    q, kc, vc, cu, lens, tables = args
    results = []
    for tile in tiles:
        try:
            ms = bench(lambda t=tile: paged_attention(q, kc, vc, cu, lens, tables, 0.088, max_query_len=max_q,
                                                      num_splits=splits, tile=t))
        except Exception as e:  # out of shared memory and the like
            print(f"  {name} {tile}: failed {type(e).__name__}")
            continue
        results.append((ms, tile))
    results.sort(key=lambda r: r[0])
    for ms, tile in results[:6]:
        print(f"  {name} {tile}: {ms * 1e3:.1f} us")
    return results[0] if results else None


def part_decode():
    rng = random.Random(0)
    seq_lens = [rng.randint(100, 1500) for _ in range(256)]
    args = make([1] * 256, seq_lens)
    tiles = [dict(rows=16, block_n=bn, num_warps=w, num_stages=s) for bn in (32, 64, 128) for w in (2, 4, 8)
             for s in (2, 3, 4)]
    ms, tile = sweep("decode256", args, 1, 1, tiles)
    print(f"decode B=256 mean ctx {sum(seq_lens) / 256:.0f}: best {ms * 1e3:.1f} us = "
          f"{kv_bytes(seq_lens) / (ms * 1e-3) / 1e12:.2f} TB/s of K/V with {tile}")
    for splits in (2, 4):
        t = bench(lambda s=splits: paged_attention(*args, 0.088, max_query_len=1, num_splits=s, tile=tile))
        print(f"  decode256 with {splits} splits: {t * 1e3:.1f} us")
    return tile


def part_split(tile):
    for ctx in (256, 1024):
        args = make([1], [ctx])
        for splits in (1, 2, 4, 8, 16, 32):
            t = bench(lambda s=splits, a=args: paged_attention(*a, 0.088, max_query_len=1, num_splits=s, tile=tile))
            print(f"  batch1 ctx {ctx} splits {splits}: {t * 1e3:.1f} us")


def part_prefill():
    args = make([1024] * 16, [1024] * 16)
    tiles = [dict(rows=r, block_n=bn, num_warps=w, num_stages=s) for r in (32, 64, 128) for bn in (32, 64)
             for w in (4, 8) for s in (2, 3)]
    ms, tile = sweep("prefill16x1024", args, 1024, 1, tiles)
    flops = 4 * 16 * HQ * D * 1024 * 1025 / 2
    print(f"prefill 16 x 1024: best {ms * 1e3:.1f} us = {flops / ms / 1e9:.0f} TFLOP/s with {tile}")


def part_steps():
    from stellarbyte import ByteModel
    from stellarbyte.bench.engine import QWEN3_06B, _requests
    from stellarbyte.config import ByteConfig
    from stellarbyte.infer.engine import LLM, SamplingParams

    torch.manual_seed(0)
    with torch.device("cuda"):
        model = ByteModel(ByteConfig(**QWEN3_06B)).to(torch.bfloat16).eval()
    llm = LLM(model, block_size=16, kv_cache_memory_bytes=40 << 30, max_num_seqs=256, max_num_batched_tokens=16384)
    engine, runner = llm.engine, llm.engine.runner
    original = runner.run
    record = {}

    def timed_run(batch):
        start = torch.cuda.Event(enable_timing=True)
        end = torch.cuda.Event(enable_timing=True)
        t0 = time.perf_counter()
        start.record()
        out = original(batch)
        end.record()
        record.update(decode=max(batch.num_new_tokens) == 1, b=len(batch), host_run=time.perf_counter() - t0,
                      start=start, end=end)
        return out

    runner.run = timed_run
    for bs, label in ((1, "batch-1"), (256, "full")):
        prompts, outputs = _requests(bs, 100, 1024, model.config.vocab_size, 0)
        if bs == 1:
            prompts, outputs = [prompts[0][:128]], [256]
        for p, n in zip(prompts, outputs):
            engine.add_request(p, SamplingParams(temperature=0.6 if bs > 1 else 0, max_tokens=n, ignore_eos=True))
        sums = {True: [0, 0.0, 0.0, 0.0], False: [0, 0.0, 0.0, 0.0]}  # steps, wall, gpu (events), host in run
        full_decode = []
        t_all = time.perf_counter()
        while engine.has_unfinished_requests():
            t0 = time.perf_counter()
            engine.step()
            wall = time.perf_counter() - t0
            s = sums[record["decode"]]
            gpu = record["start"].elapsed_time(record["end"]) / 1e3
            s[0] += 1
            s[1] += wall
            s[2] += gpu
            s[3] += record["host_run"]
            if record["decode"] and record["b"] >= 250:
                full_decode.append((wall, gpu))
        total = time.perf_counter() - t_all
        print(f"{label}: {sum(outputs)} tokens in {total:.2f}s = {sum(outputs) / total:.0f} tok/s")
        for kind, (n, wall, gpu, host) in (("decode", sums[True]), ("mixed/prefill", sums[False])):
            if n:
                print(f"  {kind}: {n} steps, wall {wall:.2f}s ({wall / n * 1e3:.2f} ms/step), model run incl. launch "
                      f"{gpu / n * 1e3:.2f} ms/step, runner.run host {host / n * 1e3:.2f} ms/step")
        if full_decode:
            w = sum(x[0] for x in full_decode) / len(full_decode)
            g = sum(x[1] for x in full_decode) / len(full_decode)
            print(f"  decode steps at batch >= 250: {len(full_decode)}, wall {w * 1e3:.2f} ms, model {g * 1e3:.2f} ms")


def part_sampler():
    from stellarbyte.infer.engine import SamplingParams
    from stellarbyte.infer.engine.sampler import sample
    from stellarbyte.infer.engine.sequence import Sequence

    logits = torch.randn(256, 151936, device="cuda")
    for temp in (0.0, 0.6):
        seqs = [Sequence("r", [1], SamplingParams(temperature=temp, max_tokens=4)) for _ in range(256)]
        ms = bench(lambda s=seqs: sample(logits, s))
        print(f"sampler 256 rows temperature {temp}: {ms:.3f} ms")


def _qwen_model():
    from stellarbyte import ByteModel
    from stellarbyte.bench.engine import QWEN3_06B
    from stellarbyte.config import ByteConfig

    torch.manual_seed(0)
    with torch.device("cuda"):
        return ByteModel(ByteConfig(**QWEN3_06B)).to(torch.bfloat16).eval()


def part_hostprof():
    """cProfile of 30 decode steps at batch 256 (host time by function)."""
    import cProfile
    import pstats

    from stellarbyte.bench.engine import _requests
    from stellarbyte.infer.engine import LLM, SamplingParams

    model = _qwen_model()
    llm = LLM(model, block_size=16, kv_cache_memory_bytes=40 << 30, max_num_seqs=256, max_num_batched_tokens=16384)
    engine = llm.engine
    prompts, _ = _requests(256, 100, 1024, model.config.vocab_size, 0)
    for p in prompts:
        engine.add_request(p, SamplingParams(temperature=0.6, max_tokens=500, ignore_eos=True))
    while engine.scheduler.waiting or any(s.num_output_tokens == 0 for s in engine.scheduler.running):
        engine.step()
    for _ in range(5):
        engine.step()
    torch.cuda.synchronize()
    prof = cProfile.Profile()
    t0 = time.perf_counter()
    prof.enable()
    for _ in range(30):
        engine.step()
    prof.disable()
    print(f"hostprof: {(time.perf_counter() - t0) / 30 * 1e3:.2f} ms/step at batch {len(engine.scheduler.running)}")
    pstats.Stats(prof).sort_stats("tottime").print_stats(22)
    del llm, engine


def part_latency():
    """Batch-1 decode ms/token with the split-KV heuristic vs forced splits (graphs on)."""
    import stellarbyte.kernels.ops.paged_attention as pa
    from stellarbyte.bench.engine import _engine_latency
    from stellarbyte.infer.engine import LLM

    model = _qwen_model()
    default = pa.default_num_splits
    for label, fn in (("heuristic", default), ("splits=1", lambda *a: 1), ("splits=4", lambda *a: 4)):
        pa.default_num_splits = fn
        llm = LLM(model, block_size=16, kv_cache_memory_bytes=2 << 30, max_num_seqs=4)
        prompt = list(range(1, 129))
        ms = _engine_latency(llm, prompt, 128, "cuda")
        graphs = llm.engine.runner.graphs
        g, _ = graphs.graphs[1]
        replay = bench(lambda gr=g: gr.replay())
        print(f"batch-1 {label}: {ms:.3f} ms/token; graph replay alone {replay:.3f} ms")
        del llm
    pa.default_num_splits = default


if __name__ == "__main__":
    parts = sys.argv[1:] or ["decode", "split", "prefill", "steps", "sampler"]
    best = dict(rows=16, block_n=64, num_warps=4, num_stages=3)
    if "decode" in parts:
        best = part_decode()
    if "split" in parts:
        part_split(best)
    if "prefill" in parts:
        part_prefill()
    if "sampler" in parts:
        part_sampler()
    if "latency" in parts:
        part_latency()
    if "hostprof" in parts:
        part_hostprof()
    if "steps" in parts:
        part_steps()
