"""The checker: exact answers after normalisation, recomputed from the task's parameters."""

from __future__ import annotations

import pytest

from stellarbyte.data.toyworld import check_answer, expected_answer
from stellarbyte.data.toyworld.tasks import normalize


def test_numbers_accept_format_variants_and_reject_wrong():
    task = {"kind": "add", "a": 3, "b": 4}
    for ok in ("7", "7.", " 7 ", "7.0", "7!\nuser: more text", "\n\n7.", '"7"'):
        assert check_answer(task, ok), ok
    for bad in ("8", "6.", "seven", "The answer is 7.", "", "77", "7 8"):
        assert not check_answer(task, bad), bad


def test_each_arithmetic_kind_is_recomputed():
    assert expected_answer({"kind": "sub", "a": 12, "b": 5}) == "7"
    assert expected_answer({"kind": "mul", "a": 6, "b": 7}) == "42"
    assert expected_answer({"kind": "word_add", "a": 9, "b": 8}) == "17"
    assert expected_answer({"kind": "word_sub", "a": 9, "b": 8}) == "1"
    # a stored answer that disagrees with the parameters does not fool the checker
    assert check_answer({"kind": "add", "a": 2, "b": 2, "answer": "5"}, "4")
    assert not check_answer({"kind": "add", "a": 2, "b": 2, "answer": "5"}, "5")


def test_lists():
    items = ["pear", "apple", "fig"]
    assert expected_answer({"kind": "reverse", "items": items}) == "fig, apple, pear"
    assert expected_answer({"kind": "sort", "items": items}) == "apple, fig, pear"
    assert expected_answer({"kind": "count", "items": items}) == "3"
    assert expected_answer({"kind": "sort", "items": ["90", "45", "100"]}) == "45, 90, 100"  # by value
    assert check_answer({"kind": "sort", "items": items}, "Apple, fig,pear.")
    assert not check_answer({"kind": "sort", "items": items}, "apple, pear, fig.")
    assert not check_answer({"kind": "reverse", "items": items}, "fig, apple")
    assert check_answer({"kind": "count", "items": items}, "3.")


def test_facts_ignore_case_and_trailing_punctuation():
    task = {"kind": "fact_home", "subject": "Mia Stone", "attribute": "home", "answer": "Oakford"}
    assert check_answer(task, "Oakford.") and check_answer(task, "  oakford ") and check_answer(task, "OAKFORD!")
    assert not check_answer(task, "Oakdale.") and not check_answer(task, "She lives in Oakford.")
    friend = {"kind": "fact_friend", "answer": "Tom  Reed"}
    assert check_answer(friend, "tom reed.")


def test_whole_record_is_accepted_too():
    record = {"question": "What is 2 plus 3?", "answer": "5", "kind": "add", "task": {"kind": "add", "a": 2, "b": 3}}
    assert check_answer(record, "5.")


@pytest.mark.parametrize(
    "task, message",
    [({"kind": "divide", "a": 1, "b": 2}, "unknown task kind"), ({"kind": "add", "a": 1}, "lacks field 'b'"),
     ({"kind": "reverse", "items": []}, "empty"), ({"kind": "fact_home"}, "lacks field 'answer'")],
)
def test_malformed_tasks_raise(task, message):
    with pytest.raises(ValueError, match=message):
        check_answer(task, "1")


def test_non_dict_task_raises():
    with pytest.raises(ValueError, match="must be a dict"):
        check_answer("add", "1")  # type: ignore[arg-type]


def test_normalize():
    assert normalize("  Hello   World.!  \nsecond line") == "hello world"
    assert normalize("\n\n 'x' ") == "x"


def test_heldout_records_check_their_own_answers(heldout):
    for r in heldout:
        assert check_answer(r["task"], r["answer"] + "."), r
        assert r["answer"] == expected_answer(r["task"])
