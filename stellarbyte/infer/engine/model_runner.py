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
        bs = self.block_size
        b = len(batch)
        t = max(batch.num_new_tokens)
        s = max(seq.num_computed_tokens + n for seq, n in zip(batch.seqs, batch.num_new_tokens))
        input_ids = torch.zeros(b, t, dtype=torch.long)
        position_ids = torch.zeros(b, t, dtype=torch.long)
        attention_mask = torch.zeros(b, s, dtype=torch.long)
        gather_slots = torch.zeros(b, s, dtype=torch.long)
        write_rows, slot_mapping = [], []
        for i, (seq, n) in enumerate(zip(batch.seqs, batch.num_new_tokens)):
            start, ctx = seq.num_computed_tokens, seq.num_computed_tokens + n
            table = torch.tensor(seq.block_table, dtype=torch.long)
            positions = torch.arange(ctx)
            slots = table[positions // bs] * bs + positions % bs  # (ctx,) physical slot of every position
            input_ids[i, t - n:] = torch.tensor(seq.token_ids[start:ctx])
            position_ids[i, t - n:] = positions[start:]
            attention_mask[i, s - ctx:] = 1
            gather_slots[i, s - ctx:] = slots
            write_rows.append(torch.arange(i * t + t - n, (i + 1) * t))
            slot_mapping.append(slots[start:])
        meta = StepMetadata(t, s, torch.cat(write_rows), torch.cat(slot_mapping), gather_slots)
        return input_ids, position_ids, attention_mask, meta

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
