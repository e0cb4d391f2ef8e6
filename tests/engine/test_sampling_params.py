"""SamplingParams: defaults as vLLM, and every bad field named in its ValueError."""

import pytest

from stellarbyte.infer.engine import SamplingParams


def test_defaults_and_normalisation():
    p = SamplingParams(top_k=-1, stop="###")
    assert p.top_k == 0 and p.stop == ["###"] and p.max_tokens == 16 and p.n == 1 and not p.greedy
    assert SamplingParams(temperature=0).greedy


@pytest.mark.parametrize("field, value", [
    ("n", 0), ("temperature", -0.1), ("temperature", float("nan")), ("top_k", -2), ("top_p", 0.0),
    ("top_p", 1.5), ("min_p", -0.1), ("repetition_penalty", 0.0), ("presence_penalty", 2.5),
    ("frequency_penalty", -3.0), ("max_tokens", 0), ("max_tokens", 2.5), ("stop", [""]),
    ("stop_token_ids", [-1]), ("seed", "x"), ("logprobs", -1), ("temperature", True),
])
def test_invalid_field_is_named(field, value):
    with pytest.raises(ValueError, match=rf"SamplingParams\.{field}="):
        SamplingParams(**{field: value})
