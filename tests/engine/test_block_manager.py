"""BlockManager: free list, reference counts, LRU reuse, and the prefix cache (chained hashes, hit rate)."""

import pytest

from stellarbyte.infer.engine.block_manager import BlockManager, block_hash
from stellarbyte.infer.engine.sampling_params import SamplingParams
from stellarbyte.infer.engine.sequence import Sequence


def seq(tokens):
    return Sequence("r", list(tokens), SamplingParams())


def compute(bm, s, n):
    """What the engine does after a step: the tokens are now computed, full blocks get hashed."""
    s.num_computed_tokens += n
    bm.cache_computed_blocks(s)


def test_admit_allocates_ceil_blocks_and_free_returns_them():
    bm = BlockManager(8, 4)
    s = seq(range(10))
    assert bm.admit(s, 100) == 10
    assert len(s.block_table) == 3 and bm.num_free_blocks == 5
    assert all(bm.blocks[b].ref_count == 1 for b in s.block_table)
    compute(bm, s, 10)
    s.append_token(99)
    assert bm.allocate_slots(s, 1) and len(s.block_table) == 3  # slot 10 is still in block 2
    bm.free_sequence(s)
    assert bm.num_free_blocks == 8 and s.block_table == [] and s.num_computed_tokens == 0


def test_admit_respects_token_budget_and_never_overcommits():
    bm = BlockManager(3, 4)
    s = seq(range(20))
    assert bm.admit(s, 6) == 6 and len(s.block_table) == 2  # chunked: only the chunk's blocks
    compute(bm, s, 6)
    assert not bm.allocate_slots(s, 14)  # would need 5 blocks in all
    assert len(s.block_table) == 2 and bm.num_free_blocks == 1  # unchanged
    other = seq(range(100, 120))
    assert bm.admit(other, 8) == 0 and other.block_table == []


def test_prefix_hit_shares_blocks_and_counts_hit_rate():
    bm = BlockManager(16, 4)
    a = seq(range(10))
    bm.admit(a, 100)
    compute(bm, a, 10)  # blocks 0, 1 full and hashed; block 2 partial
    b = seq(list(range(8)) + [50, 51, 52])
    assert bm.admit(b, 100) == 3  # 8 tokens from the cache, 3 to compute
    assert b.block_table[:2] == a.block_table[:2] and b.block_table[2] != a.block_table[2]
    assert [bm.blocks[x].ref_count for x in b.block_table[:2]] == [2, 2]
    assert b.num_computed_tokens == b.num_cached_tokens == 8
    assert bm.stats.hit_tokens == 8 and bm.stats.queried_tokens == 21
    assert bm.stats.hit_rate == pytest.approx(8 / 21)


def test_hash_is_chained_with_the_prefix():
    assert block_hash(None, [1, 2]) != block_hash(block_hash(None, [0, 0]), [1, 2])
    bm = BlockManager(16, 2)
    a = seq([0, 0, 1, 2, 3])
    bm.admit(a, 100)
    compute(bm, a, 5)
    b = seq([9, 9, 1, 2, 3])  # block [1, 2] equal, prefix different: no hit
    bm.admit(b, 100)
    assert b.num_cached_tokens == 0


def test_last_token_is_always_computed():
    bm = BlockManager(16, 4)
    a = seq(range(8))
    bm.admit(a, 100)
    compute(bm, a, 8)
    b = seq(range(8))  # identical prompt, a multiple of the block size
    assert bm.admit(b, 100) == 4  # the last block is recomputed into a fresh block
    assert b.block_table[0] == a.block_table[0] and b.block_table[1] != a.block_table[1]


def test_freed_blocks_stay_cached_until_reused_lru():
    bm = BlockManager(4, 2)
    a = seq([1, 2, 3, 4, 5])
    bm.admit(a, 100)
    compute(bm, a, 5)
    head = a.block_table[0]
    bm.free_sequence(a)
    assert bm.num_free_blocks == 4
    b = seq([1, 2, 3, 4, 7])  # revives both cached blocks from the free list
    assert bm.admit(b, 100) == 1 and b.block_table[0] == head
    assert b.num_cached_tokens == 4 and bm.num_free_blocks == 1
    bm.free_sequence(b)
    c = seq(range(100, 107))  # needs all 4 blocks: every cached block is evicted
    assert bm.admit(c, 100) == 7
    assert bm.hash_to_block == {}
    compute(bm, c, 7)
    bm.free_sequence(c)
    d = seq([1, 2, 3, 4, 5])
    bm.admit(d, 100)
    assert d.num_cached_tokens == 0


def test_tail_blocks_are_evicted_first():
    bm = BlockManager(3, 2)
    a = seq([1, 2, 3, 4, 5, 6])
    bm.admit(a, 100)
    compute(bm, a, 6)  # three full, hashed blocks
    table = list(a.block_table)
    bm.free_sequence(a)
    filler = seq([60, 61])  # takes one block: the tail one, freed first
    bm.admit(filler, 100)
    assert filler.block_table == [table[2]]
    b = seq([1, 2, 3])  # the head block is still cached
    assert bm.admit(b, 100) == 1 and b.block_table[0] == table[0] and b.num_cached_tokens == 2


def test_prefix_caching_off():
    bm = BlockManager(8, 2, enable_prefix_caching=False)
    a = seq(range(5))
    bm.admit(a, 100)
    compute(bm, a, 5)
    b = seq(range(5))
    bm.admit(b, 100)
    assert b.num_cached_tokens == 0 and bm.hash_to_block == {}


def test_bad_sizes():
    with pytest.raises(ValueError, match="num_blocks"):
        BlockManager(0, 16)
