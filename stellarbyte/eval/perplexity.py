"""Perplexity of a causal LM on a token stream: token-weighted mean NLL over windows, then exp.

Definitions (N tokens x_0 .. x_{N-1}, context T = seq_len, stride s):

    NLL  = (1 / M) * sum over scored tokens j of  -log p(x_j | x_{b_j} .. x_{j-1})
    PPL  = exp(NLL)

Every token x_1 .. x_{N-1} is scored exactly once (x_0 has no context), so M = N - 1, and the mean is over tokens,
not over windows: a short last window weighs by its token count, not as much as a full one.

- Non-overlapping (stride = T, the default): window k covers tokens [kT, kT + T + 1); the model reads its first T
  tokens and predicts the next token at each position, so all T of them are scored. The last window is shorter
  (tokens up to N). This is what the trainer's validation loss computes (stellarbyte.data.loader: x = w[:-1],
  y = w[1:]), except that here the tail is scored too.
- Sliding (stride s < T, the method of the Hugging Face guide "Perplexity of fixed-length models"): windows start
  at 0, s, 2s, ...; each is up to T + 1 tokens long and scores only the tokens not scored by an earlier window,
  i.e. the targets with index in [max(prev_end, begin + 1), end). After the first window every scored token has at
  least T - s + 1 tokens of context, so the figure is lower (better) and closer to the model's true per-token
  likelihood, at about T / s times the compute. The loop stops at the first window that reaches the end.

Sources: a packed dataset directory (stellarbyte data pack; its validation split by default: doc EOS doc EOS ...),
or .txt / .jsonl files tokenized with the model's tokenizer into the same stream form (documents are separated by a
blank line in .txt and lose their outer newlines, one {"text": ...} object per line in .jsonl; EOS after each
document, as pack writes them).

Numerics: logits are upcast to float32 before log_softmax; dtype "bf16" casts the weights (inference style), "fp32"
keeps them in float32.

References: Hugging Face transformers docs, "Perplexity of fixed-length models" (the strided evaluation);
Jurafsky & Martin, Speech and Language Processing, ch. 3 (perplexity = exp of the per-token cross-entropy).
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

IGNORE_INDEX = -100
DTYPES = {"fp32": torch.float32, "bf16": torch.bfloat16}


@dataclass(slots=True)
class PerplexityConfig:
    seq_len: int = 256             # T: model input length per window
    stride: int | None = None      # None or == seq_len: non-overlapping windows; < seq_len: sliding windows
    batch_size: int = 8            # windows per forward pass
    max_tokens: int | None = None  # evaluate only the first max_tokens tokens of the stream
    dtype: str = "fp32"            # fp32 or bf16 (weights cast for evaluation)

    def __post_init__(self) -> None:
        if not isinstance(self.seq_len, int) or self.seq_len < 1:
            raise ValueError(f"perplexity: seq_len must be an int >= 1, got {self.seq_len!r}")
        if self.stride is not None and (not isinstance(self.stride, int) or not 1 <= self.stride <= self.seq_len):
            raise ValueError(f"perplexity: stride must be in [1, seq_len={self.seq_len}], got {self.stride!r} "
                             f"(leave it unset for non-overlapping windows)")
        if not isinstance(self.batch_size, int) or self.batch_size < 1:
            raise ValueError(f"perplexity: batch_size must be an int >= 1, got {self.batch_size!r}")
        if self.max_tokens is not None and (not isinstance(self.max_tokens, int) or self.max_tokens < 2):
            raise ValueError(f"perplexity: max_tokens must be >= 2 (one context token and one target), "
                             f"got {self.max_tokens!r}")
        if self.dtype not in DTYPES:
            raise ValueError(f"perplexity: dtype must be one of {', '.join(DTYPES)}, got {self.dtype!r}")

    @property
    def step(self) -> int:
        return self.stride or self.seq_len


@dataclass(slots=True)
class PerplexityResult:
    nll: float          # token-weighted mean negative log-likelihood (nats per token)
    perplexity: float   # exp(nll)
    tokens: int         # scored tokens (N - 1 for a stream of N tokens)
    windows: int        # forward windows
    seq_len: int
    stride: int
    dtype: str

    def to_dict(self) -> dict:
        return asdict(self)


@dataclass(frozen=True, slots=True)
class Window:
    begin: int        # first token of the model input
    end: int          # one past the last token of the window (the last target)
    first_scored: int  # targets with index in [first_scored, end) are scored

    @property
    def num_scored(self) -> int:
        return self.end - self.first_scored


def plan_windows(num_tokens: int, seq_len: int, stride: int | None = None) -> list[Window]:
    """The windows of the module docstring: each target index 1..N-1 lies in exactly one scored range."""
    if num_tokens < 2:
        raise ValueError(f"perplexity needs at least 2 tokens (one context, one target), got {num_tokens}")
    step = stride or seq_len
    windows, prev_end, begin = [], 1, 0
    while True:
        end = min(begin + seq_len + 1, num_tokens)
        first = max(prev_end, begin + 1)
        if end > first:
            windows.append(Window(begin, end, first))
        prev_end = end
        if end == num_tokens:
            return windows
        begin += step


def _window_batches(tokens: np.ndarray, windows: list[Window], batch_size: int
                    ) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
    """(input_ids (B, L), targets (B, L)) with targets aligned to inputs and IGNORE_INDEX where not scored.

    Windows of equal input length are batched together (all but possibly the last are seq_len long)."""
    groups: dict[int, list[Window]] = {}
    for w in windows:
        groups.setdefault(w.end - w.begin - 1, []).append(w)
    for group in groups.values():
        for i in range(0, len(group), batch_size):
            chunk = group[i:i + batch_size]
            inputs = np.stack([tokens[w.begin:w.end - 1] for w in chunk])  # (B, L)
            targets = np.stack([tokens[w.begin + 1:w.end] for w in chunk]).astype(np.int64)  # (B, L)
            for row, w in enumerate(chunk):
                # target at position p is token begin + 1 + p; unscored ones precede first_scored
                targets[row, :w.first_scored - w.begin - 1] = IGNORE_INDEX
            yield torch.from_numpy(inputs.astype(np.int64)), torch.from_numpy(targets)


@torch.no_grad()
def stream_perplexity(model: torch.nn.Module, tokens: np.ndarray | list[int] | torch.Tensor,
                      config: PerplexityConfig | None = None,
                      progress: Callable[[int], None] | None = None) -> PerplexityResult:
    """Perplexity of `model` on one token stream (see the module docstring for the windows)."""
    config = config or PerplexityConfig()
    tokens = np.asarray(tokens.cpu() if isinstance(tokens, torch.Tensor) else tokens, dtype=np.int64)
    if config.max_tokens is not None:
        tokens = tokens[:config.max_tokens]
    vocab = getattr(getattr(model, "config", None), "vocab_size", None)
    if vocab is not None and tokens.size and int(tokens.max()) >= vocab:
        raise ValueError(f"token id {int(tokens.max())} is outside the model's vocabulary ({vocab}); the data was "
                         f"tokenized with another tokenizer")
    context = getattr(getattr(model, "config", None), "context_length", None)
    if context is not None and config.seq_len > context:
        raise ValueError(f"seq_len {config.seq_len} exceeds the model's context window {context}; pass "
                         f"--seq-len {context} or less")
    windows = plan_windows(len(tokens), config.seq_len, config.stride)
    was_training = model.training
    dtype = DTYPES[config.dtype]
    param = next(model.parameters())
    original_dtype, device = param.dtype, param.device
    model.eval()
    if dtype != original_dtype:
        model.to(dtype)
    total, count = 0.0, 0
    try:
        for inputs, targets in _window_batches(tokens, windows, config.batch_size):
            logits = model(inputs.to(device)).logits.float()  # (B, L, V)
            nll = F.cross_entropy(logits.flatten(0, 1), targets.to(device).flatten(), ignore_index=IGNORE_INDEX,
                                  reduction="sum")
            total += float(nll)
            count += int((targets != IGNORE_INDEX).sum())
            if progress is not None:
                progress(inputs.shape[0])
    finally:
        if dtype != original_dtype:
            model.to(original_dtype)
        model.train(was_training)
    mean = total / count
    return PerplexityResult(nll=mean, perplexity=math.exp(min(mean, 80.0)), tokens=count, windows=len(windows),
                            seq_len=config.seq_len, stride=config.step, dtype=config.dtype)


# ---- sources -----------------------------------------------------------------------------------------------


def packed_stream(data_dir: str | os.PathLike, split: str = "validation") -> np.ndarray:
    """The whole token stream of one split of a packed dataset (doc EOS doc EOS ...)."""
    from stellarbyte.data.loader import PackedTokens

    if not Path(data_dir, "index.json").is_file():
        raise FileNotFoundError(f"{data_dir}: not a packed dataset (no index.json); build one with "
                                f"`stellarbyte data pack` or pass .txt/.jsonl files")
    packed = PackedTokens(data_dir, split)
    return packed.read(0, len(packed))


def read_documents(path: str | os.PathLike) -> list[str]:
    """Documents of a .txt (blank-line separated) or .jsonl ({"text": ...} per line) file."""
    p = Path(path)
    if not p.is_file():
        raise FileNotFoundError(f"{p}: no such file; pass a packed dataset directory or .txt/.jsonl files")
    if p.suffix == ".txt":
        # a document's own leading/trailing newlines (the file's last line break) are not part of its text
        return [d.strip("\n") for d in p.read_text(encoding="utf-8").split("\n\n") if d.strip()]
    if p.suffix == ".jsonl":
        docs = []
        with open(p, encoding="utf-8") as f:
            for n, line in enumerate(f, 1):
                if not line.strip():
                    continue
                try:
                    row = json.loads(line)
                except json.JSONDecodeError as err:
                    raise ValueError(f"{p}:{n}: invalid JSON ({err.msg}); one JSON object per line") from None
                if not isinstance(row, dict) or not isinstance(row.get("text"), str):
                    raise ValueError(f'{p}:{n}: expected an object with a "text" string field')
                docs.append(row["text"])
        return docs
    raise ValueError(f"{p}: unsupported file type {p.suffix or '(none)'}; use .txt, .jsonl or a packed directory")


def text_stream(paths: list[str | os.PathLike], tokenizer) -> np.ndarray:
    """Documents of the files, tokenized, each followed by EOS (the packed stream's form)."""
    docs = [d for p in paths for d in read_documents(p)]
    if not docs:
        raise ValueError(f"no documents in {', '.join(map(str, paths))}")
    eos = [tokenizer.eos_token_id] if tokenizer.eos_token_id is not None else []
    ids = [i for x in tokenizer.encode_batch(docs) for i in (*x, *eos)]
    return np.asarray(ids, dtype=np.int64)
