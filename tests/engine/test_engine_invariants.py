"""A randomised stress run of the real engine with a small pool: after every step the block accounting holds
(reference counts == table entries, free list == blocks with no owner, shared blocks only where prefixes are
equal), and at the end every request matches generate() and every block is free."""

import random
from collections import Counter

import pytest
import torch
from tiny_models import tiny_model

from stellarbyte.infer.engine import LLMEngine, SamplingParams
from stellarbyte.infer.engine.config import EngineConfig


def check_invariants(engine):
    bm = engine.block_manager
    live = [s for seqs in engine.requests.values() for s in seqs if not s.is_finished]
    owners = Counter(b for s in live for b in s.block_table)
    for block in bm.blocks:
        assert block.ref_count == owners.get(block.block_id, 0)
        assert (block.block_id in bm.free) == (block.ref_count == 0)
    for h, b in bm.hash_to_block.items():
        assert bm.blocks[b].hash == h
    for s in live:
        assert len(s.block_table) * bm.block_size >= s.num_computed_tokens
        assert len(s.block_hashes) == s.num_computed_tokens // bm.block_size or not bm.enable_prefix_caching
    for a in live:  # a block shared by two sequences holds the same tokens at the same place in both
        for b in live:
            if a is b:
                continue
            for i, blk in enumerate(a.block_table):
                if blk in b.block_table:
                    j = b.block_table.index(blk)
                    assert i == j and a.block_tokens(i, bm.block_size) == b.block_tokens(j, bm.block_size)


@pytest.mark.slow
def test_random_arrivals_small_pool():
    model = tiny_model().double()
    engine = LLMEngine(model, EngineConfig(block_size=4, num_blocks=20, max_num_seqs=6, max_num_batched_tokens=24))
    rng = random.Random(0)
    system = [rng.randrange(128) for _ in range(9)]
    pending = []
    for i in range(24):
        tail = [rng.randrange(128) for _ in range(rng.randint(1, 20))]
        prompt = (system + tail) if rng.random() < 0.5 else tail
        pending.append((str(i), prompt, rng.randint(1, 16)))
    results, step = {}, 0
    while pending or engine.has_unfinished_requests():
        while pending and rng.random() < 0.4:
            rid, prompt, n = pending.pop(0)
            engine.add_request(prompt, SamplingParams(temperature=0, max_tokens=n, ignore_eos=True), request_id=rid)
            results[rid] = (prompt, n, None)
        for out in engine.step():
            if out.finished:
                prompt, n, _ = results[out.request_id]
                results[out.request_id] = (prompt, n, out.outputs[0].token_ids)
        check_invariants(engine)
        step += 1
        assert step < 2000
    stats = engine.get_stats()
    assert stats.num_preemptions > 0 and stats.prefix_cache_hit_rate > 0
    assert stats.num_free_blocks == 20
    for prompt, n, tokens in results.values():
        ref = model.generate(torch.tensor([prompt]), max_new_tokens=n, eos_token_id=[])[0, len(prompt):].tolist()
        assert tokens == ref
