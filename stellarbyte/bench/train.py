"""`stellarbyte bench train`: training tokens/s and MFU of full steps, ours and transformers' side by side.

For each shape, every row runs the same step on the same batch: forward under bf16 autocast (fp32 parameters,
as transformers' and our trainer's AMP recipe does), backward, fused AdamW, zero_grad(set_to_none). Rows:

  ours-eager           ByteModel, kernel registry "auto" (Triton RMSNorm / RoPE / SwiGLU / fused linear+CE on
                       CUDA, SDPA attention), no compilation
  ours-compile         torch.compile(ByteModel, fullgraph=True), every op the torch reference (inductor fuses)
  ours-compile-flce    the same, but the LM head + loss through the Triton fused linear + cross-entropy (the
                       (B, T, V) logits never exist), as a torch.library custom op inside the compiled graph
  ours-compile-triton  compiled with our Triton RMSNorm, RoPE, SwiGLU and fused linear+CE as custom ops in the
                       graph (SDPA attention and cuBLAS matmuls as everywhere)
  ours-compile-logits  compiled with "auto" kernels but the trainer's loss path (full logits, torch's float32
                       cross-entropy): the step `stellarbyte pretrain` runs, for the loop-overhead comparison
  ours-trainer         the real training loop: stellarbyte.train.Trainer.train_step (compile on, bf16, grad clip
                       1.0, weight decay groups, LR schedule, the NaN-skip rule), on the same batch as aligned
                       targets; timed twice: as configured (CUDA: the fused AdamW skips and clips on the device),
                       then with skip_on_device=False (clip_grad_norm_ and one host read per step) -> row
                       ours-trainer-hostskip
  hf-eager             transformers' LlamaForCausalLM, attn_implementation="sdpa", our weights loaded into it
  hf-compile           torch.compile of that model

MFU = model_flops_per_token(config, seq) * tokens/s / peak (stellarbyte.model.analysis: 6 N + 12 L H Q T per
token, N = every matmul weight including the LM head but not the input embedding, attention counted over the
full T x T square as PaLM appendix B and nanoGPT do). The same FLOP count serves every row of a shape. Peaks:
989 TFLOP/s (H100 SXM dense bf16 data sheet) and the bf16 matmul rate measured in this run (8192^3, random data).
Tokens/s is the median of the timed steps after warm-up (compilation and autotuning excluded), each step
synchronised; loop_ms is the mean step of the same number of steps run back to back with one synchronisation at
the end (what a training loop that reads nothing per step sees: the CPU queues step k+1 while the GPU runs k).
Each row also reports the loss at its first step: rows of a shape share weights and batch, so those agree to bf16
rounding.

--profile adds, per shape, a torch.profiler summary of one step of each profiled row: top kernels by device time
and the share of matmul / attention / elementwise+norm / loss / optimizer / copies (profile_<shape>_<row>.txt).
--preset tiny runs the same code on the CPU with a tiny shape (what tests/bench runs).
"""

from __future__ import annotations

import argparse
import contextlib
import gc
import os
import statistics
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass

import torch

import stellarbyte.kernels as K
from stellarbyte.bench._configs import BenchConfig, get_config
from stellarbyte.bench._timing import measure_peaks, print_table, resolve_device, write_csv

ROWS = ("ours-eager", "ours-compile", "ours-compile-flce", "ours-compile-triton", "ours-compile-logits",
        "ours-trainer", "hf-eager", "hf-compile")
DEFAULT_ROWS = ("ours-eager", "ours-compile", "ours-compile-flce", "ours-compile-triton", "hf-eager", "hf-compile")
SPEC_PEAK_TFLOPS = 989.0  # H100 SXM, dense bf16 (data sheet); the reference MFUs use it
# (config, batch): the issue's shapes and the reference runs' batches
PRESETS: dict[str, list[tuple[str, int]]] = {
    "h100": [("gpt2-124m-like", 32), ("llama-1b", 8)],
    "tiny": [("tiny", 2)],
}
TRITON_OPS_FLCE = ("fused_linear_cross_entropy",)
# what "compile + Triton kernels" forces (under compile, "auto" keeps the torch reference of the elementwise ops)
TRITON_OPS_ALL = ("rms_norm", "apply_rope", "silu_mul", "gelu_mul", "fused_linear_cross_entropy")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--preset", choices=sorted(PRESETS), default=None,
                        help="shapes and batches: h100 (gpt2-124m-like x 32, llama-1b x 8; default on CUDA) or "
                             "tiny (CPU smoke run; default on CPU)")
    parser.add_argument("--shapes", default=None, help="instead of the preset: config=batch pairs, e.g. "
                                                      "'llama-1b=8,gpt2-124m-like=32'")
    parser.add_argument("--rows", default=",".join(DEFAULT_ROWS), help=f"comma list from {', '.join(ROWS)}")
    parser.add_argument("--steps", type=int, default=10, help="timed steps per row")
    parser.add_argument("--warmup", type=int, default=3, help="untimed steps per row (compilation happens here)")
    parser.add_argument("--device", default="auto")
    parser.add_argument("--compile-backend", default="inductor",
                        help="torch.compile backend (inductor; aot_eager for quick CPU checks)")
    parser.add_argument("--profile", action="store_true", help="profile one step of the --profile-rows per shape")
    parser.add_argument("--profile-rows", default="ours-compile-flce,ours-compile-triton,hf-compile")
    parser.add_argument("--budget", type=float, default=0.0,
                        help="seconds; rows that would start after this are skipped (0: no limit)")
    parser.add_argument("--peak-tflops", type=float, default=None, help="skip the matmul measurement, use this")
    parser.add_argument("--micro", action="store_true",
                        help="also time, per shape, SDPA's attention backends and the fused linear+CE chunk sizes "
                             "(forward + backward; CUDA only)")
    parser.add_argument("--out", default="runs/bench/train", help="directory for train.csv and profiles")


@dataclass(slots=True)
class Row:
    """What one row needs: how to build its model and step, and which kernel backend it runs under."""

    name: str
    family: str  # ours | hf | trainer
    compiled: bool
    backend: str  # kernel registry default inside the row
    op_backends: tuple[tuple[str, tuple[str, ...]], ...] = ()  # (backend, ops) switched on top of `backend`
    fused_loss: bool = True  # ours: forward(..., return_logits=False), the LM head + loss through the registry


ROW_SPECS = {
    "ours-eager": Row("ours-eager", "ours", False, "auto"),
    "ours-compile": Row("ours-compile", "ours", True, "torch"),
    "ours-compile-flce": Row("ours-compile-flce", "ours", True, "torch", (("triton", TRITON_OPS_FLCE),)),
    "ours-compile-triton": Row("ours-compile-triton", "ours", True, "auto", (("triton", TRITON_OPS_ALL),)),
    "ours-compile-logits": Row("ours-compile-logits", "ours", True, "auto", (("torch", ("cross_entropy",)),),
                               fused_loss=False),
    "ours-trainer": Row("ours-trainer", "trainer", True, "auto"),
    "hf-eager": Row("hf-eager", "hf", False, "torch"),
    "hf-compile": Row("hf-compile", "hf", True, "torch"),
}


def parse_rows(text: str) -> list[Row]:
    names = [r.strip() for r in text.split(",") if r.strip()]
    unknown = [n for n in names if n not in ROW_SPECS]
    if unknown or not names:
        raise ValueError(f"--rows: unknown row(s) {unknown}; choose from {', '.join(ROWS)}")
    return [ROW_SPECS[n] for n in names]


def parse_shapes(args: argparse.Namespace, device: str) -> list[tuple[str, BenchConfig, int]]:
    if args.shapes:
        pairs = []
        for item in args.shapes.split(","):
            name, sep, batch = item.partition("=")
            if not sep or not batch.strip().isdigit() or int(batch) < 1:
                raise ValueError(f"--shapes wants config=batch pairs such as llama-1b=8; got {item!r}")
            pairs.append((name.strip(), int(batch)))
    else:
        pairs = PRESETS[args.preset or ("h100" if device.startswith("cuda") else "tiny")]
    return [(name, get_config(name), batch) for name, batch in pairs]


def byte_config(cfg: BenchConfig):
    from stellarbyte import ByteConfig

    # SDPA attention for the causal training case; untied LM head (transformers' LlamaConfig default)
    return ByteConfig(**cfg.byte_config_kwargs(), attention_implementation="sdpa")


def flops_per_token(cfg: BenchConfig) -> float:
    from stellarbyte.model.analysis import model_flops_per_token

    return model_flops_per_token(byte_config(cfg), cfg.seq)


def build_ours(cfg: BenchConfig, device: str):
    from stellarbyte import ByteModel

    torch.manual_seed(0)
    with torch.device(device):  # initialise on the device: a 1B model's init on the CPU takes a minute
        model = ByteModel(byte_config(cfg))
    model.model.reserve_positions(None, device)  # the whole window, as a compiled forward wants it (no regrowth)
    return model.train()


def build_hf(cfg: BenchConfig, device: str) -> torch.nn.Module:
    """transformers' LlamaForCausalLM of the same shape (sdpa), holding the same weights as build_ours."""
    from transformers import LlamaConfig, LlamaForCausalLM

    from stellarbyte.hf.llama import LlamaAdapter

    ours = build_ours(cfg, device)
    fields = LlamaAdapter().to_hf_config(ours.config)
    for key in ("architectures", "model_type", "dtype", "torch_dtype"):
        fields.pop(key, None)
    hf_config = LlamaConfig(**fields)
    hf_config._attn_implementation = "sdpa"
    with torch.device(device):
        hf = LlamaForCausalLM(hf_config)
    missing, unexpected = hf.load_state_dict(ours.state_dict(), strict=False)
    real_missing = [k for k in missing if "rotary" not in k]
    if real_missing or unexpected:
        raise RuntimeError(f"weights did not map onto LlamaForCausalLM: missing {real_missing[:5]}, unexpected "
                           f"{unexpected[:5]}")
    del ours
    return hf.train()


@contextlib.contextmanager
def row_backend(row: Row):
    with contextlib.ExitStack() as stack:
        stack.enter_context(K.use_backend(row.backend))
        for backend, ops in row.op_backends:
            stack.enter_context(K.use_backend(backend, ops=ops))
        yield


def make_trainer_step(model: torch.nn.Module, ids: torch.Tensor, device: str, compile_backend: str):
    """The real loop's step (Trainer.train_step) on an endless stream of the same batch; returns (step, trainer).
    The trainer's own torch.compile uses the default backend (inductor) unless compile_backend says eager."""
    from stellarbyte.train.batches import labels_to_targets
    from stellarbyte.train.config import TrainConfig
    from stellarbyte.train.trainer import Trainer

    batch = {"input_ids": ids.cpu(), "targets": labels_to_targets(ids.cpu())}  # as a data loader gives them

    def stream():
        while True:
            yield batch

    run_dir = tempfile.mkdtemp(prefix="sb_bench_trainer_")
    cfg = TrainConfig(model={}, seq_len=ids.shape[1], batch_size=ids.shape[0], device=device,
                      precision="bf16" if device.startswith("cuda") else "fp32", compile=compile_backend != "eager",
                      lr=1e-5, warmup_steps=0, max_steps=10**9, lr_schedule="constant", eval_every=0, save_every=0,
                      loggers=[], progress=False, run_dir=run_dir)
    trainer = Trainer(model, cfg, stream())
    if compile_backend not in ("eager", "inductor"):
        trainer.forward_model = torch.compile(trainer.wrapped, backend=compile_backend)

    def step() -> torch.Tensor:
        return trainer.train_step()["loss"]

    step.trainer = trainer  # time_row switches its skip path for the second timing
    return step, trainer


def make_step(row: Row, model: torch.nn.Module, ids: torch.Tensor, device: str,
              compile_backend: str) -> tuple[Callable[[], torch.Tensor], torch.optim.Optimizer]:
    cuda = device.startswith("cuda")
    if row.family == "trainer":
        step, trainer = make_trainer_step(model, ids, device, compile_backend)
        return step, trainer.optimizer
    opt = torch.optim.AdamW(model.parameters(), lr=1e-5, fused=cuda)
    if row.compiled:
        forward = torch.compile(model, backend=compile_backend, fullgraph=row.family == "ours")
    else:
        forward = model

    def step() -> torch.Tensor:
        with torch.autocast("cuda" if cuda else "cpu", dtype=torch.bfloat16, enabled=cuda):
            if row.family == "ours":
                loss = forward(ids, labels=ids, return_logits=not row.fused_loss).loss
            else:
                loss = forward(input_ids=ids, labels=ids).loss
        loss.backward()
        opt.step()
        opt.zero_grad(set_to_none=True)
        return loss.detach()

    return step, opt


def _timed_steps(step: Callable[[], torch.Tensor], steps: int, device: str) -> list[float]:
    """Seconds of each of `steps` steps, synchronising after each."""
    times = []
    for _ in range(steps):
        s0 = time.perf_counter()
        step()
        _sync(device)
        times.append(time.perf_counter() - s0)
    return times


def time_loop(step: Callable[[], torch.Tensor], steps: int, device: str) -> float:
    """Mean ms per step of `steps` steps run back to back, one synchronisation at the end."""
    _sync(device)
    t0 = time.perf_counter()
    for _ in range(steps):
        step()
    _sync(device)
    return (time.perf_counter() - t0) / steps * 1e3


def _sync(device: str) -> None:
    if device.startswith("cuda"):
        torch.cuda.synchronize()


def time_row(row: Row, cfg: BenchConfig, batch: int, device: str, args: argparse.Namespace,
             profile_path: str | None) -> dict:
    """Build, warm up, time and (optionally) profile one row; returns its measurements."""
    cuda = device.startswith("cuda")
    model = build_hf(cfg, device) if row.family == "hf" else build_ours(cfg, device)
    g = torch.Generator(device=device).manual_seed(1)
    ids = torch.randint(0, cfg.vocab, (batch, cfg.seq), device=device, generator=g)
    step, opt = make_step(row, model, ids, device, args.compile_backend)
    out: dict = {}
    with row_backend(row):
        t0 = time.perf_counter()
        first = float(step())  # weights untouched so far: the same loss in every row of the shape
        for _ in range(max(args.warmup - 1, 0)):
            step()
        _sync(device)
        out["warmup_s"] = time.perf_counter() - t0
        if cuda:
            torch.cuda.reset_peak_memory_stats()
        times = _timed_steps(step, args.steps, device)
        loss = step()
        out["peak_GB"] = torch.cuda.max_memory_allocated() / 1e9 if cuda else float("nan")
        out["loop_ms"] = time_loop(step, args.steps, device)
        trainer = getattr(step, "trainer", None)
        if trainer is not None and trainer.skip_on_device:  # the host-side rule on the same compiled step
            trainer.skip_on_device = False
            step()
            out["hostskip_step_ms"] = 1e3 * statistics.median(_timed_steps(step, args.steps, device))
            out["hostskip_loop_ms"] = time_loop(step, args.steps, device)
            trainer.skip_on_device = True
        if profile_path:
            write_profile(step, device, profile_path, f"{row.name} {batch}x{cfg.seq}")
    dt = statistics.median(times)
    out.update(step_ms=dt * 1e3, tokens_per_s=batch * cfg.seq / dt, loss_step0=first, loss_last=float(loss))
    del step, opt, model
    return out


# ---- profiler summary -----------------------------------------------------------------------------------

CATEGORIES = (  # first match wins; lower-case substrings of kernel names
    ("attention", ("flash", "fmha", "cudnn", "attention", "sdpa", "_attn", "scaled_dot")),
    ("loss", ("_ce_kernel", "cross_entropy", "nll_loss", "log_softmax", "logsumexp")),
    ("optimizer", ("adam", "multi_tensor", "foreach")),
    ("matmul", ("gemm", "nvjet", "cutlass", "xmma", "matmul", "sm90_", "cublas", "splitk", "_mm_", "fused_mm")),
    ("elementwise/norm/other", ("triton_",)),  # inductor's fused kernels (their names often hold "_to_copy")
    ("copy/cast", ("copy", "memcpy", "memset", "cast", "fill")),
)


def categorise(name: str) -> str:
    low = name.lower()
    for category, keys in CATEGORIES:
        if any(k in low for k in keys):
            return category
    return "elementwise/norm/other"


def kernel_times(prof, cuda: bool) -> list[tuple[str, float, int]]:
    """(name, milliseconds, calls) of device kernels (CUDA), or of CPU ops by self time (CPU runs)."""
    out = []
    for evt in prof.key_averages():
        if getattr(evt, "is_user_annotation", False) or evt.key.startswith("Optimizer."):
            continue  # ranges such as Optimizer.step#AdamW.step span kernels already counted: not kernels
        if cuda:
            if getattr(evt, "device_type", None) != torch.autograd.DeviceType.CUDA:
                continue
            t = evt.self_device_time_total
        else:
            t = evt.self_cpu_time_total
        if t > 0:
            out.append((evt.key, t / 1e3, evt.count))
    if cuda and not out:  # a profiler build without per-kernel device types: every op with device time
        out = [(e.key, e.self_device_time_total / 1e3, e.count) for e in prof.key_averages()
               if e.self_device_time_total > 0]
    return sorted(out, key=lambda r: -r[1])


def summarise(kernels: list[tuple[str, float, int]], title: str, top: int = 15) -> str:
    total = sum(ms for _, ms, _ in kernels) or float("nan")
    shares: dict[str, float] = {}
    for name, ms, _ in kernels:
        shares[categorise(name)] = shares.get(categorise(name), 0.0) + ms
    lines = [f"# {title}: one step, {total:.1f} ms of kernel time", "", "share by category:"]
    for cat, ms in sorted(shares.items(), key=lambda kv: -kv[1]):
        lines.append(f"  {cat:24s} {ms:9.2f} ms  {ms / total:6.1%}")
    lines += ["", f"top {top} kernels:", f"  {'ms':>8}  {'share':>6}  {'calls':>5}  category / name"]
    for name, ms, calls in kernels[:top]:
        lines.append(f"  {ms:8.2f}  {ms / total:6.1%}  {calls:5d}  {categorise(name)}: {name[:110]}")
    return "\n".join(lines) + "\n"


def write_profile(step: Callable[[], torch.Tensor], device: str, path: str, title: str) -> None:
    from torch.profiler import ProfilerActivity, profile

    cuda = device.startswith("cuda")
    activities = [ProfilerActivity.CPU] + ([ProfilerActivity.CUDA] if cuda else [])
    with profile(activities=activities) as prof:
        step()
        _sync(device)
    text = summarise(kernel_times(prof, cuda), title)
    _write_text(path, text)


def _write_text(path: str, text: str) -> None:
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=os.path.dirname(os.path.abspath(path)), suffix=".tmp")
    with os.fdopen(fd, "w") as f:
        f.write(text)
    os.replace(tmp, path)


# ---- micro-benchmarks behind the rows ---------------------------------------------------------------------


def _rand(g: torch.Generator, device: str, *shape: int) -> torch.Tensor:
    return torch.randn(*shape, device=device, dtype=torch.bfloat16, generator=g).requires_grad_()


def _micro_attention(cfg: BenchConfig, batch: int, device: str) -> list[dict]:
    from torch.nn.attention import SDPBackend, sdpa_kernel

    from stellarbyte.bench._timing import bench_ms

    g = torch.Generator(device=device).manual_seed(0)
    q = _rand(g, device, batch, cfg.heads, cfg.seq, cfg.head_dim)
    k = _rand(g, device, batch, cfg.kv_heads, cfg.seq, cfg.head_dim)
    v = _rand(g, device, batch, cfg.kv_heads, cfg.seq, cfg.head_dim)
    rows = []
    for name in ("FLASH_ATTENTION", "CUDNN_ATTENTION", "EFFICIENT_ATTENTION"):
        backend = getattr(SDPBackend, name)

        def attn(backend: SDPBackend = backend) -> None:
            with sdpa_kernel([backend]):
                out = torch.nn.functional.scaled_dot_product_attention(q, k, v, is_causal=True, enable_gqa=True)
            out.sum().backward()

        try:
            rows.append({"what": f"attention {name.lower()}", "ms": bench_ms(attn, device)})
        except RuntimeError as err:
            rows.append({"what": f"attention {name.lower()}", "error": str(err).splitlines()[0][:120]})
    return rows


def _micro_loss(cfg: BenchConfig, batch: int, device: str) -> list[dict]:
    from stellarbyte.bench._timing import bench_ms
    from stellarbyte.kernels.reference.cross_entropy import fused_linear_cross_entropy as unfused

    g = torch.Generator(device=device).manual_seed(1)
    n = batch * cfg.seq
    h, w = _rand(g, device, n, cfg.hidden), _rand(g, device, cfg.vocab, cfg.hidden)
    labels = torch.randint(0, cfg.vocab, (n,), device=device, generator=g)

    def run_loss(loss_fn: Callable[[], torch.Tensor]) -> None:
        loss_fn().backward()
        h.grad = w.grad = None

    rows = [{"what": "lm head + loss: logits + fp32 CE",
             "ms": bench_ms(lambda: run_loss(lambda: unfused(h, w, labels)), device)}]
    for chunk in (None, 2048, 4096):
        def fused(c: int | None = chunk) -> torch.Tensor:
            return K.fused_linear_cross_entropy(h, w, labels, chunk_size=c, backend="triton")

        label = "default" if chunk is None else str(chunk)
        rows.append({"what": f"lm head + loss: fused, chunk {label}", "ms": bench_ms(lambda: run_loss(fused), device)})
    return rows


def micro(cfg: BenchConfig, batch: int, device: str) -> list[dict]:
    """Forward + backward milliseconds of the shape's causal attention under each SDPA backend, and of the LM
    head + loss: logits + float32 cross-entropy (what transformers does) vs the fused op at several chunks."""
    return _micro_attention(cfg, batch, device) + _micro_loss(cfg, batch, device)


# ---- the command ----------------------------------------------------------------------------------------


def _free(device: str) -> None:
    gc.collect()
    torch._dynamo.reset()  # compiled graphs hold their own references and caches
    if device.startswith("cuda"):
        torch.cuda.empty_cache()


def run(args: argparse.Namespace) -> int:
    if args.steps < 1 or args.warmup < 1:
        raise ValueError("--steps and --warmup must be >= 1 (the first warm-up step compiles)")
    device = resolve_device(args.device)
    rows = parse_rows(args.rows)
    shapes = parse_shapes(args, device)
    if any(r.family == "hf" for r in rows):
        try:
            import transformers  # noqa: F401
        except ImportError as err:
            raise ValueError("rows hf-eager / hf-compile need transformers: pip install transformers, or pass "
                             "--rows without them") from err
    profile_rows = {r.strip() for r in args.profile_rows.split(",")} if args.profile else set()
    start = time.perf_counter()
    if args.peak_tflops:
        measured = args.peak_tflops
    else:
        measured = measure_peaks(device).bf16_tflops
    print(f"device {torch.cuda.get_device_name() if device.startswith('cuda') else device}; bf16 matmul "
          f"{measured:.0f} TFLOP/s measured (8192^3, random data); torch {torch.__version__}", flush=True)
    results = []
    for name, cfg, batch in shapes:
        if args.micro and device.startswith("cuda"):
            micro_rows = micro(cfg, batch, device)
            print(f"micro-benchmarks, {name} at batch {batch} (forward + backward, median ms):")
            print_table(micro_rows, ["what", "ms", "error"])
            write_csv(os.path.join(args.out, f"micro_{name}.csv"), micro_rows)
            _free(device)
        fpt = flops_per_token(cfg)
        for row in rows:
            base = {"shape": name, "row": row.name, "batch": batch, "seq": cfg.seq}
            if args.budget and time.perf_counter() - start > args.budget:
                results.append({**base, "error": "skipped: --budget spent"})
                continue
            forces_triton = any(backend == "triton" for backend, _ in row.op_backends)
            if forces_triton and not device.startswith("cuda") and os.environ.get("TRITON_INTERPRET") != "1":
                results.append({**base, "error": "skipped: Triton kernels need CUDA (or TRITON_INTERPRET=1 on a CPU)"})
                continue
            prof_path = os.path.join(args.out, f"profile_{name}_{row.name}.txt") if row.name in profile_rows else None
            try:
                r = time_row(row, cfg, batch, device, args, prof_path)
            except torch.cuda.OutOfMemoryError:
                r = {"error": f"out of memory at batch {batch}"}
            except Exception as err:  # noqa: BLE001 -- one failing row must not lose the others
                first = str(err).splitlines()[0][:200] if str(err) else ""
                r = {"error": f"{type(err).__name__}: {first}"}
            _free(device)
            if "tokens_per_s" in r:
                achieved = fpt * r["tokens_per_s"] / 1e12
                r.update(tflops=achieved, mfu_989=achieved / SPEC_PEAK_TFLOPS, mfu_measured=achieved / measured)
                loop_tflops = fpt * batch * cfg.seq / (r["loop_ms"] / 1e3) / 1e12
                r["mfu_989_loop"] = loop_tflops / SPEC_PEAK_TFLOPS
            results.append({**base, **r})
            print(f"  {name:16s} {row.name:20s} {r.get('step_ms', float('nan')):9.1f} ms/step  "
                  f"{r.get('tokens_per_s', float('nan')):10.0f} tok/s  {r.get('error', '')}", flush=True)
        ref = next((r for r in results if r["shape"] == name and r["row"] == "hf-compile" and "tokens_per_s" in r),
                   None)
        for r in results:
            if r["shape"] == name and ref and "tokens_per_s" in r:
                r["vs_hf_compile"] = r["tokens_per_s"] / ref["tokens_per_s"]
    print(f"\nbf16 autocast, fp32 params, fused AdamW; MFU from model_flops_per_token (6N + 12LHQT); peaks: "
          f"{SPEC_PEAK_TFLOPS:.0f} (spec) and {measured:.0f} TFLOP/s (measured)\n")
    print_table(results, ["shape", "row", "batch", "seq", "step_ms", "tokens_per_s", "tflops", "mfu_989",
                          "mfu_measured", "vs_hf_compile", "loop_ms", "mfu_989_loop", "hostskip_step_ms",
                          "hostskip_loop_ms", "peak_GB", "loss_step0", "warmup_s", "error"])
    for r in results:
        r["matmul_tflops_measured"] = measured
    path = os.path.join(args.out, "train.csv")
    write_csv(path, results)
    print(f"\nwrote {path}")
    return 0


def main(argv: list[str] | None = None) -> int:
    """`python -m stellarbyte.bench.train ...` (the same as `stellarbyte bench train ...`)."""
    parser = argparse.ArgumentParser(prog="stellarbyte bench train", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    add_arguments(parser)
    return run(parser.parse_args(argv))


if __name__ == "__main__":
    raise SystemExit(main())
