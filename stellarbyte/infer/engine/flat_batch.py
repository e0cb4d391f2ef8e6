"""A scheduled step as ONE flattened row of tokens plus the index tensors paged attention needs (vLLM v1 style).

Reference: vLLM v1's GPUModelRunner._prepare_inputs (query_start_loc, seq_lens, block table, slot mapping), nano-vllm.
For B scheduled sequences, sequence i computing T_i new tokens after C_i cached ones, N = sum T_i:
  input_ids, positions, slot_mapping (N,): token j of sequence i is at position C_i + j, its K/V slot is
    table_i[p // block_size] * block_size + p % block_size
  cu_seqlens_q (B + 1,): sequence i owns tokens [cu[i], cu[i + 1]);  seq_lens (B,) = C_i + T_i
  block_tables (B, W), W = blocks of a full context window;  logits_indices (B,) = cu[1:] - 1, the last tokens
  inv_temperature (B,) float64 (0 = greedy) and seed (1,): the in-graph sampler's inputs (build(sampling=True))
Padding (a CUDA graph captured for more rows than the step has): each pad sequence owns one pad token with
seq_len 0, slot -1 (no cache write) and id 0, so the attention kernel writes zeros there and nothing else moves.
Host->device traffic: every field lives in ONE int64 buffer (pinned on the host, a mirror on the device) at fixed
offsets sized for the largest step, so a step is a numpy fill plus one copy, and a captured graph always reads
the same device addresses (its static inputs are views of the mirror).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from stellarbyte.infer.engine.scheduler import ScheduledBatch


@dataclass(slots=True)
class FlatStepMetadata:
    """Device views of one step (shapes above). num_tokens/num_seqs include padding; max_query_len is a host int."""
    num_tokens: int
    num_seqs: int
    max_query_len: int
    input_ids: torch.Tensor
    positions: torch.Tensor
    slot_mapping: torch.Tensor
    cu_seqlens_q: torch.Tensor
    seq_lens: torch.Tensor
    block_tables: torch.Tensor
    logits_indices: torch.Tensor
    inv_temperature: torch.Tensor | None = None
    seed: torch.Tensor | None = None


# sections of the buffer, in order: the block tables last, so a step copies only the rows it uses
IDS, POSITIONS, SLOTS, LOGITS_INDICES, CU_SEQLENS, SEQ_LENS, INV_TEMPERATURE, SEED, TABLES = range(9)


class FlatBatchBuilder:
    """Owns the pinned host buffer and its device mirror; turns ScheduledBatch into FlatStepMetadata."""

    TABLES = TABLES

    def __init__(self, max_num_tokens: int, max_num_seqs: int, max_blocks_per_seq: int, block_size: int,
                 device: torch.device | str) -> None:
        self.max_tokens, self.max_seqs, self.width = max_num_tokens, max_num_seqs, max_blocks_per_seq
        self.block_size = block_size
        self.device = torch.device(device)
        t, b, w = max_num_tokens, max_num_seqs, max_blocks_per_seq
        # offsets of the sections: ids | positions | slots | logits indices | cu | seq_lens | 1/T | seed | tables
        sizes = [t, t, t, b, b + 1, b, b, 1, b * w]
        self.offsets = np.concatenate([[0], np.cumsum(sizes)]).tolist()
        total = self.offsets[-1]
        pin = self.device.type == "cuda"
        self.host = torch.zeros(total, dtype=torch.int64, pin_memory=pin)
        self.host_np = self.host.numpy()  # shares memory with the pinned tensor
        # numpy views of each section (full length): a step slices these instead of recomputing offsets
        self.sections = [self.host_np[a:z] for a, z in zip(self.offsets[:-1], self.offsets[1:])]
        self.arange = np.arange(max(t, b) + 1, dtype=np.int64)  # cu_seqlens / logits indices of decode steps
        self.mirror = torch.zeros(total, dtype=torch.int64, device=self.device)
        # block-table rows already in the host buffer: row -> (seq_id, preemptions, blocks written). Rows mostly
        # hold the same sequence step after step, so only a new block (every block_size tokens) is written.
        self.rows: list[tuple[int, int, int] | None] = [None] * max_num_seqs

    def forget_rows(self) -> None:
        """Something else wrote the table section (graph capture): rewrite every row next time."""
        self.rows = [None] * self.max_seqs

    def _section(self, buf: np.ndarray | torch.Tensor, index: int, length: int):
        start = self.offsets[index]
        return buf[start:start + length]

    def views(self, num_tokens: int, num_seqs: int, max_query_len: int) -> FlatStepMetadata:
        """Device views of the mirror for a step of num_tokens tokens and num_seqs sequences (padding included)."""
        m = self.mirror
        tables = self._section(m, TABLES, num_seqs * self.width).view(num_seqs, self.width)
        return FlatStepMetadata(num_tokens, num_seqs, max_query_len, self._section(m, IDS, num_tokens),
                                self._section(m, POSITIONS, num_tokens), self._section(m, SLOTS, num_tokens),
                                self._section(m, CU_SEQLENS, num_seqs + 1), self._section(m, SEQ_LENS, num_seqs),
                                tables, self._section(m, LOGITS_INDICES, num_seqs),
                                self._section(m, INV_TEMPERATURE, num_seqs).view(torch.float64),
                                self._section(m, SEED, 1))

    def build(self, batch: ScheduledBatch, pad_seqs_to: int | None = None, sampling: bool = False,
              views: bool = True) -> FlatStepMetadata | None:
        """Fill the host buffer for `batch` (padded to pad_seqs_to sequences of one token each, for graphs) and
        copy it to the device in one transfer. sampling=True also fills 1/T per row (0: greedy or padding) and,
        when a row samples, a fresh seed from torch's CPU generator (torch.manual_seed fixes it). views=False
        returns None instead of the device views (a graph replay reads the mirror itself): host time at batch 1."""
        seqs, n_new = batch.seqs, batch.num_new_tokens
        b = len(seqs)
        padded_b = pad_seqs_to or b
        n = sum(n_new)
        padded_n = n + (padded_b - b)
        if padded_b > self.max_seqs or padded_n > self.max_tokens:
            raise ValueError(f"a step of {padded_b} sequences / {padded_n} tokens exceeds the runner's buffers "
                             f"({self.max_seqs} / {self.max_tokens}); raise max_num_seqs/max_num_batched_tokens")
        bs, w, sec = self.block_size, self.width, self.sections
        tables = sec[TABLES][:padded_b * w].reshape(padded_b, w)
        rows = self.rows
        for i, seq in enumerate(seqs):  # entries past a row's blocks are never read (seq_len bounds every read)
            table, cached = seq.block_table, rows[i]
            done = cached[2] if cached is not None and cached[:2] == (seq.seq_id, seq.num_preemptions) else 0
            if done != len(table):
                done = min(done, len(table))  # same sequence: write only its new blocks
                tables[i, done:len(table)] = table[done:]
                rows[i] = (seq.seq_id, seq.num_preemptions, len(table))
        for i in range(b, padded_b):  # pad rows: block 0 (never read: seq_len 0)
            if rows[i] is not None:
                rows[i] = None
                tables[i, 0] = 0
        max_query_len = max(n_new)
        if max_query_len == 1:  # decode-only: one token per sequence, plain lists (fewer numpy calls at batch 1)
            pos = [s.num_computed_tokens for s in seqs]  # (B,) the new token's position = tokens cached
            sec[IDS][:b] = [s.token_ids[p] for s, p in zip(seqs, pos)]
            sec[POSITIONS][:b] = pos
            sec[SLOTS][:b] = [s.block_table[p // bs] * bs + p % bs for s, p in zip(seqs, pos)]
            sec[LOGITS_INDICES][:padded_b] = self.arange[:padded_b]
            sec[CU_SEQLENS][:padded_b + 1] = self.arange[:padded_b + 1]
            sec[SEQ_LENS][:b] = [p + 1 for p in pos]
        else:
            counts = np.asarray(n_new, dtype=np.int64)  # (B,)
            start = np.fromiter((s.num_computed_tokens for s in seqs), dtype=np.int64, count=b)  # (B,) cached
            cu = np.zeros(padded_b + 1, dtype=np.int64)
            np.cumsum(counts, out=cu[1:b + 1])
            cu[b + 1:] = n + np.arange(1, padded_b - b + 1)  # pad sequences: one token each
            sec[IDS][:n] = [tok for s, k in zip(seqs, n_new) for tok in s.token_ids[s.num_computed_tokens:
                                                                                   s.num_computed_tokens + k]]
            row = np.repeat(np.arange(b), counts)  # (N,) sequence of each token
            pos = np.arange(n) - cu[:b][row] + start[row]  # (N,) position in its sequence
            sec[POSITIONS][:n] = pos
            sec[SLOTS][:n] = tables[row, pos // bs] * bs + pos % bs
            sec[LOGITS_INDICES][:padded_b] = cu[1:] - 1
            sec[CU_SEQLENS][:padded_b + 1] = cu
            sec[SEQ_LENS][:b] = start + counts
        # pad tokens / sequences: id 0, position 0, no cache write, no keys
        sec[IDS][n:padded_n] = 0
        sec[POSITIONS][n:padded_n] = 0
        sec[SLOTS][n:padded_n] = -1
        sec[SEQ_LENS][b:padded_b] = 0
        if sampling:
            inv_t = sec[INV_TEMPERATURE][:padded_b].view(np.float64)
            inv_t[:b] = [0.0 if s.params.greedy else 1.0 / s.params.temperature for s in seqs]
            inv_t[b:] = 0.0
            if inv_t[:b].any():
                sec[SEED][0] = int(torch.randint(0, 2**31 - 1, ()))
        end = self.offsets[TABLES] + padded_b * w  # everything up to the used table rows, one copy
        self.mirror[:end].copy_(self.host[:end], non_blocking=True)
        return self.views(padded_n, padded_b, max_query_len) if views else None
