"""Per-request sampling of the next token from each row's logits, plus logprobs.

References: stellarbyte.infer.sampling (transformers' order: repetition penalty -> temperature -> top-k ->
top-p -> min-p -> multinomial); OpenAI's presence/frequency penalties; vLLM's logprobs (log-softmax of the
model's raw logits, i.e. before penalties and temperature).
Contract: row i is sampled with seqs[i].params and seqs[i].generator only, so a seeded request gives the
same tokens whatever else shares its batch -- and, for one prompt, the same tokens as
ByteModel.generate(do_sample=True, seed=s), which uses the same operations on a (1, V) row.
Shapes: logits (B, V) float32 -> token ids list[int] (B,), logprob dicts {token id: logprob}.
"""

from __future__ import annotations

import torch

from stellarbyte.infer.engine.sequence import Sequence
from stellarbyte.infer.sampling import apply_repetition_penalty, filter_logits


def penalize(logits: torch.Tensor, seq: Sequence) -> torch.Tensor:
    """logits (V,) -> penalised logits (V,)."""
    p = seq.params
    vocab = logits.shape[-1]
    if p.repetition_penalty != 1.0:  # over prompt + output, as transformers
        seen = torch.zeros(vocab, dtype=torch.bool, device=logits.device)
        seen[torch.tensor(seq.token_ids, device=logits.device)] = True
        logits = apply_repetition_penalty(logits, seen, p.repetition_penalty)
    if (p.presence_penalty or p.frequency_penalty) and seq.num_output_tokens:  # over output only, as OpenAI
        counts = torch.bincount(torch.tensor(seq.output_token_ids, device=logits.device), minlength=vocab)
        logits = logits - p.presence_penalty * (counts > 0).to(logits.dtype) - p.frequency_penalty * counts
    return logits


def sample_row(logits: torch.Tensor, seq: Sequence) -> int:
    p = seq.params
    logits = penalize(logits, seq)
    if p.greedy:
        return int(logits.argmax(-1))
    logits = filter_logits(logits[None] / p.temperature, p.top_k, p.top_p, p.min_p)  # (1, V)
    return int(torch.multinomial(logits.softmax(-1), 1, generator=seq.generator))


def logprobs_row(logits: torch.Tensor, token: int, k: int) -> dict[int, float]:
    """The chosen token's logprob and the top-k, from the raw distribution."""
    logprobs = torch.log_softmax(logits, dim=-1)
    out = {}
    if k:
        top = torch.topk(logprobs, min(k, logprobs.shape[-1]))
        out = {int(i): float(v) for i, v in zip(top.indices, top.values)}
    out[token] = float(logprobs[token])
    return out


def _plain_greedy(seq: Sequence) -> bool:
    p = seq.params
    return p.greedy and p.repetition_penalty == 1.0 and not p.presence_penalty and not p.frequency_penalty


def sample(logits: torch.Tensor, seqs: list[Sequence]) -> tuple[list[int], list[dict[int, float] | None]]:
    if all(_plain_greedy(s) for s in seqs):  # the common batch: one argmax for every row
        tokens = logits.argmax(-1).tolist()
    else:
        tokens = [sample_row(row, seq) for row, seq in zip(logits, seqs)]
    logprobs = []
    for row, seq, token in zip(logits, seqs, tokens):
        k = seq.params.logprobs
        logprobs.append(None if k is None else logprobs_row(row, token, k))
    return tokens, logprobs
