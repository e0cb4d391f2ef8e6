#!/usr/bin/env bash
# One device-machine call: tests/quant on CUDA (the real Triton kernel), then `bench quant` (quality of the
# carried quickstart model in .quant_assets/, linear kernels and whole-model decode of the Qwen3-0.6B shape).
# Outputs under $OUT: env.txt, pytest.txt, bench.log, quant_gpu.csv.
set -o pipefail
OUT=${OUT:-runs/gpu}
mkdir -p "$OUT"
export PYTHONPATH="$PWD:${PYTHONPATH:-}" PYTHONUNBUFFERED=1
{
  nvidia-smi --query-gpu=name,driver_version,clocks.sm,memory.total,memory.used --format=csv
  python3 -c "import torch, triton; print('torch', torch.__version__, 'triton', triton.__version__)"
} > "$OUT/env.txt" 2>&1
cat "$OUT/env.txt"
timeout "${PYTEST_S:-120}" python3 -m pytest tests/quant/test_quant_linear.py -q -p no:cacheprovider \
  -k "triton or tuned or peer or tinygemm" > "$OUT/pytest.txt" 2>&1
grep -E "FAILED|ERROR|passed|failed" "$OUT/pytest.txt" | tail -12
ASSETS=.quant_assets
MODEL_ARGS=()
[[ -d $ASSETS/model ]] && MODEL_ARGS=(--model $ASSETS/model --tokenizer $ASSETS/tokenizer --text $ASSETS/val.txt)
timeout "${BENCH_S:-280}" python3 -c "
import argparse, sys
from stellarbyte.bench import quant
p = argparse.ArgumentParser(); quant.add_arguments(p)
sys.exit(quant.run(p.parse_args(sys.argv[1:])))" "${MODEL_ARGS[@]}" --device cuda --skip-cpu \
  --csv "$OUT/quant_gpu.csv" 2>&1 | tee "$OUT/bench.log" | grep -v Warning
