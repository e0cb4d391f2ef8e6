"""LLMEngine step by step: requests join a running batch mid-flight and leave it when done, outputs stream
per step, an aborted request frees its KV blocks at once, and stats add up."""

import torch
from tiny_models import tiny_model

from stellarbyte.infer.engine import LLMEngine, SamplingParams
from stellarbyte.infer.engine.config import EngineConfig


def greedy(n):
    return SamplingParams(temperature=0, max_tokens=n, ignore_eos=True)


def reference(model, prompt, n):
    return model.generate(torch.tensor([prompt]), max_new_tokens=n, eos_token_id=[])[0, len(prompt):].tolist()


def test_requests_join_and_leave_mid_flight():
    model = tiny_model().double()
    engine = LLMEngine(model, EngineConfig(block_size=4, num_blocks=32))
    a, b, c = [5, 6, 7, 8, 9], [11, 12], [20, 21, 22, 23, 24, 25, 26]
    engine.add_request(a, greedy(10), request_id="a")
    streamed: dict[str, list[list[int]]] = {"a": [], "b": [], "c": []}
    batch_sizes = []
    for step in range(40):
        if step == 3:
            engine.add_request(b, greedy(5), request_id="b")  # joins while a decodes
        if step == 5:
            engine.add_request(c, greedy(6), request_id="c")
        for out in engine.step():
            streamed[out.request_id].append(out.outputs[0].token_ids)
        batch_sizes.append(len(engine.scheduler.running))
        if not engine.has_unfinished_requests():
            break
    for rid, prompt, n in (("a", a, 10), ("b", b, 5), ("c", c, 6)):
        assert [len(x) for x in streamed[rid]] == list(range(1, n + 1))  # one more token per step
        assert streamed[rid][-1] == reference(model, prompt, n)
    assert max(batch_sizes) == 3 and batch_sizes[-2] == 1  # all three ran together; the last one finished alone
    stats = engine.get_stats()
    assert stats.num_generated_tokens == 21 and stats.num_free_blocks == 32
    assert stats.num_batched_tokens == (5 + 9) + (2 + 4) + (7 + 5)  # prompts + every fed-back token


def test_abort_frees_blocks_immediately():
    model = tiny_model()
    engine = LLMEngine(model, EngineConfig(block_size=4, num_blocks=16))
    engine.add_request(list(range(1, 14)), greedy(20), request_id="x")
    engine.add_request([1, 2, 3], greedy(20), request_id="y")
    for _ in range(3):
        engine.step()
    assert engine.get_stats().num_free_blocks < 16
    engine.abort_request("x")
    engine.abort_request("y")
    assert not engine.has_unfinished_requests() and engine.get_stats().num_free_blocks == 16
    assert engine.step() == []
