"""The benchmark commands run on CPU and write what they promise (numbers are timings, so only shapes and
derived quantities are asserted)."""

from __future__ import annotations

import csv
import json
import math

import pytest

from stellarbyte.bench._kernel_cases import build_cases
from stellarbyte.cli import main


def _rows(path):
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


def test_bench_kernels_cpu_table_and_csv(tmp_path, capsys):
    assert main(["bench", "kernels", "--providers", "torch", "--ops", "rms_norm,softmax", "--rep-ms", "2",
                 "--no-plot", "--device", "cpu", "--out", str(tmp_path)]) == 0
    rows = [r for r in _rows(tmp_path / "kernels.csv") if r["op"] != "_peaks"]
    wanted = {(op, m) for op in ("rms_norm", "softmax") for m in ("fwd", "fwd+bwd")}
    assert {(r["op"], r["mode"]) for r in rows} == wanted
    for r in rows:
        assert float(r["ms"]) > 0 and float(r["GB/s"]) > 0
    assert "rms_norm" in capsys.readouterr().out
    assert main(["bench", "kernels", "--ops", "nope", "--device", "cpu", "--out", str(tmp_path)]) == 2


def test_issue_sizes_and_byte_counts():
    cases = {(c.op, c.size): c for c in build_cases("issue")}
    rms = cases[("rms_norm", "8192x4096")]
    assert rms.fwd_bytes + rms.bwd_bytes == 5 * 8192 * 4096 * 2  # x, y | dy, x, dx
    silu = cases[("silu_mul", "4096x14336")]
    assert silu.fwd_bytes + silu.bwd_bytes == 8 * 4096 * 14336 * 2  # g, u, y | dy, g, u, dg, du
    attn = cases[("attention", "4x32/32x4096x128")]
    assert attn.fwd_flops == 4 * 4 * 32 * (4096 * 4097 / 2) * 128
    assert cases[("fused_linear_cross_entropy", "8192x4096x128256")].issue_size


def test_bench_roofline(tmp_path, capsys):
    assert main(["bench", "roofline", "--out", str(tmp_path), "--peak-tbps", "2", "--peak-tflops", "500"]) == 0
    rows = {r["name"]: r for r in _rows(tmp_path / "roofline.csv")}
    rms = rows["rms_norm 8192x4096"]
    assert rms["bound"] == "memory"
    assert math.isclose(float(rms["attainable_TFLOPs"]), float(rms["intensity"]) * 2.0, rel_tol=1e-6)
    assert rows["llama-8b mlp"]["bound"] == "compute"
    assert math.isclose(float(rows["llama-8b mlp"]["attainable_TFLOPs"]), 500.0)
    assert "ridge point 250 FLOP/byte" in capsys.readouterr().out
    # a missing CSV is a user error: one line on stderr, exit code 2
    assert main(["bench", "roofline", "--from-csv", str(tmp_path / "missing.csv"), "--out", str(tmp_path)]) == 2
    assert "does not exist" in capsys.readouterr().err


@pytest.mark.slow
def test_bench_profile_and_layers_on_cpu(tmp_path, capsys):
    assert main(["bench", "profile", "--config", "tiny", "--steps", "1", "--top", "5", "--device", "cpu",
                 "--out", str(tmp_path)]) == 0
    trace = json.loads((tmp_path / "trace.json").read_text())
    assert len(trace["traceEvents"]) > 10
    assert "aten::mm" in capsys.readouterr().out
    assert main(["bench", "layers", "--config", "tiny", "--backends", "torch", "--rep-ms", "2", "--device", "cpu",
                 "--out", str(tmp_path)]) == 0
    parts = {r["part"] for r in _rows(tmp_path / "layers.csv") if r.get("fwd_ms")}
    assert parts == {"attention", "mlp", "block"}
