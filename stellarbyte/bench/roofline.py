"""`stellarbyte bench roofline`: arithmetic intensity and attainable performance per op and per layer.

Roofline model (Williams, Waterman & Patterson, 2009): an op doing F FLOPs while moving at least B bytes has
intensity I = F / B; on a device with bandwidth BW and compute peak P it can reach at most min(P, I * BW).
Ops left of the ridge point P / BW are memory-bound; there the time floor is B / BW. Peaks come from
--peak-tbps / --peak-tflops (default: the H100 figures the issue measured, 3.0 TB/s and 783 TFLOP/s) or
--measure (this device, same method as the kernel bench). --from-csv adds the achieved points of a
`bench kernels` run (its fwd+bwd Triton rows) to the table and the plot.
"""

from __future__ import annotations

import argparse
import csv
import os

from stellarbyte.bench._configs import CONFIGS, get_config
from stellarbyte.bench._timing import measure_peaks, print_table, resolve_device, write_csv

# elementwise FLOPs per element (forward + backward) of the memory-bound ops; a rough count, it only places
# the points far left of the ridge where the exact value does not change the bound
ELEMENT_FLOPS = {"rms_norm": 12, "add_rms_norm": 14, "layer_norm": 16, "silu_mul": 14, "gelu_mul": 24,
                 "apply_rope": 12, "softmax": 10, "cross_entropy": 12}


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--config", default="llama-8b", help=f"layer shapes from: {', '.join(CONFIGS)}")
    parser.add_argument("--peak-tbps", type=float, default=3.0)
    parser.add_argument("--peak-tflops", type=float, default=783.0)
    parser.add_argument("--measure", action="store_true", help="measure the peaks on this device instead")
    parser.add_argument("--device", default="auto")
    parser.add_argument("--from-csv", default=None, help="a kernels.csv to add achieved points from")
    parser.add_argument("--out", default="runs/bench/roofline")


def op_points(e: int = 2) -> list[dict]:
    """fwd+bwd FLOPs and minimum bytes of the kernel bench's issue-size cases."""
    from stellarbyte.bench._kernel_cases import build_cases

    points = []
    for case in build_cases("issue", e):
        flops = case.fwd_flops + case.bwd_flops
        bytes_ = case.fwd_bytes + case.bwd_bytes
        if not flops:  # memory-bound op: elements moved x a per-element FLOP estimate
            flops = ELEMENT_FLOPS.get(case.op, 10) * case.fwd_bytes / e
        if not bytes_:  # matrix op: operands and result once per product (fwd: A, B, C; bwd twice that)
            bytes_ = float("nan")
        points.append({"name": f"{case.op} {case.size}", "kind": "op", "flops": flops, "bytes": bytes_})
    return points


def layer_points(cfg_name: str, e: int = 2) -> list[dict]:
    """Forward FLOPs and minimum bytes (weights + activations in and out) of one layer's parts."""
    from stellarbyte.bench._layers import layer_flops

    cfg = get_config(cfg_name)
    tokens = cfg.batch * cfg.seq
    d = cfg.head_dim
    attn_w = cfg.hidden * (cfg.heads + 2 * cfg.kv_heads) * d + cfg.heads * d * cfg.hidden
    mlp_w = 3 * cfg.hidden * cfg.ffn
    act = tokens * cfg.hidden
    attn_bytes = e * (attn_w + 2 * act + tokens * (2 * cfg.heads + 2 * cfg.kv_heads) * d)
    mlp_bytes = e * (mlp_w + 2 * act + 3 * tokens * cfg.ffn)
    out = []
    for part, bytes_ in (("attention", attn_bytes), ("mlp", mlp_bytes), ("block", attn_bytes + mlp_bytes)):
        out.append({"name": f"{cfg_name} {part}", "kind": "layer", "flops": layer_flops(cfg, part), "bytes": bytes_})
    for tokens_decode in (1, 64):  # decode: weights dominate the bytes
        flops = 2 * tokens_decode * (attn_w + mlp_w)
        out.append({"name": f"{cfg_name} decode x{tokens_decode} (weights)", "kind": "layer", "flops": flops,
                    "bytes": e * (attn_w + mlp_w)})
    return out


def achieved(path: str) -> dict[str, float]:
    got = {}
    with open(path, newline="") as f:
        for row in csv.DictReader(f):
            if row.get("provider") == "triton" and row.get("mode") == "fwd+bwd" and row.get("ms"):
                got[f"{row['op']} {row['size']}"] = float(row["ms"])
    return got


def run(args: argparse.Namespace) -> int:
    bw, peak = args.peak_tbps * 1e12, args.peak_tflops * 1e12
    if args.measure:
        device = resolve_device(args.device)
        measured = measure_peaks(device)
        if not measured.measured:
            raise ValueError("--measure needs a CUDA device; pass --peak-tbps/--peak-tflops instead")
        bw, peak = measured.bandwidth_gbps * 1e9, measured.bf16_tflops * 1e12
    if args.from_csv and not os.path.exists(args.from_csv):
        raise FileNotFoundError(f"--from-csv {args.from_csv} does not exist; run `stellarbyte bench kernels` first")
    got = achieved(args.from_csv) if args.from_csv else {}
    rows = op_points() + layer_points(args.config)
    for r in rows:
        intensity = r["flops"] / r["bytes"] if r["bytes"] == r["bytes"] else float("inf")
        r["intensity"] = intensity
        r["attainable_TFLOPs"] = min(peak, intensity * bw) / 1e12
        r["bound"] = "memory" if intensity * bw < peak else "compute"
        floor_s = max(r["flops"] / peak, (r["bytes"] / bw) if r["bytes"] == r["bytes"] else 0.0)
        r["floor_ms"] = floor_s * 1e3
        if r["name"] in got:
            r["achieved_ms"] = got[r["name"]]
            r["achieved_TFLOPs"] = r["flops"] / (got[r["name"]] * 1e-3) / 1e12
            r["of_floor"] = r["floor_ms"] / got[r["name"]]
    print(f"peaks: {bw / 1e12:.2f} TB/s, {peak / 1e12:.0f} TFLOP/s; ridge point {peak / bw:.0f} FLOP/byte\n")
    print_table(rows, ["name", "kind", "intensity", "bound", "attainable_TFLOPs", "floor_ms", "achieved_ms",
                       "of_floor"])
    os.makedirs(args.out, exist_ok=True)
    write_csv(os.path.join(args.out, "roofline.csv"), rows)
    print(f"\nwrote {os.path.join(args.out, 'roofline.csv')}")
    path = _plot(rows, bw, peak, args.out)
    if path:
        print(f"wrote {path}")
    return 0


def _plot(rows: list[dict], bw: float, peak: float, out: str) -> str | None:
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        print("matplotlib not installed: skipping the plot")
        return None
    xs = [10 ** (i / 10) for i in range(-10, 51)]
    fig, ax = plt.subplots(figsize=(8, 5))
    ax.loglog(xs, [min(peak, x * bw) / 1e12 for x in xs], "k-", label="roofline")
    for r in rows:
        x = r["intensity"] if r["intensity"] != float("inf") else 1e5
        ax.scatter([x], [r["attainable_TFLOPs"]], marker="o" if r["kind"] == "op" else "s", s=18)
        ax.annotate(r["name"], (x, r["attainable_TFLOPs"]), fontsize=5)
        if "achieved_TFLOPs" in r:
            ax.scatter([x], [r["achieved_TFLOPs"]], marker="x", color="red", s=24)
    ax.set_xlabel("arithmetic intensity (FLOP / byte)")
    ax.set_ylabel("TFLOP/s")
    ax.set_title("roofline (x: measured Triton fwd+bwd)")
    fig.tight_layout()
    path = os.path.join(out, "roofline.png")
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path
