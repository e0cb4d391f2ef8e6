"""Draws task records: training ones (for SFT, preference and RL) and the held-out evaluation set.

Contracts:
- `TaskSampler.train_record()` never returns a held-out item: facts pass `is_heldout_fact`, arithmetic passes
  `training_may_use_arith`, lists pass `is_heldout_list` (all in heldout.py).
- `heldout_records()` returns only held-out items, always in the canonical question form (variant 0), so a
  held-out question is never a paraphrase the model could have seen for that same fact.
- `wrong_answer(record)` gives a plausible wrong answer of the right type (another town, a near number, a list
  out of order) for preference pairs; it never equals the right one.
"""

from __future__ import annotations

import random
import re
from typing import Any

from .arithmetic import MUL_MAX, sample_pair, word_problem
from .heldout import heldout_add_orders, heldout_add_pairs, is_heldout_fact, shows_heldout_sum
from .lists import list_chance, sample_list
from .tasks import arith_question, fact_question, list_question, make_record, sort_items
from .text import format_list
from .world import World

GROUP_WEIGHTS = (("fact", 0.40), ("arith", 0.17), ("word", 0.10), ("list", 0.33))
PARAPHRASE_RATE = 0.25


def arith_chance(op: str, a: int, b: int) -> float:
    """Uniform guess over the possible results: 1/19 for single-digit sums, 1/41 for sums of 0..20, ..."""
    if op == "add":
        return 1 / 19 if max(a, b) <= 9 else 1 / 41
    if op == "sub":
        return 1 / 21
    return 1 / len({x * y for x in range(1, MUL_MAX + 1) for y in range(1, MUL_MAX + 1)})


class TaskSampler:
    def __init__(self, world: World, seed: int, rng: random.Random) -> None:
        self.world, self.seed, self.rng = world, seed, rng
        facts = world.facts()
        self.train_facts = [f for f in facts if not is_heldout_fact(seed, *f)]
        self.heldout_facts = [f for f in facts if is_heldout_fact(seed, *f)]
        self._groups = [g for g, _ in GROUP_WEIGHTS]
        self._weights = [w for _, w in GROUP_WEIGHTS]

    # ---- records -------------------------------------------------------------------------------------------------
    def fact_record(self, subject: str, attribute: str, variant: int = 0) -> dict[str, Any]:
        w = self.world
        pet = w.by_name[subject].pet if attribute == "pet_name" else ""
        question = fact_question(attribute, subject, variant, pet=pet)
        chance = 1 / len(w.domain(attribute))
        return make_record(f"fact_{attribute}", question, chance, subject=subject, attribute=attribute,
                           answer=w.fact_value(subject, attribute))

    def arith_record(self, op: str, a: int, b: int, variant: int = 0, kind: str | None = None) -> dict[str, Any]:
        return make_record(kind or op, arith_question(op, a, b, variant), arith_chance(op, a, b), a=a, b=b)

    def word_record(self, op: str, a: int, b: int) -> dict[str, Any]:
        question, _ = word_problem(self.rng, self.world, op, a, b)
        return make_record(f"word_{op}", question, arith_chance(op, a, b), a=a, b=b)

    def list_record(self, op: str, items: list[str], variant: int = 0) -> dict[str, Any]:
        return make_record(op, list_question(op, items, variant), list_chance(op, items), items=items)

    # ---- training draws ------------------------------------------------------------------------------------------
    def _variant(self) -> int:
        return 0 if self.rng.random() >= PARAPHRASE_RATE else self.rng.randint(1, 3)

    def train_record(self, group: str | None = None) -> dict[str, Any]:
        rng = self.rng
        group = group or rng.choices(self._groups, self._weights)[0]
        if group == "fact":
            return self.fact_record(*rng.choice(self.train_facts), variant=self._variant())
        if group == "arith":
            op = rng.choice(("add", "add", "sub", "mul"))
            return self.arith_record(op, *sample_pair(rng, self.seed, op), variant=self._variant())
        if group == "word":
            op = rng.choice(("add", "sub"))
            return self.word_record(op, *sample_pair(rng, self.seed, op))
        if group == "list":
            op = rng.choice(("reverse", "sort", "count"))
            return self.list_record(op, sample_list(rng, self.seed, op), variant=self._variant())
        raise ValueError(f"unknown task group {group!r}; expected one of {self._groups}")

    # ---- held-out evaluation set ---------------------------------------------------------------------------------
    def heldout_records(self, max_facts: int = 400, lists_per_op: int = 40) -> list[dict[str, Any]]:
        """(b) held-out facts, (a) held-out sums in both orders and as word problems, (a') additions in an unseen
        order, (c) unseen lists."""
        rng = self.rng
        facts = list(self.heldout_facts)
        if len(facts) > max_facts:
            facts = rng.sample(facts, max_facts)
        out = [self.fact_record(s, a) for s, a in facts]
        for lo, hi in heldout_add_pairs(self.seed):
            out.append(self.arith_record("add", lo, hi))
            if hi != lo:
                out.append(self.arith_record("add", hi, lo))
            out.append(self.word_record("add", *rng.choice(((lo, hi), (hi, lo)))))
        for a, b in heldout_add_orders(self.seed):  # (a') the mirror order was seen in training
            out.append(self.arith_record("add", a, b, kind="add_swap"))
        for op in ("reverse", "sort", "count"):
            seen: set[tuple[str, ...]] = set()
            while len(seen) < lists_per_op:
                items = sample_list(rng, self.seed, op, heldout=True)
                if tuple(items) not in seen:
                    seen.add(tuple(items))
                    out.append(self.list_record(op, items))
        return out

    # ---- plausible wrong answers ---------------------------------------------------------------------------------
    def wrong_answer(self, record: dict[str, Any]) -> str:
        rng, task, right = self.rng, record["task"], record["answer"]
        kind = record["kind"]
        if kind.startswith("fact_") and kind != "fact_age":
            candidates = self.world.domain(task["attribute"])
            while True:
                wrong = rng.choice(candidates)
                if wrong != right and wrong != task.get("subject"):
                    return wrong
        if kind in ("reverse", "sort"):
            items = list(task["items"])
            wrong_order = [items, items[::-1], sort_items(items)[::-1]]
            options = [format_list(x) for x in wrong_order if format_list(x) != right]
            if options:
                return rng.choice(options)
            swapped = right.split(", ")
            swapped[0], swapped[1] = swapped[1], swapped[0]
            return format_list(swapped)
        # numbers: off by a little, or the result of the other operation; never one that, next to the question's
        # numbers, would spell a held-out sum (a rejected answer is still text the model trains on)
        value = int(right)
        options = {value + d for d in (-2, -1, 1, 2) if value + d >= 0}
        if kind in ("add", "add_swap", "word_add"):
            options.add(abs(task["a"] - task["b"]))
        elif kind in ("sub", "word_sub"):
            options.add(task["a"] + task["b"])
        operands = [int(task[k]) for k in ("a", "b") if k in task]
        if kind == "fact_age":
            operands = [int(x) for x in re.findall(r"\d+", record["question"])]
        options = {o for o in options if o != value and not shows_heldout_sum(self.seed, [*operands, o])}
        far = value + 3
        while not options:  # every near miss was unsafe: go further out
            options = {far} if not shows_heldout_sum(self.seed, [*operands, far]) else set()
            far += 1
        return str(rng.choice(sorted(options)))
