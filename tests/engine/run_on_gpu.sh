#!/usr/bin/env bash
# One device-machine call for the engine's fast path. Outputs go under $OUT (<= 8 files).
#   stage "check":  GPU tests of the engine (exactness, kernels vs reference, compiled decode, in-graph sampler),
#                   then the benchmark in the time left (TOTAL_S, default 400 s)
#   stage "bench":  the benchmark alone, with transformers, CSV into $OUT
set -o pipefail
STAGE=${1:-check}
OUT=${OUT:-runs/gpu}
TOTAL_S=${TOTAL_S:-400}
mkdir -p "$OUT"
export PYTHONPATH="$PWD:${PYTHONPATH:-}" PYTHONUNBUFFERED=1
began=$SECONDS
nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv > "$OUT/env.txt" 2>&1
python3 -c "import torch, triton, transformers; print(torch.__version__, triton.__version__, transformers.__version__)" \
  >> "$OUT/env.txt" 2>&1
if [[ "$STAGE" == "check" ]]; then
  timeout "${PYTEST_S:-140}" python3 -m pytest tests/engine/test_engine_gpu.py tests/engine/test_sampler_fast_path.py \
    tests/engine/test_paged_attention_kernel.py tests/engine/test_compiled_decode.py -q -p no:cacheprovider \
    ${PYTEST_K:+-k "$PYTEST_K"} > "$OUT/pytest.txt" 2>&1
  tail -25 "$OUT/pytest.txt"
fi
left=$(( TOTAL_S - (SECONDS - began) ))
echo "bench gets ${left}s"
timeout "${BENCH_S:-$left}" python3 -m stellarbyte.cli bench engine --preset qwen3-0.6b --out "$OUT" ${BENCH_ARGS} \
  2>&1 | grep -v "Loading weights" | tee "$OUT/bench.log" | tail -70
