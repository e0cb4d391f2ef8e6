"""Continuous batching: which sequences run in the next step, and how many of their tokens.

References: Yu et al., 2022 (Orca, iteration-level scheduling); vLLM v1's unified scheduler (prefill and
decode are both "compute the tokens not yet in the cache"); Agrawal et al., 2024 (Sarathi, chunked prefill).
One step:
  1. running sequences, oldest first, each get min(uncomputed tokens, token budget) -- 1 while decoding, a
     chunk while prefilling. When blocks run out, the NEWEST running sequence is preempted by recomputation
     (blocks freed, K/V recomputed on readmission) until the older one fits.
  2. if nobody was preempted, waiting sequences are admitted in arrival order while max_num_seqs, the token
     budget (max_num_batched_tokens) and the free blocks allow; a prompt longer than the budget is chunked.
The n completions of one request share its prompt's K/V: a sibling is admitted only after the first one's
prompt is computed, so its full prompt blocks come from the prefix cache.
No starvation: admission is strictly FCFS (the head of the queue is never skipped), preempted sequences
return to the head of the queue, and preemption always takes the newest, so the oldest request always
progresses -- and LLMEngine refuses requests whose full length could not fit the block pool alone.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field

from stellarbyte.infer.engine.block_manager import BlockManager
from stellarbyte.infer.engine.sequence import Sequence, SequenceStatus


@dataclass(slots=True)
class ScheduledBatch:
    seqs: list[Sequence] = field(default_factory=list)
    num_new_tokens: list[int] = field(default_factory=list)  # tokens computed per sequence this step
    preempted: list[Sequence] = field(default_factory=list)

    def __len__(self) -> int:
        return len(self.seqs)

    @property
    def num_tokens(self) -> int:
        return sum(self.num_new_tokens)


class Scheduler:
    def __init__(self, block_manager: BlockManager, max_num_seqs: int, max_num_batched_tokens: int) -> None:
        if max_num_seqs < 1 or max_num_batched_tokens < 1:
            raise ValueError(f"max_num_seqs={max_num_seqs} and max_num_batched_tokens={max_num_batched_tokens} "
                             f"must both be >= 1")
        self.block_manager = block_manager
        self.max_num_seqs = max_num_seqs
        self.max_num_batched_tokens = max_num_batched_tokens
        self.waiting: deque[Sequence] = deque()
        self.running: list[Sequence] = []  # admission order: oldest first
        self.num_preemptions = 0

    def add(self, seq: Sequence) -> None:
        seq.status = SequenceStatus.WAITING
        self.waiting.append(seq)

    def has_unfinished(self) -> bool:
        return bool(self.waiting or self.running)

    def schedule(self) -> ScheduledBatch:
        batch = ScheduledBatch()
        budget = self.max_num_batched_tokens
        i = 0
        while i < len(self.running) and budget > 0:  # 1. running, oldest first
            seq = self.running[i]
            n = min(seq.num_uncomputed_tokens, budget)
            while not self.block_manager.allocate_slots(seq, n):
                victim = self.running.pop()  # newest
                self._preempt(victim, batch)
                if victim is seq:
                    break
            else:
                batch.seqs.append(seq)
                batch.num_new_tokens.append(n)
                budget -= n
                i += 1
        if batch.preempted:
            return batch
        while self.waiting and budget > 0 and len(self.running) < self.max_num_seqs:  # 2. admit, FCFS
            seq = self.waiting[0]
            if self._sibling_prefilling(seq):
                break  # n > 1: wait one prefill so the siblings share the prompt's blocks (prefix cache)
            n = self.block_manager.admit(seq, budget)
            if n == 0:
                break  # the head waits for blocks; nobody overtakes it
            self.waiting.popleft()
            seq.status = SequenceStatus.RUNNING
            self.running.append(seq)
            batch.seqs.append(seq)
            batch.num_new_tokens.append(n)
            budget -= n
        return batch

    def _sibling_prefilling(self, seq: Sequence) -> bool:
        if not self.block_manager.enable_prefix_caching or seq.num_output_tokens:
            return False
        return any(r.request_id == seq.request_id and r.num_computed_tokens < r.num_prompt_tokens
                   for r in self.running)

    def _preempt(self, seq: Sequence, batch: ScheduledBatch) -> None:
        """Recomputation: free the blocks, keep the tokens, requeue at the head (older victims end up first)."""
        self.block_manager.free_sequence(seq)
        seq.status = SequenceStatus.WAITING
        seq.num_preemptions += 1
        self.num_preemptions += 1
        self.waiting.appendleft(seq)
        batch.preempted.append(seq)

    def finish(self, seq: Sequence) -> None:
        """Release a finished (or aborted) sequence wherever it is queued."""
        if seq in self.running:
            self.running.remove(seq)
        elif seq in self.waiting:
            self.waiting.remove(seq)
        self.block_manager.free_sequence(seq)
        seq.status = SequenceStatus.FINISHED
