"""Held-out task scoring: an oracle scores 1, a constant answerer scores its expected rate (counted independently
from the records' answers), chance rates are the items' means, and the two model answerers agree."""

from __future__ import annotations

import re

import pytest
import torch

from stellarbyte.eval.tasks import engine_answerer, format_table, generate_answerer, score, select


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    from stellarbyte.data.toyworld import build_toyworld

    out = tmp_path_factory.mktemp("tw") / "world"
    build_toyworld(out, size="300KB", seed=0)
    return out


@pytest.fixture(scope="module")
def records(world):
    from stellarbyte.data.toyworld import load_heldout

    return load_heldout(world)


def test_oracle_scores_one(records):
    by_question = {r["question"]: r["answer"] for r in records}
    report = score(records, lambda qs: [by_question[q] for q in qs])
    assert report.accuracy == 1.0 and report.correct == report.n == len(records)
    assert all(k.accuracy == 1.0 for k in report.kinds.values())
    assert report.kinds_above_chance == sorted(report.kinds)


def _normal(text: str) -> str:
    return re.sub(r"[\s.]+$", "", text.strip()).lower()


@pytest.mark.parametrize("constant", ["7.", "Oakford.", "3"])
def test_constant_answerer_scores_its_expected_rate(records, constant):
    report = score(records, lambda qs: [constant] * len(qs))
    for kind, r in report.kinds.items():
        items = [x for x in records if x["kind"] == kind]
        # expected rate, from the records' stated answers (not from check_answer)
        expected = sum(_normal(str(x["answer"])) == _normal(constant) for x in items) / len(items)
        assert r.accuracy == pytest.approx(expected), kind
        assert r.chance == pytest.approx(sum(x["task"]["chance"] for x in items) / len(items))
    assert report.chance == pytest.approx(sum(x["task"]["chance"] for x in records) / len(records))
    assert report.accuracy == pytest.approx(report.correct / report.n)
    if constant == "7.":
        assert report.correct > 0  # some count / sum answers are 7: the test exercises a non-zero rate


def test_per_kind_selection_and_table(records):
    groups = select(records, per_kind=2)
    kinds = {r["kind"] for r in records}
    assert list(groups) == sorted(kinds)
    for kind, group in groups.items():
        assert group == [r for r in records if r["kind"] == kind][:2]
    report = score(records, lambda qs: ["nothing"] * len(qs), per_kind=2)
    assert report.n == sum(len(g) for g in groups.values()) and report.correct == 0
    table = format_table(report)
    assert "overall" in table and all(k in table for k in kinds)
    with pytest.raises(ValueError, match="returned 1 replies"):
        score(records, lambda qs: ["x"], per_kind=2)
    with pytest.raises(ValueError, match="per_kind must be >= 1"):
        select(records, per_kind=0)


@pytest.fixture(scope="module")
def tiny_chat_model(world, tmp_path_factory):
    from stellarbyte import ByteConfig, ByteModel
    from stellarbyte.tokenizer import train_tokenizer

    tok = train_tokenizer([world / "pretrain" / "train.txt"], 300, tmp_path_factory.mktemp("tok"))
    torch.manual_seed(0)
    model = ByteModel(ByteConfig(vocab_size=tok.vocab_size, hidden_size=32, intermediate_size=64,
                                 num_hidden_layers=2, num_attention_heads=2, max_position_embeddings=256,
                                 initializer_range=0.3)).eval()
    return model, tok


def test_generate_and_engine_answerers_agree(records, tiny_chat_model):
    model, tok = tiny_chat_model
    questions = [g[0]["question"] for g in select(records, per_kind=1).values()][:6]
    by_generate = generate_answerer(model, tok, max_new_tokens=8)(questions)
    by_engine = engine_answerer(model, tok, max_new_tokens=8)(questions)
    assert by_generate == by_engine
    # the reference path is ByteModel.generate on the chat-templated prompt, decoded without special tokens
    ids = tok.apply_chat_template([{"role": "user", "content": questions[0]}], add_generation_prompt=True,
                                  tokenize=True)
    out = model.generate(torch.tensor([ids]), max_new_tokens=8, do_sample=False,
                         eos_token_id=[tok.im_end_token_id, tok.eos_token_id])
    assert by_generate[0] == tok.decode(out[0, len(ids):].tolist(), skip_special_tokens=True).strip()
