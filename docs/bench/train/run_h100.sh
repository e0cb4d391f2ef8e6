#!/usr/bin/env bash
# One device call (<= 10 min) for docs/training_performance.md, in order of need: the GPU trainer and custom-op
# tests, `bench train` at llama-1b (+ micro-benchmarks), `stellarbyte pretrain` with compile on synthetic packed
# data, then `bench train` at gpt2-124m-like in the time left. Outputs under $OUT (<= 8 files come back).
#   ROWS_1B / ROWS_124M: rows per shape; BUDGET_1B: seconds of 1B rows before the rest are skipped;
#   TOTAL_S: the whole script's target; SKIP_TESTS / SKIP_PRETRAIN: set to skip those parts
set -o pipefail
OUT=${OUT:-runs/h100}
mkdir -p "$OUT"
export PYTHONPATH="$PWD:${PYTHONPATH:-}" PYTHONUNBUFFERED=1
LOG="$OUT/run.log"
T0=$SECONDS
{
  nvidia-smi --query-gpu=name,driver_version,clocks.sm,clocks.max.sm,memory.total --format=csv
  python3 -c "import torch, triton, transformers; print('torch', torch.__version__, 'triton', triton.__version__, \
'transformers', transformers.__version__)"
} > "$LOG" 2>&1
if [[ -z "${SKIP_TESTS:-}" ]]; then
  timeout "${PYTEST_S:-100}" python3 -m pytest tests/train/test_trainer_gpu.py tests/kernels/test_train_bench_custom_ops.py \
    -q -p no:cacheprovider > "$OUT/pytest.txt" 2>&1
  grep -E "passed|failed|FAILED|ERROR" "$OUT/pytest.txt" | tail -12 | tee -a "$LOG"
fi
ROWS_1B=${ROWS_1B:-ours-compile-flce,hf-compile,ours-compile-triton,ours-eager,hf-eager,ours-compile}
ROWS_124M=${ROWS_124M:-ours-compile-flce,hf-compile,ours-compile-triton,ours-compile-logits,ours-eager,hf-eager,ours-compile}
BUDGET_1B=${BUDGET_1B:-190}
timeout $((BUDGET_1B + 110)) python3 -m stellarbyte.bench.train --shapes llama-1b=${BATCH_1B:-8} --rows "$ROWS_1B" \
  --budget "$BUDGET_1B" --profile --micro ${EXTRA_1B:-} --out "$OUT/b1" 2>&1 | grep -v "^USDT" | tee -a "$LOG"
echo "1B bench done at $((SECONDS - T0)) s" | tee -a "$LOG"
if [[ -z "${SKIP_PRETRAIN:-}" ]]; then
  python3 -c "import sys; sys.path.insert(0, 'tests/train'); from pathlib import Path; from conftest import write_packed; \
write_packed(Path('/tmp/sb_data'), n_train=1_100_000, n_val=20_000, vocab=50304)"
  timeout "${PRETRAIN_S:-110}" python3 -m stellarbyte.cli pretrain --config docs/bench/train/pretrain_gpt2_shape.yaml \
    --data-dir /tmp/sb_data 2>&1 | grep -v "^USDT" | tail -12 | tee -a "$LOG"
  echo "pretrain done at $((SECONDS - T0)) s" | tee -a "$LOG"
fi
LEFT=$(( ${TOTAL_S:-570} - (SECONDS - T0) ))
if (( LEFT > 60 )); then
  timeout "$LEFT" python3 -m stellarbyte.bench.train --shapes gpt2-124m-like=${BATCH_124M:-32} --rows "$ROWS_124M" \
    --budget $((LEFT - 50)) --profile ${EXTRA_124M:-} --out "$OUT/b2" 2>&1 | grep -v "^USDT" | tee -a "$LOG"
fi
cat "$OUT"/b*/profile_*.txt > "$OUT/profiles.txt" 2>/dev/null && rm -f "$OUT"/b*/profile_*.txt
echo "all done at $((SECONDS - T0)) s" | tee -a "$LOG"
# back: run.log, pytest.txt, profiles.txt, b1/train.csv, b1/micro_llama-1b.csv, b2/train.csv
