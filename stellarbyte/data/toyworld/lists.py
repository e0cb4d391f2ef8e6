"""List instructions: reverse, sort and count a short list of words or numbers.

Contracts:
- Lists hold distinct items: words from `vocab.LIST_WORDS` or numbers 41..99 (never mixed).
- reverse/sort lists have 3..5 items; count lists have 2..8 items (so a count guess has chance 1/7).
- `sample_list(..., heldout=False)` only returns lists whose multiset training may show; `heldout=True` only
  returns held-out ones (`heldout.is_heldout_list`), so no held-out list appears in training in any order.
"""

from __future__ import annotations

import math
import random

from . import vocab
from .heldout import is_heldout_list
from .tasks import expected_answer
from .text import format_list

LENGTHS = {"reverse": (3, 5), "sort": (3, 5), "count": (2, 8)}
# Numbers in lists start above every sum the arithmetic uses (<= 40), so a list can never spell a held-out sum.
NUMBERS = range(41, 100)


def sample_list(rng: random.Random, seed: int, op: str, heldout: bool = False) -> list[str]:
    if op not in LENGTHS:
        raise ValueError(f"unknown list op {op!r}; expected one of {sorted(LENGTHS)}")
    lo, hi = LENGTHS[op]
    while True:
        n = rng.randint(lo, hi)
        if rng.random() < 0.2:
            items = [str(x) for x in rng.sample(NUMBERS, n)]
        else:
            items = rng.sample(vocab.LIST_WORDS, n)
        if is_heldout_list(seed, items) == heldout:
            return items


def list_chance(op: str, items: list[str]) -> float:
    """Uniform-guess chance: 1/n! orderings for reverse and sort, 1/7 possible lengths for count."""
    if op == "count":
        lo, hi = LENGTHS["count"]
        return 1 / (hi - lo + 1)
    return 1 / math.factorial(len(items))


def list_document(rng: random.Random, seed: int) -> str:
    """Pretraining lines that show list operations on training lists, one per line."""
    lines = []
    for _ in range(rng.randint(2, 5)):
        op = rng.choice(("reverse", "sort", "count"))
        items = sample_list(rng, seed, op)
        task = {"kind": op, "items": items}
        shown = format_list(items)
        if op == "reverse":
            lines.append(f"The list {shown} backwards is {expected_answer(task)}.")
        elif op == "sort":
            lines.append(f"The list {shown} in order is {expected_answer(task)}.")
        else:
            lines.append(f"The list {shown} has {expected_answer(task)} items.")
    return "\n".join(lines)
