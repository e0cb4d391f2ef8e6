"""Exact-match accuracy on the toy world's held-out questions, per kind, with each kind's chance rate beside it.

The held-out set (stellarbyte.data.toyworld.heldout; docs/toyworld.md) holds facts, sums, swapped sums and list
operations that no training file asks about. A reply is right when `check_answer(task, reply)` accepts it (exact
match on the first line after trimming punctuation and case; "The answer is 7." is wrong by design).

Chance of a kind = mean over its scored items of the item's own chance (1 / number of candidate answers, recorded
in each task by the toy world), so it is exactly the expected accuracy of an answerer that guesses uniformly among
the candidates. Overall chance = the same mean over all scored items (not the mean of the kinds' chances).

An answerer maps a list of questions to a list of replies. `generate_answerer` answers one question at a time
through ByteModel.generate (greedy, chat template with add_generation_prompt, stop at <|im_end|> or EOS);
`engine_answerer` sends all of them at once to the serving engine (stellarbyte.infer.engine.LLM.chat, greedy,
continuous batching), which is faster for hundreds of questions and gives the same greedy tokens up to float
rounding between batched and unbatched matmuls.

References: the held-out design in docs/toyworld.md; exact-match scoring as in SQuAD / GSM8K-style evaluation.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import Any

import torch

Answerer = Callable[[list[str]], list[str]]
MAX_NEW_TOKENS = 24  # every toy-world answer is a value and a period; 24 tokens fit the longest list


@dataclass(slots=True)
class KindResult:
    n: int
    correct: int
    accuracy: float
    chance: float


@dataclass(slots=True)
class TaskReport:
    kinds: dict[str, KindResult]
    n: int
    correct: int
    accuracy: float            # overall: correct / n over every scored item
    chance: float              # overall: mean chance over every scored item
    replies: list[dict[str, Any]] = field(default_factory=list)  # {kind, question, reply, expected, correct}

    @property
    def kinds_above_chance(self) -> list[str]:
        return sorted(k for k, r in self.kinds.items() if r.accuracy > r.chance)

    def to_dict(self, with_replies: bool = False) -> dict[str, Any]:
        d = {"kinds": {k: asdict(v) for k, v in self.kinds.items()}, "n": self.n, "correct": self.correct,
             "accuracy": self.accuracy, "chance": self.chance, "kinds_above_chance": self.kinds_above_chance}
        if with_replies:
            d["replies"] = self.replies
        return d


def select(records: list[dict], per_kind: int | None = None) -> dict[str, list[dict]]:
    """Records grouped by kind (sorted), the first per_kind of each kind in file order."""
    if per_kind is not None and per_kind < 1:
        raise ValueError(f"per_kind must be >= 1 (or None for all), got {per_kind}")
    by_kind: dict[str, list[dict]] = defaultdict(list)
    for r in records:
        for key in ("question", "kind", "task"):
            if key not in r:
                raise ValueError(f"held-out record without {key!r}: {str(r)[:80]}; expected eval/heldout.jsonl rows")
        if per_kind is None or len(by_kind[r["kind"]]) < per_kind:
            by_kind[r["kind"]].append(r)
    return {k: by_kind[k] for k in sorted(by_kind)}


def score(records: list[dict], answerer: Answerer, per_kind: int | None = None) -> TaskReport:
    """Ask every selected question (one answerer call), score with check_answer, aggregate per kind."""
    from stellarbyte.data.toyworld import check_answer

    groups = select(records, per_kind)
    items = [r for group in groups.values() for r in group]
    if not items:
        raise ValueError("no held-out questions to score")
    replies = answerer([r["question"] for r in items])
    if len(replies) != len(items):
        raise ValueError(f"the answerer returned {len(replies)} replies for {len(items)} questions")
    kinds, log, pos = {}, [], 0
    for kind, group in groups.items():
        correct = 0
        for r in group:
            ok = bool(check_answer(r["task"], replies[pos]))
            correct += ok
            log.append({"kind": kind, "question": r["question"], "reply": replies[pos], "expected": r.get("answer"),
                        "correct": ok})
            pos += 1
        chance = sum(float(r["task"]["chance"]) for r in group) / len(group)
        kinds[kind] = KindResult(n=len(group), correct=correct, accuracy=correct / len(group), chance=chance)
    n = len(items)
    total = sum(k.correct for k in kinds.values())
    chance = sum(float(r["task"]["chance"]) for r in items) / n
    return TaskReport(kinds=kinds, n=n, correct=total, accuracy=total / n, chance=chance, replies=log)


# ---- answerers ---------------------------------------------------------------------------------------------


def _stop_ids(tokenizer: Any) -> list[int]:
    ids = [getattr(tokenizer, "im_end_token_id", None), getattr(tokenizer, "eos_token_id", None)]
    return [i for i in ids if i is not None]


def generate_answerer(model: torch.nn.Module, tokenizer: Any, max_new_tokens: int = MAX_NEW_TOKENS,
                      progress: Callable[[int], None] | None = None) -> Answerer:
    """Greedy replies through ByteModel.generate, one question at a time (the reference path)."""

    @torch.no_grad()
    def answer(questions: list[str]) -> list[str]:
        model.eval()
        out = []
        for q in questions:
            prompt = tokenizer.apply_chat_template([{"role": "user", "content": q}], add_generation_prompt=True,
                                                   tokenize=True)
            ids = torch.tensor([prompt], device=model.device)  # (1, P)
            gen = model.generate(ids, max_new_tokens=max_new_tokens, do_sample=False,
                                 eos_token_id=_stop_ids(tokenizer))  # (1, P + new)
            out.append(tokenizer.decode(gen[0, ids.shape[1]:].tolist(), skip_special_tokens=True).strip())
            if progress is not None:
                progress(1)
        return out

    return answer


def engine_answerer(model: torch.nn.Module, tokenizer: Any, max_new_tokens: int = MAX_NEW_TOKENS,
                    max_num_seqs: int = 64) -> Answerer:
    """Greedy replies from the serving engine, all questions queued at once (continuous batching)."""
    from stellarbyte.infer.engine import LLM, SamplingParams

    llm = LLM(model, tokenizer=tokenizer, max_num_seqs=max_num_seqs)
    params = SamplingParams(temperature=0.0, max_tokens=max_new_tokens, stop_token_ids=_stop_ids(tokenizer))

    def answer(questions: list[str]) -> list[str]:
        outs = llm.chat([[{"role": "user", "content": q}] for q in questions], params)
        return [tokenizer.decode(o.outputs[0].token_ids, skip_special_tokens=True).strip() for o in outs]

    return answer


# ---- report ------------------------------------------------------------------------------------------------


def format_table(report: TaskReport) -> str:
    """Per-kind accuracy, chance and their ratio, then the overall row."""
    lines = [f"  {'kind':<14} {'n':>4} {'correct':>7} {'accuracy':>9} {'chance':>8}  vs chance",
             f"  {'-' * 14} {'-' * 4} {'-' * 7} {'-' * 9} {'-' * 8}  {'-' * 9}"]

    def row(name: str, n: int, correct: int, acc: float, chance: float) -> str:
        ratio = acc / chance if chance > 0 else float("inf")
        return f"  {name:<14} {n:>4} {correct:>7} {acc:>9.3f} {chance:>8.3f}  {ratio:>8.1f}x"

    for kind, r in report.kinds.items():
        lines.append(row(kind, r.n, r.correct, r.accuracy, r.chance))
    lines.append(f"  {'-' * 14} {'-' * 4} {'-' * 7} {'-' * 9} {'-' * 8}  {'-' * 9}")
    lines.append(row("overall", report.n, report.correct, report.accuracy, report.chance))
    return "\n".join(lines)
