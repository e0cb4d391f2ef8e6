"""stellarbyte bench quant: what each quantization mode costs in perplexity and buys in speed and bytes.

CPU (any machine): a model directory (or a named config with random weights) and a text file ->
  quality   perplexity of fp32 / bf16 / each mode on the text, its delta, greedy agreement with fp32
  speed     decode tokens/s at batch 1 through ByteModel.generate and through the engine (LLM), fp32 vs int8
            (ours and torch.ao), with the CPU load average printed beside them (the cores may be shared)
  bytes     model bytes (parameters + quantized buffers, tied tensors once)
CUDA (when present, or --device cuda): the Qwen3-0.6B shape with random bf16 weights ->
  linears   per projection shape, batch 1 and 16: bf16 cuBLAS vs our fused Triton int8 / int4 kernels vs
            torch._weight_int8pack_mm / _weight_int4pack_mm, each over 28 distinct layers (weights do not sit
            in L2), timed as CUDA-graph replays; error vs the float64 product of the dequantized weight
  decode    one decode step of the whole model (StaticCache, CUDA graph), bf16 vs int8 vs int4, ms/token
            against the floor bytes-read / bandwidth measured in the same run.
Tables print; --csv writes every row.
"""

from __future__ import annotations

import argparse
import copy
import os
import time
import traceback
from pathlib import Path

import torch

from stellarbyte.bench._timing import measure_peaks, print_table, resolve_device, sync, write_csv

QWEN3_06B = dict(vocab_size=151936, hidden_size=1024, intermediate_size=3072, num_hidden_layers=28,
                 num_attention_heads=16, num_key_value_heads=8, head_dim=128, tie_word_embeddings=True,
                 max_position_embeddings=4096)
CPU_MODES = [  # (label, quantize_model kwargs or None for float)
    ("fp32", None), ("bf16", None),
    ("int8-dynamic (ours)", dict(mode="int8", backend="ours")),
    ("int8-dynamic (torch.ao)", dict(mode="int8", backend="ao")),
    ("int8 weight-only", dict(mode="int8-weight", allow_reference=True)),
    ("int4 g32 sym", dict(mode="int4", group_size=32, allow_reference=True)),
    ("int4 g64 sym", dict(mode="int4", group_size=64, allow_reference=True)),
    ("int4 g128 sym", dict(mode="int4", group_size=128, allow_reference=True)),
    ("int4 g128 asym", dict(mode="int4", group_size=128, symmetric=False, allow_reference=True)),
]
DEFAULT_TEXT = "/work/shared/data/tinystories_val_800k.txt"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--model", default=None, help="model directory (default: a random --config model)")
    parser.add_argument("--config", default="tiny", help="named shape when --model is absent: tiny | qwen3-0.6b")
    parser.add_argument("--tokenizer", default=None, help="tokenizer dir (default: the model dir, then ../tokenizer)")
    parser.add_argument("--text", default=None, help=f"text for perplexity (default {DEFAULT_TEXT} if present)")
    parser.add_argument("--eval-tokens", type=int, default=16384, help="tokens of the text to score")
    parser.add_argument("--seq-len", type=int, default=256)
    parser.add_argument("--decode-tokens", type=int, default=64, help="new tokens per speed measurement")
    parser.add_argument("--device", default="cpu", help="cpu | cuda | auto (CPU section always runs on CPU)")
    parser.add_argument("--rounds", type=int, default=3, help="speed rounds (best of; modes interleaved per round)")
    parser.add_argument("--speed-config", default=None,
                        help="also time decode for this random-weight shape (e.g. gpt2-124m-like, qwen3-0.6b)")
    parser.add_argument("--threads", type=int, default=0, help="torch CPU threads (0: torch's default)")
    parser.add_argument("--skip-cpu", action="store_true", help="only the CUDA section")
    parser.add_argument("--batch-sizes", default="1,16", help="CUDA decode batch sizes")
    parser.add_argument("--csv", default=None, help="write all rows to this CSV")


# ---- CPU: quality, tokens/s, bytes ----------------------------------------------------------------------------
def _load_cpu_model(args):
    from stellarbyte import ByteConfig, ByteModel

    if args.model:
        return ByteModel.from_pretrained(args.model).float().eval()
    if args.config == "qwen3-0.6b":
        return ByteModel(ByteConfig(**QWEN3_06B)).eval()
    from stellarbyte.bench._configs import get_config

    torch.manual_seed(0)
    return ByteModel(ByteConfig(**get_config(args.config).byte_config_kwargs())).eval()


def _eval_ids(args, model) -> tuple[list[int], str]:
    """Token ids to score: the text through the tokenizer, or random ids (a random model has no tokenizer)."""
    text = args.text or (DEFAULT_TEXT if os.path.isfile(DEFAULT_TEXT) else None)
    tok_dir = args.tokenizer
    if tok_dir is None and args.model:
        for cand in (Path(args.model), Path(args.model).parent / "tokenizer", Path(args.model).parent.parent /
                     "tokenizer"):
            if (cand / "tokenizer.json").is_file():
                tok_dir = cand
                break
    if text is None or tok_dir is None:
        gen = torch.Generator().manual_seed(0)
        return torch.randint(3, model.config.vocab_size, (args.eval_tokens,), generator=gen).tolist(), "random ids"
    if not os.path.isfile(text):
        raise FileNotFoundError(f"--text {text} does not exist")
    from stellarbyte.tokenizer.tokenizer import ByteTokenizer

    tok = ByteTokenizer.from_pretrained(tok_dir)
    with open(text, encoding="utf-8") as f:
        chars = f.read(args.eval_tokens * 8)  # plenty of characters for eval_tokens tokens
    return tok.encode(chars)[: args.eval_tokens], text


def _variant(base, label: str, kwargs: dict | None):
    from stellarbyte.infer.quant import model_bytes, quantize_model

    model = copy.deepcopy(base)
    if label == "bf16":
        model = model.to(torch.bfloat16)
    if kwargs:
        kw = dict(kwargs)
        quantize_model(model, kw.pop("mode"), **kw)
    return model, model_bytes(model)


def _generate_rate(model, prompt: torch.Tensor, new_tokens: int) -> tuple[float, torch.Tensor]:
    """ByteModel.generate tokens/s at batch 1, greedy, EOS ignored; and the generated ids."""
    t0 = time.perf_counter()
    out = model.generate(prompt, max_new_tokens=new_tokens, eos_token_id=[])
    return new_tokens / (time.perf_counter() - t0), out[0, prompt.shape[1]:]


def _engine_rate(llm, prompt: torch.Tensor, new_tokens: int) -> float:
    from stellarbyte.infer.engine import SamplingParams

    params = SamplingParams(max_tokens=new_tokens, temperature=0.0, ignore_eos=True)
    t0 = time.perf_counter()
    llm.generate([prompt[0].tolist()], params)
    return new_tokens / (time.perf_counter() - t0)


SPEED_MODES = ["fp32", "bf16", "int8-dynamic (ours)", "int8-dynamic (torch.ao)"]


def cpu_speed(models: dict, prompt: torch.Tensor, new_tokens: int, rounds: int) -> dict[str, dict]:
    """Best tokens/s over `rounds` rounds; each round measures every mode once, in turn, so a change in the
    machine's load (shared cores) hits all modes alike instead of whichever ran last."""
    from stellarbyte.infer.engine import LLM
    from stellarbyte.infer.quant.evaluate import token_agreement

    blocks = max(16, (prompt.shape[1] + new_tokens) // 16 + 4)
    llms = {label: LLM(m, num_blocks=blocks) for label, m in models.items()}
    res = {label: {"generate_tok/s": 0.0, "engine_tok/s": 0.0} for label in models}
    tokens = {}
    loads = []
    for _ in range(rounds):
        for label, model in models.items():
            loads.append(os.getloadavg()[0])
            rate, tokens[label] = _generate_rate(model, prompt, new_tokens)
            res[label]["generate_tok/s"] = max(res[label]["generate_tok/s"], rate)
            res[label]["engine_tok/s"] = max(res[label]["engine_tok/s"], _engine_rate(llms[label], prompt, new_tokens))
    ref = tokens[next(iter(models))]
    for label in models:
        res[label]["greedy_agree"] = token_agreement(tokens[label], ref)
        res[label]["load_avg"] = sum(loads) / len(loads)
    return res


def cpu_section(args) -> list[dict]:
    from stellarbyte.infer.quant.evaluate import perplexity

    if args.threads:
        torch.set_num_threads(args.threads)
    base = _load_cpu_model(args)
    ids, source = _eval_ids(args, base)
    seq = min(args.seq_len, base.config.context_length)
    prompt = torch.tensor([ids[:32]])
    print(f"CPU: model {args.model or args.config} ({base.num_parameters() / 1e6:.2f} M params), text {source} "
          f"({len(ids)} tokens, windows of {seq}), {torch.get_num_threads()} threads, load avg "
          f"{os.getloadavg()[0]:.2f}")
    rows, ref_ppl, speed_models = [], None, {}
    for label, kwargs in CPU_MODES:
        try:
            model, nbytes = _variant(base, label, kwargs)
        except ValueError as exc:  # e.g. a group size that does not divide this model's widths
            rows.append({"section": "cpu", "model": args.model or args.config, "mode": label, "note": str(exc)})
            continue
        ppl = perplexity(model, ids, seq)
        ref_ppl = ref_ppl or ppl
        rows.append({"section": "cpu", "model": args.model or args.config, "mode": label, "MiB": nbytes / 2**20,
                     "ppl": ppl, "ppl_delta_%": 100 * (ppl / ref_ppl - 1)})
        if label in SPEED_MODES:
            speed_models[label] = model
    for label, res in cpu_speed(speed_models, prompt, args.decode_tokens, args.rounds).items():
        next(r for r in rows if r["mode"] == label).update(res)
    print_table(rows, ["mode", "MiB", "ppl", "ppl_delta_%", "generate_tok/s", "engine_tok/s", "greedy_agree",
                       "load_avg", "note"])
    if args.speed_config:  # the same speed table for a larger random-weight shape (no perplexity: random weights)
        from stellarbyte import ByteConfig, ByteModel
        from stellarbyte.bench._configs import get_config
        from stellarbyte.infer.quant import model_bytes

        torch.manual_seed(0)
        shape = QWEN3_06B if args.speed_config == "qwen3-0.6b" else get_config(args.speed_config).byte_config_kwargs()
        big = ByteModel(ByteConfig(**shape)).eval()
        models = {label: _variant(big, label, kw)[0] for label, kw in CPU_MODES if label in SPEED_MODES}
        print(f"CPU speed, {args.speed_config} with random weights ({big.num_parameters() / 1e6:.1f} M params), "
              f"load avg {os.getloadavg()[0]:.2f}")
        speed_rows = []
        for label, res in cpu_speed(models, prompt.clamp(max=big.config.vocab_size - 1), args.decode_tokens,
                                    args.rounds).items():
            speed_rows.append({"section": "cpu-speed", "model": args.speed_config, "mode": label,
                               "MiB": model_bytes(models[label]) / 2**20, **res})
        print_table(speed_rows, ["mode", "MiB", "generate_tok/s", "engine_tok/s", "greedy_agree", "load_avg"])
        rows += speed_rows
    return rows


# ---- CUDA: linear kernels and whole-model decode -----------------------------------------------------------------
def _graph_ms(fn, reps: int = 20, device: str = "cuda") -> float:
    """Median ms of one fn() call, replayed from a CUDA graph that calls it `reps` times (launch gaps shrink).
    On CPU (the dry run the tests make) a plain perf_counter median."""
    if not device.startswith("cuda"):
        fn()
        times = []
        for _ in range(3):
            t0 = time.perf_counter()
            fn()
            times.append((time.perf_counter() - t0) * 1e3)
        return sorted(times)[1]
    stream = torch.cuda.Stream()
    stream.wait_stream(torch.cuda.current_stream())
    with torch.cuda.stream(stream):
        for _ in range(3):
            fn()
    torch.cuda.current_stream().wait_stream(stream)
    torch.cuda.synchronize()
    graph = torch.cuda.CUDAGraph()
    with torch.cuda.graph(graph):
        for _ in range(reps):
            fn()
    graph.replay()
    torch.cuda.synchronize()
    times = []
    for _ in range(15):
        start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        start.record()
        graph.replay()
        end.record()
        end.synchronize()
        times.append(start.elapsed_time(end) / reps)
    return sorted(times)[len(times) // 2]


LINEAR_SHAPES = {"q_proj": (2048, 1024), "k_proj/v_proj": (1024, 1024), "o_proj": (1024, 2048),
                 "gate_proj/up_proj": (3072, 1024), "down_proj": (1024, 3072)}


def _linear_impls(layers):
    """name -> list of per-layer callables x -> y, plus per-layer weight bytes, for one projection shape."""
    import torch.nn.functional as F

    from stellarbyte.infer.quant import WeightOnlyLinear
    from stellarbyte.infer.quant.peers import int4pack_linear, int8pack_linear

    int8 = [WeightOnlyLinear.from_linear(lin, bits=8) for lin in layers]
    int4 = [WeightOnlyLinear.from_linear(lin, bits=4, group_size=128) for lin in layers]
    impls = {"bf16 cuBLAS": ([lambda x, w=lin.weight: F.linear(x, w) for lin in layers],
                             layers[0].weight.numel() * 2, None),
             "int8 ours (Triton)": ([lambda x, m=m: m(x, backend="triton") for m in int8], int8[0].weight_bytes(),
                                    int8[0]),
             "int4 g128 ours (Triton)": ([lambda x, m=m: m(x, backend="triton") for m in int4],
                                         int4[0].weight_bytes(), int4[0])}
    for name, build, mods in (("int8 torch._weight_int8pack_mm", int8pack_linear, int8),
                              ("int4 g128 torch._weight_int4pack_mm", int4pack_linear, int4)):
        try:
            impls[name] = ([build(m) for m in mods], mods[0].weight_bytes(), mods[0])
        except Exception as exc:  # not every torch build has every peer on CUDA
            impls[name] = (None, 0, f"{type(exc).__name__}: {str(exc)[:80]}")
    return impls


def cuda_linear_section(batch_sizes: list[int], layers_per_shape: int = 28, device: str = "cuda",
                        shapes: dict | None = None) -> list[dict]:
    from torch import nn

    rows = []
    torch.manual_seed(0)
    for shape_name, (n, k) in (shapes or LINEAR_SHAPES).items():
        layers = [nn.Linear(k, n, bias=False, device=device, dtype=torch.bfloat16) for _ in range(layers_per_shape)]
        for lin in layers:
            nn.init.normal_(lin.weight, std=0.02)
            lin.weight.requires_grad_(False)
        impls = _linear_impls(layers)
        for m in batch_sizes:
            x = torch.randn(m, k, device=device, dtype=torch.bfloat16)
            for name, (fns, nbytes, ref_mod) in impls.items():
                row = {"section": "cuda-linear", "shape": f"{shape_name} {n}x{k}", "M": m, "impl": name}
                if fns is None:
                    row["note"] = ref_mod
                    rows.append(row)
                    continue
                try:
                    with torch.inference_mode():
                        y = fns[0](x).double()
                    w_ref = layers[0].weight if ref_mod is None else ref_mod.dequantize(torch.float32)
                    ref = x.double() @ w_ref.double().t()
                    row["rel_err"] = float((y - ref).norm() / ref.norm())

                    def call_all(fns=fns, x=x):
                        for f in fns:
                            f(x)

                    ms = _graph_ms(call_all, reps=1, device=device) / len(fns)
                    row.update({"us": ms * 1e3, "GB/s": nbytes / (ms * 1e-3) / 1e9})
                except Exception as exc:
                    row["note"] = f"{type(exc).__name__}: {str(exc)[:100]}"
                rows.append(row)
        del layers, impls
        torch.cuda.empty_cache()
    base = {(r["shape"], r["M"]): r.get("us") for r in rows if r["impl"] == "bf16 cuBLAS"}
    for r in rows:
        if r.get("us") and base.get((r["shape"], r["M"])):
            r["speedup_vs_bf16"] = base[(r["shape"], r["M"])] / r["us"]
    print_table(rows, ["shape", "M", "impl", "us", "GB/s", "speedup_vs_bf16", "rel_err", "note"])
    if device.startswith("cuda"):
        from stellarbyte.infer.quant import triton_wo

        for (mb, n, k, int4, group, *_), cfg in triton_wo._BEST.items():
            print(f"  tuned: M<={mb} N={n} K={k} {'int4 g' + str(group) if int4 else 'int8'} -> {cfg}")
    return rows


def cuda_quality_section(args, device: str = "cuda") -> list[dict]:
    """The --model checkpoint in bf16 on the GPU: perplexity of each mode through the torch reference and through
    our fused kernel forced on for every row count; then LLM(quantization=...) against the quantized model's
    own generate (greedy agreement)."""
    from stellarbyte.infer.engine import LLM, SamplingParams
    from stellarbyte.infer.quant import quantize_model
    from stellarbyte.infer.quant.evaluate import perplexity, token_agreement
    from stellarbyte.kernels.registry import use_backend

    base = _load_cpu_model(args)
    ids, source = _eval_ids(args, base)
    seq = min(args.seq_len, base.config.context_length)
    base = base.to(device, torch.bfloat16)
    ref = not device.startswith("cuda")
    with torch.inference_mode():
        ref_ppl = perplexity(base, ids, seq)
    rows = [{"section": "cuda-quality", "mode": "bf16", "ppl_torch": ref_ppl}]
    for label, kw in [("int8 weight-only", dict(mode="int8-weight")), ("int4 g32", dict(mode="int4", group_size=32)),
                      ("int4 g128", dict(mode="int4", group_size=128)),
                      ("int4 g128 asym", dict(mode="int4", group_size=128, symmetric=False))]:
        row = {"section": "cuda-quality", "mode": label}
        try:
            q = copy.deepcopy(base)
            kw = dict(kw)
            quantize_model(q, kw.pop("mode"), allow_reference=ref, **kw)
            with torch.inference_mode():
                for backend in ("torch", "triton"):
                    with use_backend(backend):
                        row[f"ppl_{backend}"] = perplexity(q, ids, seq)
            row["ppl_delta_%"] = 100 * (row["ppl_triton"] / ref_ppl - 1)
        except Exception as exc:
            row["note"] = f"{type(exc).__name__}: {str(exc)[:120]}"
            traceback.print_exc()
        rows.append(row)
    try:  # the engine with quantization= (int8: weight-only on CUDA) vs the same quantization through generate()
        prompt = ids[:32]
        q = copy.deepcopy(base)
        quantize_model(q, "int8", allow_reference=ref)
        want = q.generate(torch.tensor([prompt], device=device), max_new_tokens=32, eos_token_id=[])[0, 32:]
        llm = LLM(copy.deepcopy(base), quantization="int8", num_blocks=64)
        got = llm.generate([prompt], SamplingParams(temperature=0, max_tokens=32, ignore_eos=True))
        got_ids = torch.tensor(got[0].outputs[0].token_ids, device=device)
        rows.append({"section": "cuda-quality", "mode": f"engine {llm.quantization.mode}",
                     "note": f"greedy agreement with generate(): {token_agreement(got_ids, want):.3f}"})
    except Exception as exc:
        rows.append({"section": "cuda-quality", "mode": "engine int8", "note": f"{type(exc).__name__}: {exc}"[:160]})
        traceback.print_exc()
    print(f"GPU quality: {args.model}, text {source} ({len(ids)} tokens)")
    print_table(rows, ["mode", "ppl_torch", "ppl_triton", "ppl_delta_%", "note"])
    return rows


def _bytes_read_per_step(model) -> int:
    """Weight bytes one decode step reads: everything but the embedding table (unless lm_head reads it, tied)."""
    from torch import nn

    from stellarbyte.infer.quant import model_bytes

    emb = model.model.embed_tokens.weight
    tied_and_used = isinstance(model.lm_head, nn.Linear) and model.lm_head.weight is emb
    return model_bytes(model) - (0 if tied_and_used else emb.numel() * emb.element_size())


def _capturable_cache(config, batch: int, max_length: int, device: str):
    """A StaticCache that runs attention itself (KVCache.computes_attention): the decoder then builds no mask,
    whose construction reads tensors on the host and so cannot be captured in a CUDA graph. Prefill attends
    causally over its own keys; a decode step over the first `seen` slots, all visible (a Python int, no read)."""
    import torch.nn.functional as F

    from stellarbyte.infer.cache import StaticCache

    class FixedContextCache(StaticCache):
        computes_attention = True

        def attend(self, layer_idx, q, k, v, scale):
            keys, values = self.update(layer_idx, k, v)  # (B, H_kv, max_length, D), this step written in place
            if q.shape[2] > 1:  # prefill of a fresh cache
                return F.scaled_dot_product_attention(q, k, v, is_causal=True, scale=scale, enable_gqa=True)
            n = self.seen  # slots 0..n-1 hold this row's keys, the new one included
            return F.scaled_dot_product_attention(q, keys[:, :, :n], values[:, :, :n], scale=scale, enable_gqa=True)

    return FixedContextCache(config.num_hidden_layers, batch, config.num_key_value_heads, config.head_dim,
                             max_length, torch.bfloat16, device)


def cuda_decode_section(batch_sizes: list[int], bandwidth_gbps: float, prompt_len: int = 120,
                        device: str = "cuda", config: dict | None = None) -> list[dict]:
    from stellarbyte import ByteConfig, ByteModel
    from stellarbyte.infer.quant import quantize_model

    torch.manual_seed(0)
    base = ByteModel(ByteConfig(**(config or QWEN3_06B))).to(device, torch.bfloat16).eval()
    base.model.reserve_positions(device=device)
    ref = not device.startswith("cuda")  # the CPU dry run uses the weight-only torch reference
    variants = [("bf16", None), ("int8 weight-only (Triton)", dict(mode="int8-weight", allow_reference=ref)),
                ("int4 g128 (Triton)", dict(mode="int4", group_size=128, kernel="triton", allow_reference=ref)),
                ("int4 g128 (auto: tinygemm)", dict(mode="int4", group_size=128, allow_reference=ref)),
                ("int4 g128 + lm_head (auto)", dict(mode="int4", group_size=128, skip=(), allow_reference=ref))]
    rows = []
    for label, kwargs in variants:
        model = copy.deepcopy(base)
        if kwargs:
            kw = dict(kwargs)
            quantize_model(model, kw.pop("mode"), **kw)
        weight_bytes = _bytes_read_per_step(model)
        for b in batch_sizes:
            row = {"section": "cuda-decode", "mode": label, "batch": b, "weights_MB": weight_bytes / 1e6}
            try:
                c = model.config
                cache = _capturable_cache(c, b, prompt_len + 8, device)
                kv_bytes = b * c.num_hidden_layers * 2 * c.num_key_value_heads * c.head_dim * (prompt_len + 1) * 2
                gen = torch.Generator().manual_seed(b)  # host RNG: a failed capture cannot poison it
                ids = torch.randint(3, c.vocab_size, (b, prompt_len), generator=gen).to(device)
                tok = torch.randint(3, c.vocab_size, (b, 1), generator=gen).to(device)
                pos = torch.full((b, 1), prompt_len, device=device)
                with torch.inference_mode():
                    model(ids, past_key_values=cache)  # prefill

                    def step(model=model, cache=cache, tok=tok, pos=pos):
                        cache.seen = prompt_len  # every replay decodes position prompt_len again
                        return model(tok, past_key_values=cache, position_ids=pos, logits_to_keep=1).logits

                    step()
                    sync(device)
                    t0 = time.perf_counter()
                    for _ in range(5):
                        step()
                    sync(device)
                    row["eager_ms"] = (time.perf_counter() - t0) / 5 * 1e3
                    row["graph_ms"] = _graph_ms(step, reps=1, device=device)
                floor_ms = (weight_bytes + kv_bytes) / (bandwidth_gbps * 1e9) * 1e3
                row.update({"kv_MB": kv_bytes / 1e6, "floor_ms": floor_ms, "x_floor": row["graph_ms"] / floor_ms})
            except Exception as exc:
                row["note"] = f"{type(exc).__name__}: {str(exc)[:120]}"
                traceback.print_exc()
            rows.append(row)
        del model
        torch.cuda.empty_cache()
    print_table(rows, ["mode", "batch", "weights_MB", "kv_MB", "eager_ms", "graph_ms", "floor_ms", "x_floor",
                       "note"])
    return rows


def run(args: argparse.Namespace) -> int:
    rows: list[dict] = []
    device = resolve_device(args.device)
    if not args.skip_cpu:
        rows += cpu_section(args)
    if device.startswith("cuda"):
        batch_sizes = [int(b) for b in args.batch_sizes.split(",") if b]
        peaks = measure_peaks("cuda")
        print(f"CUDA: {torch.cuda.get_device_name()}, copy bandwidth {peaks.bandwidth_gbps:.0f} GB/s (read + write)")
        sections = [lambda: cuda_quality_section(args)] if args.model else []
        for section in (*sections, lambda: cuda_linear_section(batch_sizes),
                        lambda: cuda_decode_section(batch_sizes, peaks.bandwidth_gbps)):
            try:
                rows += section()
            except Exception:
                traceback.print_exc()
            if args.csv:  # after every section: a run cut short still leaves its finished tables
                write_csv(args.csv, rows)
    if args.csv:
        write_csv(args.csv, rows)
        print(f"wrote {args.csv}")
    return 0
