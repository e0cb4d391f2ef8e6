"""AsyncLLM: concurrent streams each get their own exact answer, a cancelled stream frees its KV blocks,
bad requests fail before any output, and the engine keeps serving afterwards."""

import asyncio

import pytest
import torch
from tiny_models import tiny_model

from stellarbyte.infer.engine import SamplingParams
from stellarbyte.infer.engine.async_llm import AsyncLLM
from stellarbyte.infer.engine.config import EngineConfig
from stellarbyte.infer.engine.llm_engine import LLMEngine


def greedy(n):
    return SamplingParams(temperature=0, max_tokens=n, ignore_eos=True)


@pytest.fixture(scope="module")
def model():
    return tiny_model().double()


def test_concurrent_streams_are_exact(model):
    g = torch.Generator().manual_seed(0)
    prompts = [torch.randint(0, 128, (int(n),), generator=g).tolist() for n in torch.randint(1, 20, (12,), generator=g)]
    llm = AsyncLLM(LLMEngine(model, EngineConfig(block_size=4, num_blocks=40, max_num_seqs=5)))

    async def client(prompt, delay):
        await asyncio.sleep(delay)  # arrivals spread over time: requests join a running batch
        lengths, last = [], None
        async for out in llm.generate(prompt, greedy(8)):
            lengths.append(len(out.outputs[0].token_ids))
            last = out
        return lengths, last

    async def main():
        results = await asyncio.gather(*(client(p, 0.002 * i) for i, p in enumerate(prompts)))
        await llm.shutdown()
        return results

    for prompt, (lengths, last) in zip(prompts, asyncio.run(main())):
        ref = model.generate(torch.tensor([prompt]), max_new_tokens=8, eos_token_id=[])[0, len(prompt):].tolist()
        assert lengths == list(range(1, 9)) and last.finished
        assert last.outputs[0].token_ids == ref
    assert llm.engine.get_stats().num_free_blocks == 40


def test_cancelled_stream_frees_blocks(model):
    llm = AsyncLLM(LLMEngine(model, EngineConfig(block_size=4, num_blocks=40)))

    async def main():
        seen = []

        async def reader():
            async for out in llm.generate(list(range(1, 12)), greedy(100)):
                seen.append(len(out.outputs[0].token_ids))

        task = asyncio.create_task(reader())
        while len(seen) < 3:
            await asyncio.sleep(0.001)
        held = llm.engine.get_stats().num_free_blocks
        task.cancel()  # what a server does when the client disconnects
        with pytest.raises(asyncio.CancelledError):
            await task
        for _ in range(200):
            if not llm.engine.has_unfinished_requests():
                break
            await asyncio.sleep(0.005)
        free = llm.engine.get_stats().num_free_blocks
        # still serving afterwards
        outs = [o async for o in llm.generate([5, 6, 7], greedy(2))]
        await llm.shutdown()
        return held, free, seen, outs

    held, free, seen, outs = asyncio.run(main())
    assert held < 40 and free == 40 and len(seen) < 100
    assert outs[-1].finished and len(outs[-1].outputs[0].token_ids) == 2


def test_bad_request_fails_before_output(model):
    llm = AsyncLLM(LLMEngine(model, EngineConfig(block_size=4, num_blocks=40)))

    async def main():
        with pytest.raises(ValueError, match="context window"):
            async for _ in llm.generate([1] * 200, greedy(4)):
                pass
        outs = [o async for o in llm.generate([1, 2], greedy(3))]
        await llm.shutdown()
        return outs

    assert asyncio.run(main())[-1].outputs[0].finish_reason == "length"
