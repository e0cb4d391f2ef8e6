#!/usr/bin/env bash
# One device-machine call: kernel correctness on CUDA, then benchmark tables. Outputs go under $OUT (<= 8 files).
#   stage "check+kernels": pytest tests/kernels on the GPU, then `bench kernels --preset issue`
#   stage "final": the rest of the tests, re-timed kernels ($OPS), layers, model, roofline, profile
#   stage "layers+model":  `bench layers`, `bench model`, `bench roofline --measure`, `bench profile`
# Liger-Kernel travels as a wheel in .whl/ (git-ignored) and is installed into /tmp/site.
set -o pipefail
STAGE=${1:-check+kernels}
OUT=${OUT:-runs/gpu}
mkdir -p "$OUT"
if ls .whl/*.whl >/dev/null 2>&1; then
  python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl \
    && export PYTHONPATH=/tmp/site
fi
export PYTHONPATH="$PWD:${PYTHONPATH:-}" PYTHONUNBUFFERED=1
{
  nvidia-smi --query-gpu=name,driver_version,clocks.sm,clocks.max.sm,memory.total --format=csv
  python3 -c "import torch, triton; print('torch', torch.__version__, 'triton', triton.__version__)"
  python3 -c "import liger_kernel; print('liger_kernel ok')" 2>&1 | tail -1
} > "$OUT/env.txt" 2>&1
if [[ "$STAGE" == "check+kernels" ]]; then
  timeout "${PYTEST_S:-230}" python3 -m pytest tests/kernels -v -p no:cacheprovider \
    --ignore=tests/kernels/test_kernel_bench_cli.py > "$OUT/pytest.txt" 2>&1
  timeout "${BENCH_S:-330}" python3 -m stellarbyte.cli bench kernels --preset issue --rep-ms 50 --out "$OUT" \
    ${OPS:+--ops $OPS} 2>&1 | tee "$OUT/kernels.log" | grep -v "^  [a-z_]* .* ms" | tail -80
  grep -c PASSED "$OUT/pytest.txt"; grep -E "FAILED|ERROR|passed|failed" "$OUT/pytest.txt" | tail -12
elif [[ "$STAGE" == "final" ]]; then
  # the rest of the GPU test set, re-timed kernels, layers, model, roofline, profile; one log, <= 8 files back
  LOG="$OUT/final.log"; cat "$OUT/env.txt" > "$LOG"; rm "$OUT/env.txt"
  timeout "${PYTEST_S:-150}" python3 -m pytest tests/kernels -v -p no:cacheprovider \
    --ignore=tests/kernels/test_kernel_bench_cli.py --ignore=tests/kernels/test_kernel_matmul_attention.py \
    --ignore=tests/kernels/test_kernel_gpu_large.py --ignore=tests/kernels/test_kernel_convergence.py \
    > "$OUT/pytest.txt" 2>&1
  { grep -c PASSED "$OUT/pytest.txt"; grep -E "FAILED|ERROR|passed|failed" "$OUT/pytest.txt" | tail -12; } >> "$LOG"
  timeout "${BENCH_S:-170}" python3 -m stellarbyte.cli bench kernels --preset issue --rep-ms 50 --out "$OUT" \
    ${OPS:+--ops $OPS} >> "$LOG" 2>&1
  timeout 100 python3 -m stellarbyte.cli bench layers --config llama-8b --backends torch,triton --rep-ms 50 \
    --out "$OUT" >> "$LOG" 2>&1
  timeout 120 python3 -m stellarbyte.cli bench model --config llama-1b --steps 5 --backends "${MODEL_BACKENDS:-torch,triton}" \
    --out "$OUT" >> "$LOG" 2>&1
  timeout 40 python3 -m stellarbyte.cli bench roofline --measure --from-csv "$OUT/kernels.csv" --out /tmp/roof \
    >> "$LOG" 2>&1 && cp /tmp/roof/roofline.png /tmp/roof/roofline.csv "$OUT/"
  timeout 60 python3 -m stellarbyte.cli bench profile --config llama-1b --batch 2 --backend triton --out /tmp/prof \
    >> "$LOG" 2>&1
  grep -v "^  [a-z_]* .* ms" "$LOG" | tail -120
else
  timeout 150 python3 -m stellarbyte.cli bench layers --config llama-8b --rep-ms 50 --out "$OUT" 2>&1 | tail -14
  timeout 150 python3 -m stellarbyte.cli bench model --config llama-1b --steps 5 --out "$OUT" 2>&1 | tail -8
  timeout 60 python3 -m stellarbyte.cli bench roofline --measure --from-csv "${KERNELS_CSV:-$OUT/kernels.csv}" \
    --out "$OUT" 2>&1 | tail -24
  timeout 90 python3 -m stellarbyte.cli bench profile --config llama-1b --batch 2 --out "$OUT" 2>&1 | tail -18
fi
