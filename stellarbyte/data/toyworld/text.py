"""Small text and randomness helpers shared by the toy-world generators.

Contracts:
- `stable_unit(seed, *parts)` is a pure function of its arguments (BLAKE2b, not Python's salted `hash`), so the
  held-out split it drives is identical across processes, machines and Python versions.
- `child_rng(seed, name)` gives each generator stream its own `random.Random`; string seeds are hashed with SHA-512
  by CPython (seed version 2), which is stable across runs and platforms.
- Helpers never produce a blank line, because documents are separated by one in pretrain/*.txt.
"""

from __future__ import annotations

import hashlib
import random

VOWEL_SOUNDS = ("a", "e", "i", "o", "u")


def stable_unit(seed: int, *parts: object) -> float:
    """A number in [0, 1) that depends only on (seed, parts): the coin the held-out split is decided by."""
    key = "\x1f".join([str(seed), *map(str, parts)]).encode()
    digest = hashlib.blake2b(key, digest_size=8).digest()
    return int.from_bytes(digest, "big") / 2**64


def child_rng(seed: int, name: str) -> random.Random:
    """An independent, reproducible random stream for one generator (stories, sft, ...)."""
    return random.Random(f"toyworld:{seed}:{name}")


def article(word: str) -> str:
    """'a ball', 'an apple', 'an old map' (by first letter; good enough for this vocabulary)."""
    return ("an " if word[:1].lower() in VOWEL_SOUNDS else "a ") + word


def join_and(items: list[str]) -> str:
    """'a', 'a and b', 'a, b and c' (simple English, no Oxford comma)."""
    if not items:
        raise ValueError("join_and needs at least one item")
    if len(items) == 1:
        return items[0]
    return ", ".join(items[:-1]) + " and " + items[-1]


def capitalize(sentence: str) -> str:
    """Upper-case the first character only (keeps names like 'Oakford' inside the sentence intact)."""
    return sentence[:1].upper() + sentence[1:]


def plural(noun: str) -> str:
    """Plural of a countable noun from the word banks ('box' -> 'boxes', 'puppy' -> 'puppies')."""
    if noun.endswith(("s", "x", "ch", "sh")):
        return noun + "es"
    if noun.endswith("y") and noun[-2:-1] not in VOWEL_SOUNDS:
        return noun[:-1] + "ies"
    if noun == "mouse":
        return "mice"
    if noun == "sheep" or noun == "fish":
        return noun
    if noun.endswith("f") and noun not in ("roof", "chief"):
        return noun[:-1] + "ves"
    return noun + "s"


def format_list(items: list[str]) -> str:
    """The one list format used by list instructions and their answers: 'cat, dog, sun'."""
    return ", ".join(items)


class ShuffledCycle:
    """Yield items in a fresh random order each round: every person gets the same number of documents (+-1),
    where independent random picks would leave some people with one mention and others with eighteen."""

    def __init__(self, rng: random.Random, items: list) -> None:
        if not items:
            raise ValueError("ShuffledCycle needs at least one item")
        self.rng, self.items, self.order, self.i = rng, list(items), [], 0

    def next(self):  # noqa: ANN201 -- returns an element of items
        if self.i == len(self.order):
            self.order = self.items[:]
            self.rng.shuffle(self.order)
            self.i = 0
        self.i += 1
        return self.order[self.i - 1]
