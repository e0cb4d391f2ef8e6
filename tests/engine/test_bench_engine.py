"""`stellarbyte bench engine --preset tiny`: the CI-sized run prints its tables and writes the CSV rows it promises
(no timing is asserted: benchmarks are not timed tests)."""

import csv

import pytest

from stellarbyte.bench import engine as bench_engine


@pytest.mark.slow
def test_tiny_preset_writes_throughput_and_latency_rows(tmp_path, capsys):
    args = ["--preset", "tiny", "--device", "cpu", "--num-requests", "4", "--min-len", "4", "--max-len", "10",
            "--hf-requests", "2", "--hf-batch-size", "2", "--latency-prompt", "4", "--latency-tokens", "2",
            "--out", str(tmp_path)]
    assert bench_engine.main(args) == 0
    with open(tmp_path / "engine.csv") as f:
        rows = list(csv.DictReader(f))
    kinds = [(r["kind"], r["system"].split(" (")[0]) for r in rows]
    assert ("throughput", "stellarbyte engine") in kinds and ("throughput", "transformers Qwen3ForCausalLM.generate")\
        in kinds
    _, outputs = bench_engine._requests(4, 4, 10, 1000, 0)
    engine_row = next(r for r in rows if r["system"].startswith("stellarbyte engine") and r["kind"] == "throughput")
    assert int(engine_row["output_tokens"]) == sum(outputs) and float(engine_row["output_tok_s"]) > 0
    assert sum(r["kind"] == "batch1_decode" for r in rows) == 3  # ours, transformers, the floor row (NaN on CPU)
    assert "engine benchmark: preset tiny" in capsys.readouterr().out


def test_bad_lengths_are_refused():
    with pytest.raises(ValueError, match="min-len"):
        bench_engine.main(["--preset", "tiny", "--device", "cpu", "--min-len", "9", "--max-len", "3"])
    with pytest.raises(ValueError, match="window is 256"):
        bench_engine.main(["--preset", "tiny", "--device", "cpu", "--max-len", "200"])


def test_engine_options_parse_and_refuse_unknown_fields():
    options = bench_engine.parse_engine_options(["compile_decode=false", "compile_max_batch_size=8",
                                                 "overlap_steps=none", "gpu_memory_utilization=0.5"])
    assert options == dict(compile_decode=False, compile_max_batch_size=8, overlap_steps=None,
                           gpu_memory_utilization=0.5)
    with pytest.raises(ValueError, match="KEY=VALUE"):
        bench_engine.parse_engine_options(["compile"])
    with pytest.raises(ValueError, match="compile_decode"):
        bench_engine.parse_engine_options(["compile_decoder=true"])
