"""The held-out split: which facts, sums and lists never appear in any training file.

Evaluation on the toy world should measure what a model learned, not what it memorised as a string. Four kinds of
held-out items, each decided by a pure coin `stable_unit(seed, ...)` so no list of them has to be kept in memory
while gigabytes stream to disk:

(a) arithmetic: unordered single-digit addition pairs {a, b} with 2 <= a, b <= 9. Training text never shows "a plus
    b", "b plus a", the matching subtractions "(a+b) minus a" / "(a+b) minus b", a word problem built on them, nor any
    line whose numbers happen to spell a + b = c, so answering needs what was learned from the other pairs.
(a') commutativity: ordered pairs (a, b), a != b, 2 <= a, b <= 20, whose mirror (b, a) IS in training: "a plus b"
    (and "Add a and b", a word problem starting with a and adding b) never appears in that order. Answering
    needs a + b = b + a, a rule, not the memorised string. Kind `add_swap`.
(b) facts: (subject, attribute) pairs whose fact is stated in the pretraining encyclopedia and stories but whose
    question (any phrasing) is never asked in SFT, preference or RL data: the model must connect a question form
    learned on other people to a fact it only read.
(c) lists: multisets of words/numbers that never appear in a training list instruction in any order.

Contract: `training_may_use_arith`, `is_heldout_fact` and `is_heldout_list` are the gates every training generator
passes its candidates through; the held-out evaluation draws only items they reject. Tests scan the written files
(not the generator's intentions) to confirm it.
"""

from __future__ import annotations

from functools import lru_cache

from .text import stable_unit

FACT_HELDOUT_FRACTION = 0.15
ADD_HELDOUT_FRACTION = 0.25
SWAP_HELDOUT_FRACTION = 0.12
LIST_HELDOUT_FRACTION = 0.10
ADD_MAX = 20  # training additions use operands 0..20
HELDOUT_ADD_MIN = 2  # pairs with 0 or 1 stay in training: they teach the number line ("n plus 1")
HELDOUT_ADD_MAX = 9  # single digits: the sums a small model can learn; teen sums stay in training as support


def is_heldout_fact(seed: int, subject: str, attribute: str) -> bool:
    return stable_unit(seed, "fact", subject, attribute) < FACT_HELDOUT_FRACTION


@lru_cache(maxsize=65536)  # a pure function of small ints, asked for every generated sum
def is_heldout_add_pair(seed: int, a: int, b: int) -> bool:
    """True when the unordered pair {a, b} is held out of all training text."""
    lo, hi = min(a, b), max(a, b)
    if lo < HELDOUT_ADD_MIN or hi > HELDOUT_ADD_MAX:
        return False
    return stable_unit(seed, "add", lo, hi) < ADD_HELDOUT_FRACTION


def heldout_add_pairs(seed: int) -> list[tuple[int, int]]:
    """All held-out unordered pairs (lo, hi), sorted."""
    return [(a, b) for a in range(HELDOUT_ADD_MIN, HELDOUT_ADD_MAX + 1) for b in range(a, HELDOUT_ADD_MAX + 1)
            if is_heldout_add_pair(seed, a, b)]


@lru_cache(maxsize=65536)
def is_heldout_add_order(seed: int, a: int, b: int) -> bool:
    """True when the ORDERED pair (a, b) is held out (its mirror (b, a) stays in training): the add_swap kind."""
    lo, hi = min(a, b), max(a, b)
    if a == b or lo < HELDOUT_ADD_MIN or hi > ADD_MAX or is_heldout_add_pair(seed, a, b):
        return False
    if stable_unit(seed, "swap", lo, hi) >= SWAP_HELDOUT_FRACTION:
        return False
    small_first = stable_unit(seed, "swap-order", lo, hi) < 0.5  # which direction is held out
    return (a, b) == ((lo, hi) if small_first else (hi, lo))


def heldout_add_orders(seed: int) -> list[tuple[int, int]]:
    """All held-out ordered pairs (a, b) for add_swap, sorted."""
    r = range(HELDOUT_ADD_MIN, ADD_MAX + 1)
    return [(a, b) for a in r for b in r if is_heldout_add_order(seed, a, b)]


@lru_cache(maxsize=65536)
def training_may_use_arith(seed: int, op: str, a: int, b: int) -> bool:
    """May training text show `a op b = c`? Not when a, b, c spell a held-out sum in any way: a + b itself, the
    inverse subtraction (a - b = c reveals b + c = a), or a coincidence such as 2 x 2 = 4 = 2 + 2; nor an addition
    in a held-out order (add_swap)."""
    if op == "add":
        if is_heldout_add_order(seed, a, b):
            return False
        c = a + b
    elif op == "sub":
        c = a - b
    elif op == "mul":
        c = a * b
    else:
        raise ValueError(f"unknown arithmetic op {op!r}; expected add, sub or mul")
    return not shows_heldout_sum(seed, [a, b, c])


def is_heldout_list(seed: int, items: list[str] | tuple[str, ...]) -> bool:
    """Decided on the sorted multiset, so no ordering of a held-out list ever appears in training."""
    return stable_unit(seed, "list", *sorted(items)) < LIST_HELDOUT_FRACTION


def shows_heldout_sum(seed: int, numbers: list[int]) -> bool:
    """True when some x + y = z among `numbers` (a multiset) with {x, y} a held-out pair: text that must not be
    written into training data even by accident (e.g. a wrong answer in a preference pair)."""
    counts: dict[int, int] = {}
    for n in numbers:
        counts[n] = counts.get(n, 0) + 1
    for x in counts:
        for y in counts:
            if y < x or (x == y and counts[x] < 2) or not is_heldout_add_pair(seed, x, y):
                continue
            if counts.get(x + y, 0) >= 1 + (x + y == x) + (x + y == y):
                return True
    return False
