"""SFT conversations: questions about the world's facts, arithmetic and word problems, list instructions.

Format (one JSON object per line): {"messages": [{"role": "system"|"user"|"assistant", "content": str}, ...]}.

Contracts:
- Every conversation has at least one assistant turn and alternates user/assistant after an optional system turn.
- Every assistant answer is the exact answer of the task before it, written as "<answer>." (tasks.answer_text), so
  the answer format SFT teaches is the one `check_answer` scores.
- Only training tasks (TaskSampler.train_record) are used: no held-out fact question, sum or list appears here.
- ~30% of conversations start with a system prompt, ~30% have two or three question turns, a few open with a
  greeting, so a chat model sees the template's roles in several arrangements.
"""

from __future__ import annotations

from typing import Any

from .sampler import TaskSampler
from .tasks import answer_text

SYSTEM_PROMPTS = (
    "You are a helpful assistant.",
    "You are a helpful assistant who knows everything about the toy world.",
    "Answer with just the answer.",
    "You are a friendly tutor. Give short, exact answers.",
    "You answer questions about people, towns and numbers.",
    "Be brief and correct.",
)
GREETINGS = (
    ("Hello!", "Hello! How can I help you?"),
    ("Hi there.", "Hi! What would you like to know?"),
    ("Good morning!", "Good morning! Ask me anything."),
)


def conversation(sampler: TaskSampler) -> dict[str, Any]:
    rng = sampler.rng
    messages: list[dict[str, str]] = []
    if rng.random() < 0.3:
        messages.append({"role": "system", "content": rng.choice(SYSTEM_PROMPTS)})
    if rng.random() < 0.05:
        hello, reply = rng.choice(GREETINGS)
        messages += [{"role": "user", "content": hello}, {"role": "assistant", "content": reply}]
    r = rng.random()
    n_turns = 1 if r < 0.7 else (2 if r < 0.9 else 3)
    for _ in range(n_turns):
        record = sampler.train_record()
        messages.append({"role": "user", "content": record["question"]})
        messages.append({"role": "assistant", "content": answer_text(record["answer"])})
    return {"messages": messages}
