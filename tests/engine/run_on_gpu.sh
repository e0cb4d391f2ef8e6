#!/usr/bin/env bash
# One device-machine call for the engine's fast path. Outputs go under $OUT (<= 8 files).
#   stage "check":  GPU tests of the engine (exactness, kernels vs reference), then the benchmark with a profile
#   stage "bench":  the benchmark alone, with transformers, CSV into $OUT
set -o pipefail
STAGE=${1:-check}
OUT=${OUT:-runs/gpu}
mkdir -p "$OUT"
export PYTHONPATH="$PWD:${PYTHONPATH:-}" PYTHONUNBUFFERED=1
nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv > "$OUT/env.txt" 2>&1
python3 -c "import torch, triton, transformers; print(torch.__version__, triton.__version__, transformers.__version__)" \
  >> "$OUT/env.txt" 2>&1
if [[ "$STAGE" == "check" ]]; then
  timeout "${PYTEST_S:-200}" python3 -m pytest tests/engine/test_engine_gpu.py tests/engine/test_paged_attention_kernel.py \
    tests/engine/test_flat_runner.py -q -p no:cacheprovider -x ${PYTEST_K:+-k "$PYTEST_K"} > "$OUT/pytest.txt" 2>&1
  tail -25 "$OUT/pytest.txt"
fi
timeout "${BENCH_S:-330}" python3 -m stellarbyte.cli bench engine --preset qwen3-0.6b --out "$OUT" ${BENCH_ARGS} \
  2>&1 | grep -v "Loading weights" | tee "$OUT/bench.log" | tail -70
