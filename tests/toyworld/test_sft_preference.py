"""SFT conversations and preference pairs: well-formed, and every answer recomputed here independently."""

from __future__ import annotations

import json
import re

from stellarbyte.data.toyworld.sft import GREETINGS

ARITH = [
    (re.compile(r"^What is (\d+) (plus|\+|minus|-|times|x) (\d+)\?$"), lambda m: (m[1], m[2], m[3])),
    (re.compile(r"^(\d+) (plus|minus|times) (\d+) is what\?$"), lambda m: (m[1], m[2], m[3])),
    (re.compile(r"^Add (\d+) and (\d+)\.$"), lambda m: (m[1], "plus", m[2])),
    (re.compile(r"^Take (\d+) away from (\d+)\.$"), lambda m: (m[2], "minus", m[1])),
    (re.compile(r"^Multiply (\d+) by (\d+)\.$"), lambda m: (m[1], "times", m[2])),
]
OPS = {"plus": lambda a, b: a + b, "+": lambda a, b: a + b, "minus": lambda a, b: a - b, "-": lambda a, b: a - b,
       "times": lambda a, b: a * b, "x": lambda a, b: a * b}


def _fact_answer(world, q: str) -> str:
    names = [p.name for p in world.people] + [t.name for t in world.towns] + [c.name for c in world.countries]
    subject = max((n for n in names if re.search(rf"\b{re.escape(n)}\b", q)), key=len)
    low = q.lower()
    for keys, attr in ((("capital",), "capital"), (("country",), "country"), (("friend",), "friend"),
                       (("name", "called"), "pet_name"), (("old", "age"), "age"), (("live", "home"), "home"),
                       (("job", "work"), "job"), (("pet", "animal"), "pet"), (("color",), "color"),
                       (("food", "eat"), "food")):
        if any(k in low for k in keys):
            return world.fact_value(subject, attr)
    raise AssertionError(f"unrecognised question {q!r}")


def solve(world, q: str) -> str:
    """Answer a training question from scratch: the test's own parser, not the generator's templates."""
    for pattern, parts in ARITH:
        m = pattern.match(q)
        if m:
            a, op, b = parts(m)
            return str(OPS[op](int(a), int(b)))
    if ":" in q:  # list instruction
        head, items = q.split(":", 1)
        items = [x.strip() for x in items.strip().rstrip(".?").split(",")]
        if "everse" in head or "backwards" in head:
            return ", ".join(items[::-1])
        if "ort" in head or "order" in head:
            key = (lambda x: int(x)) if all(x.isdigit() for x in items) else str.lower
            return ", ".join(sorted(items, key=key))
        return str(len(items))
    if "How many" in q:  # word problem: first number, second number, and whether things were taken away
        a, b = (int(x) for x in re.findall(r"\d+", q))
        return str(a - b if "left" in q else a + b)
    return _fact_answer(world, q)


def test_every_conversation_is_well_formed(sft):
    assert len(sft) > 500
    n_system = n_multi = 0
    for conv in sft:
        msgs = conv["messages"]
        roles = [m["role"] for m in msgs]
        assert "assistant" in roles and roles[-1] == "assistant"
        body = roles[1:] if roles[0] == "system" else roles
        n_system += roles[0] == "system"
        assert "system" not in body
        assert body == ["user", "assistant"] * (len(body) // 2), roles
        n_multi += len(body) > 2
        assert all(isinstance(m["content"], str) and m["content"].strip() for m in msgs)
    assert 0.15 < n_system / len(sft) < 0.45 and 0.15 < n_multi / len(sft) < 0.5


def test_every_sft_answer_is_correct(sft, world):
    greetings = dict(GREETINGS)
    kinds = {"arith": 0, "list": 0, "word": 0, "fact": 0}
    for conv in sft:
        msgs = [m for m in conv["messages"] if m["role"] != "system"]
        for q, a in zip(msgs[::2], msgs[1::2]):
            if q["content"] in greetings:
                assert a["content"] == greetings[q["content"]]
                continue
            assert a["content"] == solve(world, q["content"]) + ".", q["content"]
            c = q["content"]
            kinds["list" if ":" in c else "arith" if any(p.match(c) for p, _ in ARITH) else
                  "word" if "How many" in c else "fact"] += 1
    assert all(v > 50 for v in kinds.values()), kinds


def test_preference_pairs_prefer_the_right_answer(preference, world):
    assert len(preference) > 300
    for p in preference:
        right = solve(world, p["prompt"]) + "."
        assert p["chosen"] == right, p
        assert p["rejected"] != right and p["rejected"].rstrip(".").lower() != right.rstrip(".").lower(), p
        # plausible: a wrong number for a number question, a wrong list for a list question
        assert p["rejected"].rstrip(".").isdigit() == right.rstrip(".").isdigit(), p


def test_rl_tasks_are_correct_and_checkable(world_dir, world):
    from stellarbyte.data.toyworld import check_answer

    records = [json.loads(x) for x in (world_dir / "rl/train.jsonl").read_text().splitlines()]
    assert len(records) > 50
    for r in records:
        assert r["answer"] == solve(world, r["question"])
        assert check_answer(r["task"], r["answer"] + ".")
