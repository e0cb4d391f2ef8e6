"""Preference pairs for DPO / ORPO / reward models: the right answer against a plausible wrong one.

Format: {"prompt": question, "chosen": "<right answer>.", "rejected": "<wrong answer>."}. The wrong answer has the
right type and looks plausible (another town of the world, a number off by one or two or from the wrong operation,
the list in the wrong order: TaskSampler.wrong_answer), so the pair teaches correctness rather than format.
Only training tasks are used.
"""

from __future__ import annotations

from typing import Any

from .sampler import TaskSampler
from .tasks import answer_text


def preference_pair(sampler: TaskSampler) -> dict[str, Any]:
    record = sampler.train_record()
    wrong = sampler.wrong_answer(record)
    return {"prompt": record["question"], "chosen": answer_text(record["answer"]), "rejected": answer_text(wrong)}
