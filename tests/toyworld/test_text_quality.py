"""The pretraining text is varied, true to the world, and TinyStories-like rather than a few repeated lines."""

from __future__ import annotations

import re
from collections import Counter

from stellarbyte.data.toyworld import vocab
from stellarbyte.data.toyworld.heldout import is_heldout_list
from stellarbyte.data.toyworld.text import article, join_and, plural, stable_unit


def _sentences(docs: list[str]) -> list[str]:
    return [s for d in docs for s in re.split(r"(?<=[.!?])\s+", d.replace("\n", " ")) if s]


def test_vocabulary_is_rich(pretrain_docs):
    words = re.findall(r"[a-z]+", " ".join(pretrain_docs).lower())
    assert len(set(words)) > 1000, len(set(words))  # brief asks > 500 in 1 MB


def test_no_sentence_dominates(pretrain_docs):
    sentences = _sentences(pretrain_docs)
    counts = Counter(sentences)
    top, n = counts.most_common(1)[0]
    assert n / len(sentences) < 0.01, (top, n, len(sentences))
    assert len(counts) / len(sentences) > 0.5  # most sentences are distinct
    assert len(set(pretrain_docs)) / len(pretrain_docs) > 0.99  # documents are essentially all distinct


def test_stories_vary_and_use_the_world(pretrain_docs, world):
    firsts = {p.first for p in world.people}
    stories = [d for d in pretrain_docs if any(k in d for k in ("Once upon", "lived in", "The end", "learned that",
                                                                   "best day", "went to bed", "hugged"))]
    assert len(stories) > 300
    openings = Counter(" ".join(s.split()[:4]) for s in stories)
    assert len(openings) > 100
    assert sum(1 for s in stories if any(f in s.split()[:12] or f + "." in s for f in firsts)) > 0.9 * len(stories)
    lengths = [len(s.split()) for s in stories]
    assert 40 < sum(lengths) / len(lengths) < 200


def test_encyclopedia_sentences_are_true(pretrain_docs, world):
    """Parse the plainest fact sentences back out of the text and compare them with the world."""
    checked = 0
    for d in pretrain_docs:
        for name, town in re.findall(r"([A-Z][a-z]+ [A-Z][a-z]+) lives in (?:the town of )?([A-Z][a-z]+)", d):
            if name in world.by_name:
                assert world.by_name[name].home == town, (name, town)
                checked += 1
        for name, age in re.findall(r"([A-Z][a-z]+ [A-Z][a-z]+) is (\d+) years old", d):
            assert world.by_name[name].age == int(age)
            checked += 1
        for name, color in re.findall(r"([A-Z][a-z]+ [A-Z][a-z]+)'s favorite color is (\w+)", d):
            assert world.by_name[name].color == color
            checked += 1
        for country, capital in re.findall(r"The capital of ([A-Z][a-z]+) is ([A-Z][a-z]+)", d):
            assert world.country_by_name[country].capital == capital
            checked += 1
    assert checked > 300


def test_arithmetic_text_is_correct(pretrain_docs):
    n = 0
    for d in pretrain_docs:
        for a, op, b, c in re.findall(r"\b(\d+) (plus|minus|times|\+|-|x) (\d+) (?:is|=|equals) (\d+)\.", d):
            a, b, c = int(a), int(b), int(c)
            assert c == {"plus": a + b, "+": a + b, "minus": a - b, "-": a - b, "times": a * b, "x": a * b}[op]
            n += 1
    assert n > 1000


def test_text_helpers():
    assert article("apple") == "an apple" and article("ball") == "a ball"
    assert join_and(["a"]) == "a" and join_and(["a", "b", "c"]) == "a, b and c"
    assert [plural(w) for w in ("box", "puppy", "day", "mouse", "leaf", "cat")] == [
        "boxes", "puppies", "days", "mice", "leaves", "cats"]
    assert stable_unit(0, "x") == stable_unit(0, "x") != stable_unit(1, "x")
    assert is_heldout_list(3, ["b", "a", "c"]) == is_heldout_list(3, ["c", "b", "a"])  # order never matters


def test_word_banks():
    sizes = {"names": len(vocab.GIRL_NAMES) + len(vocab.BOY_NAMES), "family": len(vocab.FAMILY_NAMES),
             "toys": len(vocab.TOYS), "animals": len(vocab.WILD_ANIMALS) + len(vocab.PET_ANIMALS),
             "adjectives": len(vocab.THING_ADJECTIVES) + len(vocab.CHARACTER_ADJECTIVES) + len(vocab.FEELINGS)
             + len(vocab.PLACE_ADJECTIVES), "verbs": len(vocab.ACTIVITIES) + len(vocab.ACTIONS)}
    assert sizes["names"] >= 200 and sizes["family"] >= 100 and sizes["toys"] >= 80 and sizes["animals"] >= 60
    assert sizes["adjectives"] >= 100 and sizes["verbs"] >= 80, sizes
    for name in dir(vocab):
        bank = getattr(vocab, name)
        if isinstance(bank, tuple):
            assert len(bank) == len(set(bank)), f"{name} has duplicates"
    people = set(vocab.GIRL_NAMES) | set(vocab.BOY_NAMES)
    assert not people & set(vocab.PET_NAMES) and not set(vocab.GIRL_NAMES) & set(vocab.BOY_NAMES)
    assert all("," not in w and " " not in w for w in vocab.LIST_WORDS)


def test_world_invariants(world):
    assert len(world.people) == 60 and len({p.name for p in world.people}) == 60
    for p in world.people:
        assert p.friend != p.name and p.friend in world.by_name
        assert (p.job is None) == (p.age < 16) and 5 <= p.age <= 80
        assert p.home in world.town_by_name
    for c in world.countries:
        assert world.town_by_name[c.capital].country == c.name and world.town_by_name[c.capital].is_capital
