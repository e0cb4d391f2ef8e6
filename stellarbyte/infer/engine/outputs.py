"""What the engine returns, named as vLLM's RequestOutput / CompletionOutput.

finish_reason: "stop" (EOS, a stop token id or a stop string) or "length" (max_tokens or the context window);
None while the completion is still running. stop_reason: the stop token id or stop string that matched.
logprobs: one {token id: logprob} per generated token (the chosen token plus the top-k), or None.
"""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(slots=True)
class CompletionOutput:
    index: int
    text: str
    token_ids: list[int]
    finish_reason: str | None = None
    stop_reason: int | str | None = None
    logprobs: list[dict[int, float]] | None = None
    cumulative_logprob: float | None = None

    @property
    def finished(self) -> bool:
        return self.finish_reason is not None


@dataclass(slots=True)
class RequestOutput:
    request_id: str
    prompt: str | None
    prompt_token_ids: list[int]
    outputs: list[CompletionOutput] = field(default_factory=list)
    finished: bool = False
    num_cached_tokens: int = 0  # tokens served from the prefix cache at the latest admission
