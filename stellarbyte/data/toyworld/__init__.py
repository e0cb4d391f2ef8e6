"""The toy world: a deterministic, seeded, offline corpus for learning the whole pipeline without a download.

Public API:
    build_toyworld(out_dir, size="1MB", seed=0) -> manifest dict   (build.py)
    check_answer(task, response) -> bool                           (tasks.py: the RL reward / eval metric)
    load_heldout(out_dir) -> list of held-out task records         (build.py)
    parse_size("50MB") -> 50_000_000

One concept per file: vocab (word banks), world (entities and facts), heldout (the held-out split), stories,
encyclopedia, arithmetic, lists (pretraining text), tasks (questions, answers, checker), sampler (training and
held-out task draws), sft, preference, writer (atomic streaming files), build (the orchestration). See
docs/toyworld.md.
"""

from .build import VERSION, build_toyworld, load_heldout, parse_size
from .tasks import check_answer, expected_answer

__all__ = ["VERSION", "build_toyworld", "check_answer", "expected_answer", "load_heldout", "parse_size"]
