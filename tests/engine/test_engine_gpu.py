"""The engine on a CUDA device: float64 exactness against generate(), and bf16 paged logits against a plain
forward (the torch reference path is device-agnostic; the fast kernels will be compared against it)."""

import pytest
import torch
from tiny_models import tiny_model

from stellarbyte.infer.engine import LLM, SamplingParams

pytestmark = [pytest.mark.gpu, pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")]


def prompts(lengths, seed=0):
    g = torch.Generator().manual_seed(seed)
    return [torch.randint(0, 128, (n,), generator=g).tolist() for n in lengths]


def test_greedy_exact_on_cuda_float64():
    model = tiny_model().to("cuda", torch.float64)
    llm = LLM(model, block_size=4, num_blocks=14, max_num_batched_tokens=16)  # chunking and preemption
    ps = prompts((3, 17, 1, 30, 9))
    outs = llm.generate(ps, SamplingParams(temperature=0, max_tokens=16, ignore_eos=True))
    for p, o in zip(ps, outs):
        ref = model.generate(torch.tensor([p], device="cuda"), max_new_tokens=16, eos_token_id=[])
        assert o.outputs[0].token_ids == ref[0, len(p):].tolist()
    assert llm.engine.get_stats().num_preemptions > 0
    assert llm.engine.kv_cache.keys[0].device.type == "cuda"


def test_bf16_paged_logits_close_to_plain_forward():
    model = tiny_model().to("cuda", torch.bfloat16)
    llm = LLM(model, block_size=4, num_blocks=32)
    ps = prompts((5, 12, 8), seed=1)
    outs = llm.generate(ps, SamplingParams(temperature=0, max_tokens=1, ignore_eos=True, logprobs=5))
    for p, o in zip(ps, outs):
        with torch.no_grad():
            ref = torch.log_softmax(model(torch.tensor([p], device="cuda")).logits[0, -1].float(), -1)
        for token, value in o.outputs[0].logprobs[0].items():
            assert value == pytest.approx(float(ref[token]), abs=3e-2)


def test_pool_sized_from_gpu_memory_utilization():
    model = tiny_model().to("cuda")
    free, total = torch.cuda.mem_get_info()
    engine = LLM(model, block_size=16, gpu_memory_utilization=0.05).engine
    pool = engine.kv_cache.num_blocks * engine.kv_cache.keys[0][0].numel() * 4 * 2 * model.config.num_hidden_layers
    assert 0 < pool <= 0.05 * total - (total - free)
    out = engine.add_request([1, 2, 3], SamplingParams(temperature=0, max_tokens=2, ignore_eos=True))
    while engine.has_unfinished_requests():
        engine.step()
    assert out == "0"
