"""One completion being generated: its tokens, how many of them have K/V in the cache, and its block table.

Reference: vLLM / nano-vllm `Sequence`. The engine sees token ids only.
Contract (the invariants the scheduler relies on):
  token_ids = prompt + generated tokens; num_prompt_tokens <= len(token_ids)
  num_computed_tokens <= len(token_ids): tokens whose K/V are in the cache; the next step computes
    token_ids[num_computed_tokens:] (a prefill chunk, or the single last sampled token while decoding)
  block_table[i] holds the cache block of tokens [i * block_size, (i + 1) * block_size)
  block_hashes[i] is the prefix-chained hash of full, computed block i (prefix cache)
Preemption by recomputation drops the blocks and sets num_computed_tokens back to 0; the generated tokens
stay, so the sequence resumes exactly where it was (its sampling generator is kept too).
"""

from __future__ import annotations

import enum
import itertools
from dataclasses import dataclass, field

import torch

from stellarbyte.infer.engine.sampling_params import SamplingParams

_ids = itertools.count()


class SequenceStatus(enum.Enum):
    WAITING = "waiting"
    RUNNING = "running"
    FINISHED = "finished"


@dataclass(slots=True, eq=False)
class Sequence:
    request_id: str
    token_ids: list[int]
    params: SamplingParams
    index: int = 0  # which of the request's n completions
    seq_id: int = field(default_factory=lambda: next(_ids))
    num_prompt_tokens: int = -1
    num_computed_tokens: int = 0
    status: SequenceStatus = SequenceStatus.WAITING
    block_table: list[int] = field(default_factory=list)
    block_hashes: list[bytes] = field(default_factory=list)
    num_cached_tokens: int = 0  # prompt tokens served from the prefix cache at (last) admission
    num_preemptions: int = 0
    finish_reason: str | None = None  # "stop" | "length"
    stop_reason: int | str | None = None  # the stop token id or stop string that ended it
    logprobs: list[dict[int, float]] = field(default_factory=list)
    output_text: str = ""
    generator: torch.Generator | None = None

    def __post_init__(self) -> None:
        if not self.token_ids:
            raise ValueError("the prompt is empty; pass at least one token id (e.g. the BOS token)")
        if self.num_prompt_tokens < 0:
            self.num_prompt_tokens = len(self.token_ids)
        self.token_ids = list(self.token_ids)
        assert 0 <= self.num_computed_tokens <= len(self.token_ids)

    def __len__(self) -> int:
        return len(self.token_ids)

    @property
    def prompt_token_ids(self) -> list[int]:
        return self.token_ids[:self.num_prompt_tokens]

    @property
    def output_token_ids(self) -> list[int]:
        return self.token_ids[self.num_prompt_tokens:]

    @property
    def num_output_tokens(self) -> int:
        return len(self.token_ids) - self.num_prompt_tokens

    @property
    def num_uncomputed_tokens(self) -> int:
        return len(self.token_ids) - self.num_computed_tokens

    @property
    def is_finished(self) -> bool:
        return self.status is SequenceStatus.FINISHED

    def append_token(self, token_id: int) -> None:
        self.token_ids.append(int(token_id))

    def block_tokens(self, index: int, block_size: int) -> list[int]:
        return self.token_ids[index * block_size:(index + 1) * block_size]
