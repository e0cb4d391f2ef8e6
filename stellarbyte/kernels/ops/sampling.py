"""Greedy and temperature sampling of many rows in one pass over the logits, in Triton (Gumbel-max).

References: Gumbel, 1954 / Maddison et al., 2014: argmax_i (l_i / T + g_i), g_i = -log(-log u_i), u_i ~ U(0, 1), is
a draw from softmax(l / T); vLLM's sampler draws the same way (with exponential noise) to avoid a sort or a CDF.
Contract: logits (B, V) in any float dtype, inv_temperature (B,) float32 or float64 (0 = greedy: the row's argmax,
first index on ties, as torch.argmax), seed an int or a (1,) int64 device tensor (read by the kernel: what a CUDA
graph that samples inside needs, since a host int would be frozen into the graph) -> token ids (B,) int64. The noise
comes from Philox (tl.rand) keyed by (seed, row * V + column), so a seed fixes every row's draw. Nothing is read on
the host.
Work split: programs own (row, chunk of CHUNK columns) and write the chunk's best (score, index); a second tiny pass
(torch) picks each row's best chunk. That keeps batch-1 sampling parallel over the 152k-entry vocabulary too.
"""

from __future__ import annotations

import torch
import triton
import triton.language as tl

from stellarbyte.kernels.ops._common import check_device, is_interpreted


@triton.jit(do_not_specialize=["seed"])  # a new seed every step must not recompile
def _chunk_argmax_kernel(logits_ptr, inv_t_ptr, best_val_ptr, best_idx_ptr, V, stride, seed, seed_ptr, num_chunks,
                         CHUNK: tl.constexpr, SAMPLE: tl.constexpr, SEED_FROM_PTR: tl.constexpr):
    row = tl.program_id(0)
    chunk = tl.program_id(1)
    offs = chunk * CHUNK + tl.arange(0, CHUNK)
    mask = offs < V
    score = tl.load(logits_ptr + row.to(tl.int64) * stride + offs, mask=mask, other=-float("inf")).to(tl.float32)
    if SAMPLE:  # rows with inv_t > 0 add Gumbel noise to l / T; greedy rows (inv_t = 0) keep l
        inv_t = tl.load(inv_t_ptr + row).to(tl.float32)
        if SEED_FROM_PTR:
            seed = tl.load(seed_ptr)
        u = tl.rand(seed, row * V + offs)
        gumbel = -tl.log(-tl.log(u))  # u = 0 gives -inf: that column never wins
        sampled = inv_t > 0
        score = score * tl.where(sampled, inv_t, 1.0) + tl.where(sampled, gumbel, 0.0)  # no -inf * 0
    best = tl.max(score, axis=0)
    index = tl.argmax(score, axis=0) + chunk * CHUNK
    tl.store(best_val_ptr + row * num_chunks + chunk, best)
    tl.store(best_idx_ptr + row * num_chunks + chunk, index.to(tl.int64))


def sample_rows(logits: torch.Tensor, inv_temperature: torch.Tensor, seed: int | torch.Tensor,
                any_sampled: bool = True) -> torch.Tensor:
    """(B, V) logits -> (B,) int64 token ids; inv_temperature (B,) float32/float64 with 0 meaning greedy; seed an int
    or a (1,) int64 tensor on the logits' device; any_sampled=False (every row greedy, known on the host) skips the
    noise."""
    check_device(_chunk_argmax_kernel, logits)
    if logits.dim() != 2 or logits.stride(-1) != 1 or inv_temperature.shape != logits.shape[:1]:
        raise ValueError(f"sample_rows wants logits (B, V) with a contiguous last dim and inv_temperature (B,); got "
                         f"{tuple(logits.shape)} and {tuple(inv_temperature.shape)}")
    from_ptr = isinstance(seed, torch.Tensor)
    if from_ptr and (seed.shape != (1,) or seed.dtype != torch.int64 or seed.device != logits.device):
        raise ValueError(f"sample_rows: a tensor seed must be (1,) int64 on {logits.device}; got "
                         f"{tuple(seed.shape)} {seed.dtype} on {seed.device}")
    b, v = logits.shape
    chunk = 1024 if is_interpreted(_chunk_argmax_kernel) else 8192
    num_chunks = triton.cdiv(v, chunk)
    best_val = torch.empty((b, num_chunks), dtype=torch.float32, device=logits.device)
    best_idx = torch.empty((b, num_chunks), dtype=torch.int64, device=logits.device)
    _chunk_argmax_kernel[(b, num_chunks)](logits, inv_temperature, best_val, best_idx, v, logits.stride(0),
                                          0 if from_ptr else seed, seed if from_ptr else best_idx, num_chunks,
                                          CHUNK=chunk, SAMPLE=any_sampled, SEED_FROM_PTR=from_ptr, num_warps=8)
    return best_idx.gather(1, best_val.argmax(1, keepdim=True)).squeeze(1)
