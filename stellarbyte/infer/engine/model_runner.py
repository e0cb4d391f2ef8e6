"""Turn a scheduled batch into one forward of the model over the paged KV cache.

Reference: nano-vllm's ModelRunner (prepare inputs -> slot mapping -> run -> logits).
Shapes for B scheduled sequences, row i computing T_i new tokens after C_i cached ones:
  input_ids, position_ids (B, T), T = max T_i, right-aligned (left padding, id 0, position 0)
  attention_mask (B, S), S = max (C_i + T_i), ones on each row's last C_i + T_i slots
  slot_mapping (N,), N = sum T_i: physical slot of new token j of row i = table[p // bs] * bs + p % bs,
    p = C_i + j its position in the sequence
Returns next-token logits (B, V) in float32 for every row; the engine samples only rows whose step
reached the end of their tokens (a non-final prefill chunk yields logits nobody reads).
"""

from __future__ import annotations

import torch

from stellarbyte.infer.engine.kv_cache import PagedKVCache, PagedStepCache, StepMetadata
from stellarbyte.infer.engine.scheduler import ScheduledBatch


class ModelRunner:
    def __init__(self, model, cache: PagedKVCache) -> None:
        self.model, self.cache = model, cache
        self.block_size = cache.block_size

    def prepare(self, batch: ScheduledBatch) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, StepMetadata]:
        """Vectorised over rows: a handful of tensor ops per step instead of a Python loop of them."""
        bs = self.block_size
        n = torch.tensor(batch.num_new_tokens)  # (B,) new tokens per row
        start = torch.tensor([seq.num_computed_tokens for seq in batch.seqs])  # (B,) tokens already cached
        ctx = start + n
        t, s = int(n.max()), int(ctx.max())
        width = max(len(seq.block_table) for seq in batch.seqs)
        tables = torch.tensor([seq.block_table + [0] * (width - len(seq.block_table)) for seq in batch.seqs])
        # keys: virtual slot j of row i holds sequence position p = j - (S - ctx_i), padding where p < 0
        p = torch.arange(s)[None, :] - (s - ctx)[:, None]  # (B, S)
        valid = p >= 0
        p = p.clamp(min=0)
        gather_slots = torch.where(valid, tables.gather(1, p // bs) * bs + p % bs, 0)  # (B, S) slot mapping
        # queries: column c of row i is new token c - (T - n_i), at position start_i + that
        c = torch.arange(t)[None, :] - (t - n)[:, None]  # (B, T)
        real = c >= 0
        position_ids = torch.where(real, start[:, None] + c, 0)
        input_ids = torch.zeros(len(batch), t, dtype=torch.long)
        input_ids[real] = torch.tensor([tok for seq, k in zip(batch.seqs, batch.num_new_tokens)
                                        for tok in seq.token_ids[seq.num_computed_tokens:seq.num_computed_tokens + k]])
        slot_mapping = gather_slots[:, s - t:][real]  # the new tokens' own slots, row-major like write_rows
        meta = StepMetadata(t, s, real.flatten().nonzero().squeeze(1), slot_mapping, gather_slots)
        return input_ids, position_ids, valid.long(), meta

    @torch.inference_mode()
    def run(self, batch: ScheduledBatch) -> torch.Tensor:
        input_ids, position_ids, attention_mask, meta = self.prepare(batch)
        device = self.model.device
        meta.write_rows, meta.slot_mapping = meta.write_rows.to(device), meta.slot_mapping.to(device)
        meta.gather_slots = meta.gather_slots.to(device)
        step_cache = PagedStepCache(self.cache, meta)
        out = self.model(input_ids.to(device), attention_mask=attention_mask.to(device),
                         position_ids=position_ids.to(device), past_key_values=step_cache, logits_to_keep=1)
        return out.logits[:, -1].float()  # (B, V)
