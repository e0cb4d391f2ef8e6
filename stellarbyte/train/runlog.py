"""Run logging: a tqdm progress bar (loss, lr, tokens/s, MFU, ETA), <run_dir>/train.log, metrics.jsonl and the
metric backends of stellarbyte.train.backends (TensorBoard by default).

The text log and the JSONL file are appended to (a resumed run continues the same files) and flushed every line,
so a killed run keeps everything it logged.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

from tqdm.auto import tqdm


class RunLog:
    def __init__(self, run_dir: Path, total: int, initial: int = 0, progress: bool = True,
                 backends: list | None = None) -> None:
        # held open for the whole run (closed in close()), so not a `with` block
        self.text_file = open(run_dir / "train.log", "a")  # noqa: SIM115
        self.jsonl = open(run_dir / "metrics.jsonl", "a")  # noqa: SIM115
        self.bar = tqdm(total=total, initial=initial, unit="step", dynamic_ncols=True, disable=not progress)
        self.backends = backends or []  # TensorBoard / wandb / swanlab (stellarbyte.train.backends)

    def text(self, line: str) -> None:
        stamp = time.strftime("%Y-%m-%d %H:%M:%S")
        self.text_file.write(f"{stamp} {line}\n")
        self.text_file.flush()
        if not self.bar.disable:
            self.bar.write(line)

    def _record(self, record: dict) -> None:
        self.jsonl.write(json.dumps(record) + "\n")
        self.jsonl.flush()
        step = record["step"]
        for backend in self.backends:
            backend.log(step, {k: v for k, v in record.items() if k != "step"})

    def step(self, step: int, m: dict, every: int) -> None:
        self.bar.update(1)
        mfu = f"{100 * m['mfu']:.1f}%" if m.get("mfu") is not None else "n/a"
        self.bar.set_postfix(loss=f"{m['loss']:.4f}", lr=f"{m['lr']:.2e}", tok_s=f"{m['tokens_per_s']:.0f}", mfu=mfu,
                             refresh=False)
        if step % every == 0:
            self._record({"step": step, **{k: v for k, v in m.items()}})
            self.text_file.write(f"{time.strftime('%Y-%m-%d %H:%M:%S')} step {step} loss {m['loss']:.4f} "
                                 f"lr {m['lr']:.3e} grad_norm {m['grad_norm']:.3f} tok/s {m['tokens_per_s']:.0f} "
                                 f"mfu {mfu}\n")
            self.text_file.flush()

    def eval(self, step: int, v: dict) -> None:
        self._record({"step": step, **v})
        self.text(f"step {step}: val_loss {v['val_loss']:.4f} val_ppl {v['val_ppl']:.2f}")

    def close(self) -> None:
        for backend in self.backends:
            backend.close()
        self.bar.close()
        self.text_file.close()
        self.jsonl.close()
