"""Held-out items never appear in any training file: scanned in the written files, not trusted from the generator."""

from __future__ import annotations

import re
from collections import Counter

from stellarbyte.data.toyworld.heldout import heldout_add_pairs
from stellarbyte.data.toyworld.tasks import FACT_QUESTIONS

INT = re.compile(r"\b\d+\b")


def _spells_sum(numbers: list[int], pairs: set[tuple[int, int]]) -> tuple[int, int] | None:
    """Independent re-implementation: is there x + y = z in the multiset with {x, y} held out?"""
    c = Counter(numbers)
    for x, y in pairs:
        need = Counter([x, y, x + y])
        if all(c[k] >= v for k, v in need.items()):
            return x, y
    return None


def _qa_units(sft, preference, world_dir):
    """Every (question, answer) unit a model trains on, from SFT turns, preference pairs and RL prompts."""
    import json

    for conv in sft:
        msgs = [m for m in conv["messages"] if m["role"] != "system"]
        for q, a in zip(msgs[::2], msgs[1::2]):
            yield q["content"], a["content"]
    for p in preference:
        yield p["prompt"], p["chosen"]
        yield p["prompt"], p["rejected"]
    for line in (world_dir / "rl/train.jsonl").read_text().splitlines():
        r = json.loads(line)
        yield r["question"], r["answer"]


def test_heldout_questions_never_appear_in_training_text(heldout, training_texts):
    assert len(heldout) > 200
    for rel, text in training_texts.items():
        leaked = [r["question"] for r in heldout if r["question"] in text]
        assert not leaked, f"{rel} contains held-out questions: {leaked[:3]}"


def test_no_phrasing_of_a_heldout_fact_question_is_in_training(heldout, world, training_texts):
    facts = [r["task"] for r in heldout if r["kind"].startswith("fact_")]
    assert len(facts) >= 40
    everything = "\n".join(training_texts.values())
    for t in facts:
        pet = world.by_name[t["subject"]].pet if t["attribute"] == "pet_name" else ""
        for template in FACT_QUESTIONS[t["attribute"]]:
            assert template.format(s=t["subject"], pet=pet) not in everything


def test_no_training_answer_gives_a_heldout_fact(heldout, sft, preference, world_dir):
    """Semantic scan: a training question naming a held-out subject never has the held-out value as its answer."""
    held = {(r["task"]["subject"], r["answer"].lower()) for r in heldout if r["kind"].startswith("fact_")}
    subjects = {s for s, _ in held}
    for q, a in _qa_units(sft, preference, world_dir):
        answer = a.rstrip(".").lower()
        for s in subjects:
            if s in q and (s, answer) in held:
                # person attribute domains do not overlap, so a matching value means the held-out fact itself
                raise AssertionError(f"training pair answers a held-out fact: {q!r} -> {a!r}")


def test_heldout_facts_are_stated_in_pretraining(heldout, pretrain_docs):
    """(b) is about extracting a fact the model read: each held-out fact co-occurs with its subject in 2+ docs."""
    for r in heldout:
        if not r["kind"].startswith("fact_"):
            continue
        subject, value = r["task"]["subject"], r["answer"]
        hits = sum(1 for d in pretrain_docs if subject in d and re.search(rf"\b{re.escape(value)}\b", d))
        assert hits >= 2, (subject, r["kind"], value, hits)


def test_heldout_sums_never_appear_in_any_form(manifest, pretrain_docs, sft, preference, world_dir):
    pairs = {tuple(p) for p in manifest["heldout"]["held_out_add_pairs"]}
    assert pairs == set(heldout_add_pairs(manifest["seed"]))
    assert sum(1 for a, b in pairs if b <= 9) >= 3, "want some single-digit held-out pairs"
    lines = [ln for d in pretrain_docs for ln in d.split("\n")]
    for ln in lines:
        assert _spells_sum([int(x) for x in INT.findall(ln)], pairs) is None, ln
        for a, b in pairs:
            assert not re.search(rf"\b({a} plus {b}|{b} plus {a}|{a} \+ {b}|{b} \+ {a})\b", ln), ln
    for q, a in _qa_units(sft, preference, world_dir):
        hit = _spells_sum([int(x) for x in INT.findall(q + " " + a)], pairs)
        assert hit is None, (q, a, hit)


def test_heldout_add_questions_cover_both_orders_and_word_problems(heldout, manifest):
    pairs = {tuple(p) for p in manifest["heldout"]["held_out_add_pairs"]}
    adds = [(r["task"]["a"], r["task"]["b"]) for r in heldout if r["kind"] == "add"]
    assert {(min(a, b), max(a, b)) for a, b in adds} == pairs
    assert len(adds) == sum(2 if a != b else 1 for a, b in pairs)
    words = [r for r in heldout if r["kind"] == "word_add"]
    assert len(words) == len(pairs)


def _lists_in(text: str) -> list[tuple[str, ...]]:
    out = []
    for m in re.finditer(r"(?::|The list) ((?:[\w]+, )+[\w]+)", text):
        out.append(tuple(sorted(x.strip() for x in m.group(1).split(","))))
    return out


def test_heldout_lists_never_appear_in_training_in_any_order(heldout, training_texts):
    held = {tuple(sorted(r["task"]["items"])) for r in heldout if r["kind"] in ("reverse", "sort", "count")}
    assert len(held) >= 100
    seen = [lst for text in training_texts.values() for lst in _lists_in(text)]
    assert len(seen) > 500, "the scan should find the training lists"
    assert not held & set(seen)


def test_manifest_documents_chance_levels(manifest, world):
    kinds = manifest["heldout"]["kinds"]
    for k in ("add", "word_add", "reverse", "sort", "count", "fact_home", "fact_age", "fact_pet", "fact_color"):
        assert k in kinds and kinds[k]["count"] > 0, k
    assert abs(kinds["add"]["chance"] - 1 / 19) < 1e-6  # single-digit sums 0..18
    assert abs(kinds["count"]["chance"] - 1 / 7) < 1e-6
    assert abs(kinds["fact_home"]["chance"] - 1 / len(world.towns)) < 1e-6
    assert abs(kinds["fact_age"]["chance"] - 1 / 76) < 1e-6  # ages 5..80
    assert 1 / 120 <= kinds["reverse"]["chance"] <= 1 / 6  # 3..5 items: 1/n!


def _ordered_sum(numbers: list[int], orders: set[tuple[int, int]]) -> tuple[int, int] | None:
    """Does x, y, x + y occur in this order (not necessarily adjacent) with (x, y) a held-out order?"""
    n = len(numbers)
    for i in range(n):
        for j in range(i + 1, n):
            if (numbers[i], numbers[j]) in orders and numbers[i] + numbers[j] in numbers[j + 1:]:
                return numbers[i], numbers[j]
    return None


def test_add_swap_orders_never_appear_but_their_mirrors_do(manifest, pretrain_docs, sft, preference, world_dir,
                                                          heldout):
    from stellarbyte.data.toyworld.heldout import heldout_add_orders

    orders = {tuple(p) for p in manifest["heldout"]["held_out_add_orders"]}
    assert orders == set(heldout_add_orders(manifest["seed"])) and len(orders) >= 10
    assert not {(b, a) for a, b in orders} & orders and not {(min(p), max(p)) for p in orders} & {
        tuple(p) for p in manifest["heldout"]["held_out_add_pairs"]}
    lines = [ln for d in pretrain_docs for ln in d.split("\n")]
    units = lines + [q + " " + a for q, a in _qa_units(sft, preference, world_dir)]
    for u in units:
        assert _ordered_sum([int(x) for x in INT.findall(u)], orders) is None, u
    text = "\n".join(units)
    mirrors = 0
    for a, b in orders:
        assert not re.search(rf"\b{a} (plus|\+) {b}\b|\bAdd {a} and {b}\b|\b{a} and {b} make\b", text), (a, b)
        mirrors += bool(re.search(rf"\b{b} (plus|\+) {a}\b", text))
    assert mirrors >= 0.75 * len(orders), f"only {mirrors} of {len(orders)} mirror orders are shown in training"
    swaps = [(r["task"]["a"], r["task"]["b"]) for r in heldout if r["kind"] == "add_swap"]
    assert set(swaps) == orders
    assert all(r["question"].startswith("What is ") for r in heldout if r["kind"] == "add_swap")
