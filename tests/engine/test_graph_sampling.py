"""sample_in_graph: decode graphs that also draw the tokens. CUDA graphs need a GPU, so on the CPU a stand-in
DecodeGraphs "replays" by running the captured step function again on the same mirror views (what a graph replay
computes: the same kernels on the same addresses with the step's fresh metadata). Pinned: the step buffer's 1/T and
seed sections, the engine taking the graph's ids (greedy == generate(), with graph padding), near-zero temperature
== greedy, and rows the fused sampler does not serve (logprobs) falling back to the logits."""

import pytest
import torch
from tiny_models import tiny_model

from stellarbyte.infer.engine import LLM, SamplingParams
from stellarbyte.infer.engine import flat_batch as fb
from stellarbyte.infer.engine.cuda_graphs import DecodeGraphs
from stellarbyte.infer.engine.flat_runner import _graph_sampler


class EagerReplayGraphs(DecodeGraphs):
    """DecodeGraphs without CUDA: capture keeps each size's dummy metadata; replay re-runs the step on it."""

    def capture(self) -> None:
        for size in reversed(self.sizes):
            self.graphs[size] = self._dummy_decode(size)
        self.replays = 0

    def replay(self, size: int):
        self.replays += 1
        return self._step(self.graphs[size])


def engine_with_graph_sampling(model, **options) -> LLM:
    llm = LLM(model, attention_backend="flat", num_blocks=64, block_size=4, max_num_seqs=8, **options)
    runner = llm.engine.runner
    runner.graphs = EagerReplayGraphs(runner.builder, runner.forward, [1, 2, 4, 8], _graph_sampler)
    runner.graphs.capture()
    return llm


def test_builder_fills_inverse_temperature_and_seed():
    llm = engine_with_graph_sampling(tiny_model())
    engine = llm.engine
    for t in (0.0, 0.5):
        engine.add_request([1, 2, 3], SamplingParams(temperature=t, max_tokens=4, ignore_eos=True))
    engine.step()  # prefill (eager)
    batch = engine.scheduler.schedule()
    torch.manual_seed(5)
    meta = engine.runner.builder.build(batch, pad_seqs_to=4, sampling=True)
    assert meta.inv_temperature.tolist() == [0.0, 2.0, 0.0, 0.0]  # greedy, 1 / 0.5, padding
    torch.manual_seed(5)
    assert meta.seed.tolist() == [int(torch.randint(0, 2**31 - 1, ()))]  # torch's CPU generator fixes the seed
    for rid in list(engine.requests):
        engine.abort_request(rid)


def test_engine_uses_graph_sampled_ids(triton_device):
    if triton_device == "cuda":
        pytest.skip("the CPU stand-in for graphs; test_engine_gpu.py covers real graphs")
    model = tiny_model(qk_norm=True)
    ps = [[5, 9, 2, 7, 1], list(range(7, 30)), [9]]  # 3 sequences replay the graph of 4 (one pad row)
    llm = engine_with_graph_sampling(model)
    outs = llm.generate(ps, SamplingParams(temperature=0, max_tokens=5, ignore_eos=True))
    for p, o in zip(ps, outs):
        assert o.outputs[0].token_ids == model.generate(torch.tensor([p]), max_new_tokens=5,
                                                        eos_token_id=[])[0, len(p):].tolist()
    graphs = llm.engine.runner.graphs
    assert graphs.replays == 4  # every decode step replayed a graph
    cold = llm.generate(ps, SamplingParams(temperature=1e-4, max_tokens=5, ignore_eos=True))  # Gumbel noise << gaps
    assert [o.outputs[0].token_ids for o in cold] == [o.outputs[0].token_ids for o in outs]
    # logprobs are not served by the fused sampler: the engine samples the graph's logits instead, same tokens
    with_lp = llm.generate(ps, SamplingParams(temperature=0, max_tokens=5, ignore_eos=True, logprobs=2))
    assert [o.outputs[0].token_ids for o in with_lp] == [o.outputs[0].token_ids for o in outs]
    assert all(len(o.outputs[0].logprobs) == 5 for o in with_lp)
    assert fb.TABLES == fb.FlatBatchBuilder.TABLES
