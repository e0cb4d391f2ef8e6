"""Verifiable tasks: one question, one exact answer, a checker. Used by SFT, preference, RL and held-out eval.

A task record is the JSON object written to eval/heldout.jsonl and rl/train.jsonl:
    {"question": str, "answer": str, "kind": str, "task": {"kind": ..., "answer": ..., <parameters>}}
kinds: fact_<attribute> (fact_age, fact_home, ... fact_capital, fact_country), add, add_swap (an addition whose
mirror order was seen), sub, mul, word_add, word_sub,
reverse, sort, count. `task` carries everything needed to recompute the answer (a, b, items) or, for facts,
the answer itself, plus `chance`: the probability that a uniform guess over the candidates is right.

Answer format (what SFT teaches): just the value, followed by a period: "Oakford.", "7.", "sun, dog, cat.".

`check_answer(task, response)` is the reward/metric: it reads the first non-empty line of the response, strips
whitespace, surrounding quotes and trailing punctuation, ignores case and repeated spaces, parses numbers ("7",
"7.", "7.0" are equal) and compares lists item by item. Anything else is wrong: "The answer is 7" is wrong, by
design, because the format is part of what SFT teaches. Malformed tasks raise ValueError.
"""

from __future__ import annotations

import math
import re
from typing import Any

from .text import format_list

# Canonical question per attribute (used by held-out eval) first, then paraphrases seen only in training.
FACT_QUESTIONS: dict[str, tuple[str, ...]] = {
    "age": ("How old is {s}?", "What is the age of {s}?", "Tell me how old {s} is."),
    "home": ("Where does {s} live?", "In which town does {s} live?", "What town is {s}'s home?"),
    "job": ("What is {s}'s job?", "What does {s} do for work?", "What work does {s} do?"),
    "pet": ("What pet does {s} have?", "What kind of pet does {s} have?", "Which animal is {s}'s pet?"),
    "pet_name": ("What is the name of {s}'s {pet}?", "What is {s}'s {pet} called?", "What did {s} name the {pet}?"),
    "color": ("What is {s}'s favorite color?", "Which color does {s} like best?", "What color does {s} love most?"),
    "food": ("What is {s}'s favorite food?", "Which food does {s} like best?", "What does {s} love to eat most?"),
    "friend": ("Who is {s}'s best friend?", "Who is the best friend of {s}?", "Name {s}'s best friend."),
    "capital": ("What is the capital of {s}?", "Which town is the capital of {s}?", "Name the capital of {s}."),
    "country": ("Which country is {s} in?", "In which country is the town of {s}?", "{s} is a town in which country?"),
}
ARITH_QUESTIONS: dict[str, tuple[str, ...]] = {
    "add": ("What is {a} plus {b}?", "What is {a} + {b}?", "Add {a} and {b}.", "{a} plus {b} is what?"),
    "sub": ("What is {a} minus {b}?", "What is {a} - {b}?", "Take {b} away from {a}.", "{a} minus {b} is what?"),
    "mul": ("What is {a} times {b}?", "What is {a} x {b}?", "Multiply {a} by {b}.", "{a} times {b} is what?"),
}
LIST_QUESTIONS: dict[str, tuple[str, ...]] = {
    "reverse": ("Reverse this list: {items}.", "Write this list backwards: {items}.", "Reverse the order: {items}."),
    "sort": ("Sort this list: {items}.", "Put this list in order: {items}.", "Sort these: {items}."),
    "count": ("How many items are in this list: {items}?", "Count the items: {items}.", "How many things: {items}?"),
}
NUMBER_KINDS = frozenset({"add", "add_swap", "sub", "mul", "word_add", "word_sub", "count", "fact_age"})
LIST_KINDS = frozenset({"reverse", "sort"})
KINDS = frozenset(
    {f"fact_{a}" for a in FACT_QUESTIONS} | set(ARITH_QUESTIONS) | {"add_swap", "word_add", "word_sub"}
    | set(LIST_QUESTIONS)
)
_NUMBER = re.compile(r"[-+]?\d+(?:\.\d+)?")
_TRAILING = ".!?;:,"


def sort_items(items: list[str]) -> list[str]:
    """Numbers sort by value, words alphabetically (the rule SFT teaches for 'Sort this list')."""
    if all(_NUMBER.fullmatch(x) for x in items):
        return sorted(items, key=float)
    return sorted(items, key=str.lower)


def expected_answer(task: dict[str, Any]) -> str:
    """Recompute the exact answer of a task from its parameters (facts carry their answer)."""
    kind = task.get("kind")
    if kind not in KINDS:
        raise ValueError(f"unknown task kind {kind!r}; expected one of {sorted(KINDS)}")
    try:
        if kind.startswith("fact_"):
            return str(task["answer"])
        if kind in ("add", "add_swap", "word_add"):
            return str(int(task["a"]) + int(task["b"]))
        if kind in ("sub", "word_sub"):
            return str(int(task["a"]) - int(task["b"]))
        if kind == "mul":
            return str(int(task["a"]) * int(task["b"]))
        items = [str(x) for x in task["items"]]
    except KeyError as err:
        raise ValueError(f"task of kind {kind!r} lacks field {err.args[0]!r}") from None
    if not items:
        raise ValueError("list task has an empty 'items' list")
    if kind == "reverse":
        return format_list(items[::-1])
    if kind == "sort":
        return format_list(sort_items(items))
    return str(len(items))  # count


def normalize(response: str) -> str:
    """First non-empty line, stripped of whitespace, quotes and trailing punctuation, lower-cased, spaces collapsed."""
    line = next((ln for ln in str(response).splitlines() if ln.strip()), "")
    line = " ".join(line.split()).strip().strip("\"'`").strip()
    return line.rstrip(_TRAILING).strip().lower()


def _as_number(text: str) -> float | None:
    return float(text) if _NUMBER.fullmatch(text) else None


def check_answer(task: dict[str, Any], response: str) -> bool:
    """True when `response` gives exactly the task's answer after normalisation (see module docstring)."""
    if not isinstance(task, dict):
        raise ValueError(f"task must be a dict (the 'task' field of a heldout record), got {type(task).__name__}")
    if "task" in task and "kind" in task and isinstance(task["task"], dict):
        task = task["task"]  # a whole record was passed: use its task
    expected = expected_answer(task)
    got = normalize(response)
    kind = task["kind"]
    if kind in NUMBER_KINDS:
        value, target = _as_number(got), float(expected)
        return value is not None and math.isclose(value, target)
    if kind in LIST_KINDS:
        items = [x.strip().rstrip(_TRAILING).strip() for x in got.split(",")]
        return items == [x.lower() for x in expected.split(", ")]
    return got == normalize(expected)


def make_record(kind: str, question: str, chance: float, **params: Any) -> dict[str, Any]:
    """A task record with its answer computed from the parameters (facts pass answer= explicitly)."""
    task = {"kind": kind, **params, "chance": chance}
    task["answer"] = expected_answer(task)
    return {"question": question, "answer": task["answer"], "kind": kind, "task": task}


def fact_question(attribute: str, subject: str, variant: int = 0, pet: str = "") -> str:
    templates = FACT_QUESTIONS[attribute]
    return templates[variant % len(templates)].format(s=subject, pet=pet)


def arith_question(op: str, a: int, b: int, variant: int = 0) -> str:
    templates = ARITH_QUESTIONS[op]
    return templates[variant % len(templates)].format(a=a, b=b)


def list_question(op: str, items: list[str], variant: int = 0) -> str:
    templates = LIST_QUESTIONS[op]
    return templates[variant % len(templates)].format(items=format_list(items))


def answer_text(answer: str) -> str:
    """How the assistant says an answer: the value and a period."""
    return answer + "."
