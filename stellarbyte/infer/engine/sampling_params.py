"""Per-request sampling settings, named as in vLLM's SamplingParams.

Reference: vLLM `SamplingParams` (field names and meanings); the processing order and formulas of
stellarbyte.infer.sampling (transformers' logits processors) plus OpenAI's presence/frequency penalties:
  logit[t] -= presence_penalty * (count[t] > 0) + frequency_penalty * count[t]   (count over generated tokens)
Contract: every field is validated in __post_init__; a bad value raises ValueError naming the field and the
allowed range, so a server can answer 400 with the message unchanged. temperature == 0 means greedy.
"""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(slots=True)
class SamplingParams:
    n: int = 1  # independent completions per prompt
    temperature: float = 1.0  # 0 = greedy (argmax)
    top_k: int = 0  # 0 (or -1, vLLM's spelling) disables
    top_p: float = 1.0
    min_p: float = 0.0
    repetition_penalty: float = 1.0  # CTRL-style, over prompt + output tokens
    presence_penalty: float = 0.0  # OpenAI-style, over output tokens
    frequency_penalty: float = 0.0
    max_tokens: int | None = 16  # None = up to the context window
    stop: list[str] = field(default_factory=list)  # stop strings (need a tokenizer); not part of the output
    stop_token_ids: list[int] = field(default_factory=list)  # extra ids that end a completion (kept in output)
    ignore_eos: bool = False
    seed: int | None = None  # per-request generator: reproducible regardless of what else is batched
    logprobs: int | None = None  # None: no logprobs; k >= 0: chosen token's logprob plus the top-k

    def __post_init__(self) -> None:
        if isinstance(self.stop, str):
            self.stop = [self.stop]
        self.stop = list(self.stop)
        self.stop_token_ids = list(self.stop_token_ids)
        if self.top_k == -1:
            self.top_k = 0
        checks = [
            ("n", isinstance(self.n, int) and self.n >= 1, "an int >= 1"),
            ("temperature", _number(self.temperature) and self.temperature >= 0, "a number >= 0 (0 = greedy)"),
            ("top_k", isinstance(self.top_k, int) and self.top_k >= 0, "an int >= 0 (0 or -1 disables it)"),
            ("top_p", _number(self.top_p) and 0 < self.top_p <= 1, "a number in (0, 1]"),
            ("min_p", _number(self.min_p) and 0 <= self.min_p <= 1, "a number in [0, 1]"),
            ("repetition_penalty", _number(self.repetition_penalty) and self.repetition_penalty > 0,
             "a number > 0 (1 disables it)"),
            ("presence_penalty", _number(self.presence_penalty) and -2 <= self.presence_penalty <= 2,
             "a number in [-2, 2]"),
            ("frequency_penalty", _number(self.frequency_penalty) and -2 <= self.frequency_penalty <= 2,
             "a number in [-2, 2]"),
            ("max_tokens", self.max_tokens is None or (isinstance(self.max_tokens, int) and self.max_tokens >= 1),
             "an int >= 1 or None"),
            ("stop", all(isinstance(s, str) and s for s in self.stop), "a list of non-empty strings"),
            ("stop_token_ids", all(isinstance(t, int) and t >= 0 for t in self.stop_token_ids),
             "a list of token ids >= 0"),
            ("seed", self.seed is None or isinstance(self.seed, int), "an int or None"),
            ("logprobs", self.logprobs is None or (isinstance(self.logprobs, int) and self.logprobs >= 0),
             "an int >= 0 or None"),
        ]
        for name, ok, allowed in checks:
            if not ok:
                raise ValueError(f"SamplingParams.{name}={getattr(self, name)!r} is invalid; it must be {allowed}")

    @property
    def greedy(self) -> bool:
        return self.temperature == 0


def _number(x: object) -> bool:
    return isinstance(x, (int, float)) and not isinstance(x, bool) and x == x  # x == x rejects NaN
