#!/usr/bin/env bash
# One device call (<= 360 s) for the trainer's fast path (docs/training_performance.md, "The real trainer"):
# the GPU trainer tests, `bench train` at llama-1b (ours-compile-flce = the bench loop, ours-trainer = the real
# Trainer.train_step, hf-compile), `stellarbyte pretrain` at the 124M shape (compile on, synthetic packed data),
# then gpt2-124m-like rows in the time left. Outputs under $OUT.
set -o pipefail
OUT=${OUT:-runs/h100_fast}
mkdir -p "$OUT"
export PYTHONPATH="$PWD:${PYTHONPATH:-}" PYTHONUNBUFFERED=1
LOG="$OUT/run.log"
T0=$SECONDS
python3 -c "import torch, transformers; print(torch.cuda.get_device_name(), 'torch', torch.__version__, \
'transformers', transformers.__version__)" > "$LOG" 2>&1
timeout 60 python3 -m pytest tests/train/test_trainer_gpu.py -q -p no:cacheprovider > "$OUT/pytest.txt" 2>&1
grep -E "passed|failed|FAILED|ERROR" "$OUT/pytest.txt" | tail -8 | tee -a "$LOG"
echo "tests done at $((SECONDS - T0)) s" | tee -a "$LOG"
timeout 175 python3 -m stellarbyte.bench.train --shapes llama-1b=8 --rows ours-compile-flce,ours-trainer,hf-compile \
  --steps 8 --warmup 2 --budget 110 --out "$OUT/b1" 2>&1 | grep -v "^USDT" | tee -a "$LOG"
echo "1B bench done at $((SECONDS - T0)) s" | tee -a "$LOG"
python3 -c "import sys; sys.path.insert(0, 'tests/train'); from pathlib import Path; from conftest import write_packed; \
write_packed(Path('/tmp/sb_data'), n_train=1_100_000, n_val=20_000, vocab=50304)"
timeout 70 python3 -m stellarbyte.cli pretrain --config docs/bench/train/pretrain_gpt2_shape.yaml \
  --data-dir /tmp/sb_data 2>&1 | grep -v "^USDT" | tail -8 | tee -a "$LOG"
grep -h "tok/s" /tmp/sb_pretrain/train.log | tail -8 >> "$LOG"
echo "pretrain done at $((SECONDS - T0)) s" | tee -a "$LOG"
LEFT=$(( ${TOTAL_S:-345} - (SECONDS - T0) ))
if (( LEFT > 40 )); then
  timeout "$LEFT" python3 -m stellarbyte.bench.train --shapes gpt2-124m-like=32 \
    --rows ours-trainer,ours-compile-flce,hf-compile --steps 8 --warmup 2 --budget $((LEFT - 30)) --out "$OUT/b2" \
    2>&1 | grep -v "^USDT" | tee -a "$LOG"
fi
echo "all done at $((SECONDS - T0)) s" | tee -a "$LOG"
