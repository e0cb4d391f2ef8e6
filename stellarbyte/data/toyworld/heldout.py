"""The held-out split: which facts, sums and lists never appear in any training file.

Evaluation on the toy world should measure what a model learned, not what it memorised as a string. Three kinds of
held-out items, each decided by a pure coin `stable_unit(seed, ...)` so no list of them has to be kept in memory
while gigabytes stream to disk:

(a) arithmetic: unordered addition pairs {a, b} with 2 <= a, b <= 20. Training text never shows "a plus b", "b plus
    a", the matching subtractions "(a+b) minus a" / "(a+b) minus b", nor a word problem built on them, so answering
    needs the procedure learned from the other pairs.
(b) facts: (subject, attribute) pairs whose fact is stated in the pretraining encyclopedia and stories but whose
    question (any phrasing) is never asked in SFT, preference or RL data: the model must connect a question form
    learned on other people to a fact it only read.
(c) lists: multisets of words/numbers that never appear in a training list instruction in any order.

Contract: `training_may_use_*` is the gate every training generator passes its candidates through; the held-out
evaluation draws only items the gate rejects. Tests scan the written files to confirm it.
"""

from __future__ import annotations

from .text import stable_unit

FACT_HELDOUT_FRACTION = 0.15
ADD_HELDOUT_FRACTION = 0.15
LIST_HELDOUT_FRACTION = 0.10
ADD_MAX = 20  # training additions use operands 0..20
HELDOUT_ADD_MIN = 2  # pairs with 0 or 1 stay in training: they teach the number line ("n plus 1")


def is_heldout_fact(seed: int, subject: str, attribute: str) -> bool:
    return stable_unit(seed, "fact", subject, attribute) < FACT_HELDOUT_FRACTION


def is_heldout_add_pair(seed: int, a: int, b: int) -> bool:
    """True when the unordered pair {a, b} is held out of all training text."""
    lo, hi = min(a, b), max(a, b)
    if lo < HELDOUT_ADD_MIN or hi > ADD_MAX:
        return False
    return stable_unit(seed, "add", lo, hi) < ADD_HELDOUT_FRACTION


def heldout_add_pairs(seed: int) -> list[tuple[int, int]]:
    """All held-out unordered pairs (lo, hi), sorted."""
    return [(a, b) for a in range(HELDOUT_ADD_MIN, ADD_MAX + 1) for b in range(a, ADD_MAX + 1)
            if is_heldout_add_pair(seed, a, b)]


def training_may_use_arith(seed: int, op: str, a: int, b: int) -> bool:
    """May training text show `a op b`? Additions of held-out pairs and their inverse subtractions may not."""
    if op == "add":
        return not is_heldout_add_pair(seed, a, b)
    if op == "sub":  # a - b = c reveals b + c = a
        return not is_heldout_add_pair(seed, b, a - b)
    if op == "mul":
        return True
    raise ValueError(f"unknown arithmetic op {op!r}; expected add, sub or mul")


def is_heldout_list(seed: int, items: list[str] | tuple[str, ...]) -> bool:
    """Decided on the sorted multiset, so no ordering of a held-out list ever appears in training."""
    return stable_unit(seed, "list", *sorted(items)) < LIST_HELDOUT_FRACTION
