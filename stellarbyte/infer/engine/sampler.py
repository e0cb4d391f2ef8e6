"""Per-request sampling of the next token from each row's logits, plus logprobs.

References: stellarbyte.infer.sampling (transformers' order: repetition penalty -> temperature -> top-k ->
top-p -> min-p -> multinomial); OpenAI's presence/frequency penalties; vLLM's logprobs (log-softmax of the
model's raw logits, i.e. before penalties and temperature).
Contract: row i is sampled with seqs[i].params and seqs[i].generator only, so a seeded request gives the
same tokens whatever else shares its batch -- and, for one prompt, the same tokens as
ByteModel.generate(do_sample=True, seed=s), which uses the same operations on a (1, V) row.
Shapes: logits (B, V) (any float dtype; float32 math) -> token ids list[int] (B,), logprob dicts {token id: logprob}.
On CUDA, batches whose rows are all greedy or plain temperature sampling (no seed, filters, penalties or logprobs)
go through one fused Triton pass (stellarbyte/kernels/ops/sampling.py, Gumbel-max): one device->host copy.
The filters run on all sampled rows at once (filter_rows: per-row top-k/top-p/min-p, the same operations as
filter_logits row for row); penalties and seeded draws loop over their rows.
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


def _fused_ok(seq: Sequence) -> bool:
    """Rows the fused GPU sampler serves: greedy, or temperature-only sampling without a seed; no logprobs."""
    p = seq.params
    if p.logprobs is not None or _has_penalty(seq):
        return False
    return p.greedy or (seq.generator is None and p.top_k <= 0 and p.top_p >= 1 and p.min_p <= 0)


def filter_rows(logits: torch.Tensor, top_k: torch.Tensor, top_p: torch.Tensor, min_p: torch.Tensor) -> torch.Tensor:
    """filter_logits with per-row settings: logits (B, V); top_k (B,) long (0 = off); top_p, min_p (B,) float.
    The same operations as stellarbyte.infer.sampling.filter_logits, row for row."""
    neg_inf = torch.finfo(logits.dtype).min
    vocab = logits.shape[-1]
    if bool((top_k > 0).any()):
        k = torch.where(top_k > 0, top_k.clamp(max=vocab), vocab)  # off -> keep all
        kth = torch.sort(logits, dim=-1, descending=True).values.gather(-1, (k - 1)[:, None])  # (B, 1)
        logits = logits.masked_fill(logits < kth, neg_inf)
    if bool((top_p < 1).any()):
        sorted_logits, order = torch.sort(logits, dim=-1, descending=False)
        cumulative = sorted_logits.softmax(-1).cumsum(-1)
        drop_sorted = (cumulative <= (1 - top_p)[:, None]) & (top_p < 1)[:, None]
        drop_sorted[..., -1:] = False
        logits = logits.masked_fill(drop_sorted.scatter(-1, order, drop_sorted), neg_inf)
    if bool((min_p > 0).any()):
        probs = logits.softmax(-1)
        threshold = min_p[:, None] * probs.max(-1, keepdim=True).values
        logits = logits.masked_fill(probs < threshold, neg_inf)
    return logits


def _has_penalty(seq: Sequence) -> bool:
    p = seq.params
    return p.repetition_penalty != 1.0 or bool(p.presence_penalty) or bool(p.frequency_penalty)


class SampleResult:
    """Sampled tokens that may still be on the device: get() -> (token ids, logprob dicts), syncing once."""

    def __init__(self, device_ids: torch.Tensor | None = None,
                 host: tuple[list[int], list[dict[int, float] | None]] | None = None) -> None:
        self.device_ids, self.host = device_ids, host

    def get(self) -> tuple[list[int], list[dict[int, float] | None]]:
        if self.host is None:
            ids = self.device_ids.tolist()  # the step's one device->host copy
            self.host = (ids, [None] * len(ids))
        return self.host


def sample_async(logits: torch.Tensor, seqs: list[Sequence], graph_ids: torch.Tensor | None = None) -> SampleResult:
    """sample() without waiting for the device where possible: the fused GPU path returns ids still on the GPU
    (the engine reads them one step later, after it has launched the next step); other paths sample at once.
    graph_ids: the same fused sampler's ids, already drawn inside a CUDA graph (one per row of `logits`); used when
    every row is one the fused sampler serves."""
    if graph_ids is not None and all(_fused_ok(s) for s in seqs):
        return SampleResult(device_ids=graph_ids)
    if logits.is_cuda and all(_fused_ok(s) for s in seqs):
        return SampleResult(device_ids=_fused_sample(logits, seqs))
    return SampleResult(host=sample(logits, seqs))


def _fused_sample(logits: torch.Tensor, seqs: list[Sequence]) -> torch.Tensor:
    from stellarbyte.kernels.ops.sampling import sample_rows

    inv_t = [0.0 if s.params.greedy else 1.0 / s.params.temperature for s in seqs]
    seed = int(torch.randint(0, 2**31 - 1, ()))  # from torch's CPU generator: torch.manual_seed fixes it
    return sample_rows(logits, torch.tensor(inv_t).to(logits.device, non_blocking=True), seed, any(inv_t))


def sample(logits: torch.Tensor, seqs: list[Sequence]) -> tuple[list[int], list[dict[int, float] | None]]:
    """Vectorised over rows; only penalties (which need each row's history) and seeded draws (each row's
    own generator) loop in Python. On a GPU the common batches (all greedy, or all unseeded sampling without
    penalties) cost one device->host copy: the sampled ids; which filters run is decided from the params on the
    host, never by reading the device."""
    if logits.is_cuda and all(_fused_ok(s) for s in seqs):  # GPU: one Triton pass, no float32 copy of the logits
        return _fused_sample(logits, seqs).tolist(), [None] * len(seqs)
    logits = logits.float()
    if all(_plain_greedy(s) for s in seqs):  # the common batch: one argmax for every row
        tokens = logits.argmax(-1).tolist()
    else:
        processed = logits
        penalised = [i for i, seq in enumerate(seqs) if _has_penalty(seq)]
        if penalised:
            processed = logits.clone()
            for i in penalised:
                processed[i] = penalize(logits[i], seqs[i])
        sampled = [i for i, seq in enumerate(seqs) if not seq.params.greedy]
        chosen = None if len(sampled) == len(seqs) else processed.argmax(-1)  # the greedy rows' tokens
        if sampled:
            dev = logits.device
            every = len(sampled) == len(seqs)
            rows = None if every else torch.tensor(sampled, device=dev)
            ps = [seqs[i].params for i in sampled]
            temperature = torch.tensor([p.temperature for p in ps], dtype=processed.dtype).to(dev, non_blocking=True)
            scaled = (processed if every else processed[rows]) / temperature[:, None]
            if any(p.top_k > 0 or p.top_p < 1 or p.min_p > 0 for p in ps):
                scaled = filter_rows(scaled, torch.tensor([p.top_k for p in ps], device=dev),
                                     torch.tensor([p.top_p for p in ps], dtype=processed.dtype, device=dev),
                                     torch.tensor([p.min_p for p in ps], dtype=processed.dtype, device=dev))
            seeded = [j for j, i in enumerate(sampled) if seqs[i].generator is not None]
            if not seeded:  # Gumbel-max: argmax(l / T - log E), E ~ Exp(1), is a draw from softmax(l / T)
                noise = torch.empty_like(scaled).exponential_().log_()
                draws = (scaled - noise).argmax(-1)
                if every:
                    chosen = draws
                else:
                    chosen[rows] = draws
            else:
                if chosen is None:
                    chosen = torch.empty(len(seqs), dtype=torch.long, device=dev)
                probs = scaled.softmax(-1)  # (R, V)
                free = [j for j in range(len(sampled)) if seqs[sampled[j]].generator is None]
                if free:
                    idx = torch.tensor(free, device=dev)
                    chosen[(torch.arange(len(seqs), device=dev) if every else rows)[idx]] = \
                        torch.multinomial(probs[idx], 1).squeeze(-1)
                for j in seeded:  # a seeded request draws from its own generator, as generate(seed=...) does
                    generator = seqs[sampled[j]].generator
                    chosen[sampled[j]] = torch.multinomial(probs[j:j + 1], 1, generator=generator)[0, 0]
        tokens = chosen.tolist()
    logprobs = []
    for row, seq, token in zip(logits, seqs, tokens):
        k = seq.params.logprobs
        logprobs.append(None if k is None else logprobs_row(row, token, k))
    return tokens, logprobs
