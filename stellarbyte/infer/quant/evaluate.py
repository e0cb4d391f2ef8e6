"""How much a quantized model lost: perplexity on a token stream and greedy agreement with the float model.

perplexity = exp(mean over predicted tokens of -log p(x_t | x_<t)), computed on consecutive, non-overlapping
windows of `seq_len` tokens (each window predicts its last seq_len - 1 tokens; the first token of a window has
no context and is not scored) -- the same numbers for every mode, so the deltas compare like with like.
"""

from __future__ import annotations

import math

import torch
from torch import nn


@torch.no_grad()
def perplexity(model: nn.Module, token_ids: torch.Tensor | list[int], seq_len: int, batch_size: int = 8) -> float:
    """Perplexity of `model` on a 1-D token stream, in windows of seq_len (>= 2) tokens."""
    ids = torch.as_tensor(token_ids, dtype=torch.long).flatten()
    if seq_len < 2:
        raise ValueError(f"seq_len={seq_len} must be at least 2 (a window predicts its tokens after the first)")
    windows = ids.numel() // seq_len
    if windows == 0:
        raise ValueError(f"the text has {ids.numel()} tokens, fewer than one window of {seq_len}; give a longer "
                         f"text or a smaller seq_len")
    chunks = ids[: windows * seq_len].view(windows, seq_len)  # (W, L)
    device = next(model.parameters()).device
    total_nll, total_tokens = 0.0, 0
    for start in range(0, windows, batch_size):
        batch = chunks[start:start + batch_size].to(device)  # (B, L)
        logits = model(batch).logits.float()  # (B, L, V)
        nll = nn.functional.cross_entropy(logits[:, :-1].reshape(-1, logits.shape[-1]), batch[:, 1:].reshape(-1),
                                          reduction="sum")
        total_nll += float(nll)
        total_tokens += batch[:, 1:].numel()
    return math.exp(total_nll / total_tokens)


def token_agreement(a: torch.Tensor, b: torch.Tensor) -> float:
    """Share of positions where two generated token sequences (same shape) agree."""
    if a.shape != b.shape:
        raise ValueError(f"cannot compare generations of shapes {tuple(a.shape)} and {tuple(b.shape)}")
    return float((a == b).float().mean())
