"""`stellarbyte bench train` on the CPU (--preset tiny): the rows run the same step on the same batch and
weights (equal first-step losses, ours and transformers'), MFU uses model_flops_per_token for every row, the
CSV and the profiler summary are written, and bad arguments fail with a clear ValueError."""

from __future__ import annotations

import argparse
import csv

import pytest
import torch

from stellarbyte.bench import train
from stellarbyte.bench._configs import get_config
from stellarbyte.model.analysis import model_flops_per_token


def _args(tmp_path, *extra: str) -> argparse.Namespace:
    parser = argparse.ArgumentParser()
    train.add_arguments(parser)
    return parser.parse_args(["--device", "cpu", "--out", str(tmp_path), *extra])


@pytest.mark.slow
def test_tiny_preset_rows_agree_and_csv(tmp_path, capsys):
    pytest.importorskip("transformers")
    args = _args(tmp_path, "--preset", "tiny", "--rows", "ours-eager,ours-compile,hf-eager", "--steps", "1",
                 "--warmup", "1", "--compile-backend", "aot_eager", "--peak-tflops", "0.5", "--profile",
                 "--profile-rows", "ours-eager")
    assert train.run(args) == 0
    with open(tmp_path / "train.csv") as f:
        rows = list(csv.DictReader(f))
    assert [r["row"] for r in rows] == ["ours-eager", "ours-compile", "hf-eager"]
    assert all(not r.get("error") for r in rows)
    losses = [float(r["loss_step0"]) for r in rows]
    # same weights, same batch, fp32 on the CPU: ours eager, ours compiled and transformers' Llama agree
    assert max(losses) - min(losses) < 1e-4
    cfg = get_config("tiny")
    fpt = model_flops_per_token(train.byte_config(cfg), cfg.seq)
    for r in rows:
        tps = float(r["tokens_per_s"])
        assert tps == pytest.approx(2 * cfg.seq / (float(r["step_ms"]) / 1e3), rel=1e-6)
        assert float(r["tflops"]) == pytest.approx(fpt * tps / 1e12, rel=1e-6)
        assert float(r["mfu_measured"]) == pytest.approx(float(r["tflops"]) / 0.5, rel=1e-6)
        assert float(r["mfu_989"]) == pytest.approx(float(r["tflops"]) / 989, rel=1e-6)
    summary = (tmp_path / "profile_tiny_ours-eager.txt").read_text()
    assert "share by category" in summary and "top 15 kernels" in summary
    assert "ours-compile" in capsys.readouterr().out


def test_flops_per_token_is_palm_formula_for_llama_1b():
    """6 N + 12 L H Q T with N = the block matmuls plus the LM head (not the input embedding)."""
    cfg = get_config("llama-1b")
    h, f, layers, v, t, kv = 2048, 8192, 16, 128256, 2048, 8 * 64
    n = layers * (2 * h * h + 2 * h * kv + 3 * h * f) + v * h
    assert train.flops_per_token(cfg) == pytest.approx(6 * n + 12 * layers * h * t)


def test_categories_of_kernel_names():
    assert train.categorise("sm90_xmma_gemm_bf16bf16_bf16f32_f32_tn_n_tilesize128x256x64") == "matmul"
    assert train.categorise("nvjet_tst_128x256_64x4_1x2_h_bz_coopB_TNN") == "matmul"
    assert train.categorise("void pytorch_flash::flash_bwd_dq_dk_dv_loop_seqk_parallel_kernel<...>") == "attention"
    assert train.categorise("cudnn_generated_fort_native_sdpa_sm90_flash_fprop_wgmma_f16") == "attention"
    assert train.categorise("void at::native::(anonymous namespace)::multi_tensor_apply_kernel<FusedAdamW>") == \
        "optimizer"
    assert train.categorise("_ce_kernel") == "loss"
    assert train.categorise("triton_poi_fused__to_copy_add_mean_mul_pow_rsqrt_0") == "elementwise/norm/other"
    assert train.categorise("void at::native::elementwise_kernel<copy_kernel>") == "copy/cast"
    assert train.categorise("triton_red_fused_add_mean_mul_pow_rsqrt_1") == "elementwise/norm/other"


@pytest.mark.parametrize("extra, match", [
    (["--rows", "ours-eagre"], "unknown row"),
    (["--shapes", "llama-1b"], "config=batch"),
    (["--shapes", "nope=2"], "unknown config"),
    (["--steps", "0"], "must be >= 1"),
])
def test_bad_arguments(tmp_path, extra, match):
    with pytest.raises(ValueError, match=match):
        train.run(_args(tmp_path, "--peak-tflops", "1", *extra))


def test_kernel_times_skips_annotations_and_cpu_ops():
    """Ranges such as Optimizer.step#AdamW.step cover kernels already listed: counting them would double the
    optimizer's share (it did in the first H100 profile)."""
    from types import SimpleNamespace

    cuda, cpu = torch.autograd.DeviceType.CUDA, torch.autograd.DeviceType.CPU

    def evt(key, device_type, ms, annotation=False):
        return SimpleNamespace(key=key, device_type=device_type, self_device_time_total=ms * 1e3,
                               self_cpu_time_total=0.0, count=1, is_user_annotation=annotation)

    events = [evt("multi_tensor_apply_kernel<FusedAdamW>", cuda, 16.6),
              evt("Optimizer.step#AdamW.step", cuda, 16.7, annotation=True),
              evt("nvjet_sm90_tst_256x128", cuda, 40.0), evt("aten::mm", cpu, 40.0)]
    prof = SimpleNamespace(key_averages=lambda: events)
    got = train.kernel_times(prof, cuda=True)
    assert [name for name, _, _ in got] == ["nvjet_sm90_tst_256x128", "multi_tensor_apply_kernel<FusedAdamW>"]
    text = train.summarise(got, "t")
    assert "56.6 ms of kernel time" in text and "optimizer" in text and "29.3%" in text


def test_triton_rows_are_skipped_on_cpu_without_interpreter(tmp_path, monkeypatch):
    monkeypatch.delenv("TRITON_INTERPRET", raising=False)
    args = _args(tmp_path, "--preset", "tiny", "--rows", "ours-compile-flce,ours-compile-triton", "--peak-tflops", "1")
    assert train.run(args) == 0
    with open(tmp_path / "train.csv") as f:
        rows = list(csv.DictReader(f))
    assert [r["error"] for r in rows] == ["skipped: Triton kernels need CUDA (or TRITON_INTERPRET=1 on a CPU)"] * 2
