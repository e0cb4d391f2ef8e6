"""Arithmetic written out in words: facts ("7 plus 5 is 12."), small times tables, counting and word problems.

Contracts:
- Operands: addition 0..20, subtraction a - b with 0 <= b <= a <= 20, multiplication 1..10.
- Every sentence showing a sum, a difference or a word problem passes `heldout.training_may_use_arith`, so a
  held-out pair {a, b} appears in no training form (a plus b, b + a, (a+b) minus a, a story with a and b apples).
- Word problems put all their numbers on one line, so a line-level scan can verify the rule (tests do).
"""

from __future__ import annotations

import random

from .heldout import ADD_MAX, training_may_use_arith
from .text import ShuffledCycle, capitalize
from .world import World

MUL_MAX = 10
COUNTABLES = (
    "apples", "pears", "cookies", "marbles", "stickers", "shells", "stones", "balloons", "crayons", "books", "coins",
    "flowers", "eggs", "kites", "cups", "buttons", "feathers", "carrots", "plums", "cakes", "boats", "stars", "leaves",
)
NUMBER_WORDS = (
    "zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine", "ten", "eleven", "twelve",
    "thirteen", "fourteen", "fifteen", "sixteen", "seventeen", "eighteen", "nineteen", "twenty",
)


def sample_pair(rng: random.Random, seed: int, op: str) -> tuple[int, int]:
    """A random (a, b) for `op` that training is allowed to show (rejection sampling; ~15% of pairs are held out)."""
    while True:
        small = rng.random() < 0.6  # most practice is single-digit: the procedure a small model can learn
        if op == "add":
            hi = 9 if small else ADD_MAX
            a, b = rng.randint(0, hi), rng.randint(0, hi)
        elif op == "sub":
            a = rng.randint(0, 18 if small else ADD_MAX)
            b = rng.randint(0, min(a, 9) if small else a)
        elif op == "mul":
            a, b = rng.randint(1, MUL_MAX), rng.randint(1, MUL_MAX)
        else:
            raise ValueError(f"unknown op {op!r}; expected add, sub or mul")
        if training_may_use_arith(seed, op, a, b):
            return a, b


def fact_sentence(rng: random.Random, op: str, a: int, b: int) -> str:
    """One written-out arithmetic fact in one of several phrasings."""
    if op == "add":
        c = a + b
        forms = (f"{a} plus {b} is {c}.", f"{a} + {b} = {c}.", f"{a} and {b} make {c}.",
                 f"If you add {a} and {b}, you get {c}.", f"{a} plus {b} equals {c}.")
    elif op == "sub":
        c = a - b
        forms = (f"{a} minus {b} is {c}.", f"{a} - {b} = {c}.", f"If you take {b} from {a}, you get {c}.",
                 f"{a} take away {b} is {c}.", f"{a} minus {b} equals {c}.")
    else:
        c = a * b
        groups = "group" if a == 1 else "groups"
        forms = (f"{a} times {b} is {c}.", f"{a} x {b} = {c}.", f"{a} {groups} of {b} make {c}.",
                 f"{a} times {b} equals {c}.")
    return rng.choice(forms)


def word_problem(rng: random.Random, world: World, op: str, a: int, b: int) -> tuple[str, str]:
    """(question, statement) for a word problem: the question asks for the result, the statement tells it."""
    p = rng.choice(world.people)
    q = world.by_name.get(p.friend) or rng.choice(world.people)
    things = rng.choice(COUNTABLES)
    name, he, him, friend = p.first, p.he, p.him, q.first
    if op == "add":
        c = a + b
        start = rng.choice((f"{name} has {a} {things}.", f"{name} had {a} {things} in a basket.",
                            f"There were {a} {things} on {name}'s table."))
        middle = rng.choice((f"{friend} gives {him} {b} more.", f"Then {he} found {b} more.",
                             f"{friend} brought {b} more {things}."))
        ask = rng.choice((f"How many {things} does {name} have now?", f"How many {things} are there now?"))
        tell = f"Now there are {c} {things}."
    else:
        c = a - b
        start = rng.choice((f"{name} has {a} {things}.", f"{name} had {a} {things} in a bag.",
                            f"There were {a} {things} in {name}'s box."))
        middle = rng.choice((f"{capitalize(he)} gives {b} to {friend}.", f"{capitalize(he)} lost {b} of them.",
                             f"{friend} took {b} away."))
        ask = rng.choice((f"How many {things} are left?", f"How many {things} does {name} have left?"))
        tell = f"Now there are {c} {things} left."
    return f"{start} {middle} {ask}", f"{start} {middle} {tell}"


def arithmetic_document(rng: random.Random, seed: int, world: World, add_table: ShuffledCycle | None = None) -> str:
    """A short pretraining document: a practice sheet, a times table, counting, or word problems (one per line).

    `add_table` (a cycle over 1..20) picks the number of each addition table, so every "k plus n" row, and with it
    the seen mirror of every add_swap pair, is written within a few dozen arithmetic documents."""
    style = rng.random()
    if style < 0.35:  # mixed practice sheet
        op = rng.choice(("add", "add", "sub", "mul"))
        head = rng.choice(("Let us practise.", "Here are some sums.", "Math time!", "Practice sheet."))
        lines = [fact_sentence(rng, op, *sample_pair(rng, seed, op)) for _ in range(rng.randint(4, 9))]
        return head + "\n" + "\n".join(lines)
    if style < 0.6:  # a table: n plus 0..k or n times 1..10 (skipping what is held out)
        op = rng.choice(("add", "sub", "mul"))
        n = rng.randint(1, MUL_MAX if op == "mul" else ADD_MAX // 2)
        if op == "mul":
            rows = [(n, k) for k in range(1, MUL_MAX + 1)]
            head = f"The {n} times table."
        elif op == "add":
            n = add_table.next() if add_table is not None else rng.randint(1, ADD_MAX)
            rows = [(k, n) for k in range(0, ADD_MAX + 1)]
            head = f"Adding {n}."
        else:
            rows = [(k, n) for k in range(n, ADD_MAX + 1)]
            head = f"Taking away {n}."
        lines = [fact_sentence(rng, op, a, b) for a, b in rows if training_may_use_arith(seed, op, a, b)]
        return head + "\n" + "\n".join(lines)
    if style < 0.7:  # counting teaches the number line
        start = rng.randint(0, 10)
        stop = start + rng.randint(5, 10)
        words = " ".join(f"{NUMBER_WORDS[k]}," if k <= 20 else f"{k}," for k in range(start, stop)).rstrip(",")
        lines = [f"Let us count: {words}.", f"After {stop - 1} comes {stop}.", f"{stop} is one more than {stop - 1}."]
        return "\n".join(lines[: rng.randint(1, 3)])
    lines = []  # word problems with their answers
    for _ in range(rng.randint(2, 4)):
        op = rng.choice(("add", "sub"))
        a, b = sample_pair(rng, seed, op)
        lines.append(word_problem(rng, world, op, a, b)[1])
    return "\n".join(lines)
