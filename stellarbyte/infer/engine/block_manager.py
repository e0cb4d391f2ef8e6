"""Fixed-size KV blocks: a free list, reference counts, block tables, and the prefix cache.

References: Kwon et al., 2023 (PagedAttention / vLLM); vLLM's automatic prefix caching; nano-vllm.
  A block holds the K/V of `block_size` consecutive tokens of one sequence. Sequences own block tables;
  blocks are shared (ref_count > 1) when several sequences start with the same tokens.
  prefix cache: a full, computed block i gets hash_i = sha256(hash_{i-1} || token ids of block i), so equal
  hashes mean equal *prefixes*, not just equal blocks. A block whose ref_count drops to 0 joins the free list
  but keeps its hash: until it is reused for other tokens, a later request can revive it (a cache hit).
  The free list is LRU: allocation takes the block freed longest ago, and a sequence frees its blocks tail
  first, so the shared head of a prompt survives longest.
Contract: allocate_slots never over-commits (it returns False and changes nothing when blocks are short);
only blocks whose K/V have been written are hashed (cache_computed_blocks after a step), so a cache hit
never reads K/V that a chunked prefill has not produced yet.
"""

from __future__ import annotations

import hashlib
from collections import OrderedDict
from dataclasses import dataclass

from stellarbyte.infer.engine.sequence import Sequence


def block_hash(parent: bytes | None, token_ids: list[int]) -> bytes:
    """Prefix-chained content hash of one full block."""
    h = hashlib.sha256(parent or b"")
    h.update(",".join(map(str, token_ids)).encode())
    return h.digest()


@dataclass(slots=True)
class Block:
    block_id: int
    ref_count: int = 0
    hash: bytes | None = None
    token_ids: tuple[int, ...] = ()  # kept to rule out hash collisions


@dataclass(slots=True)
class PrefixCacheStats:
    queried_tokens: int = 0  # prompt tokens looked up at admission
    hit_tokens: int = 0  # of those, served from cached blocks

    @property
    def hit_rate(self) -> float:
        return self.hit_tokens / self.queried_tokens if self.queried_tokens else 0.0


class BlockManager:
    def __init__(self, num_blocks: int, block_size: int, enable_prefix_caching: bool = True) -> None:
        if num_blocks < 1 or block_size < 1:
            raise ValueError(f"num_blocks={num_blocks} and block_size={block_size} must both be >= 1")
        self.block_size = block_size
        self.enable_prefix_caching = enable_prefix_caching
        self.blocks = [Block(i) for i in range(num_blocks)]
        self.free: OrderedDict[int, None] = OrderedDict((i, None) for i in range(num_blocks))  # LRU order
        self.hash_to_block: dict[bytes, int] = {}
        self.stats = PrefixCacheStats()

    @property
    def num_free_blocks(self) -> int:
        return len(self.free)

    def blocks_needed(self, num_tokens: int) -> int:
        return -(-num_tokens // self.block_size)

    # ---- prefix cache lookup ------------------------------------------------------------------------------
    def _cached_prefix(self, seq: Sequence) -> list[int]:
        """Block ids of the longest cached prefix; at least the last token is always left to compute, since
        its logits are needed (and a shared block must never be written)."""
        if not self.enable_prefix_caching:
            return []
        hits, parent = [], None
        for i in range((len(seq) - 1) // self.block_size):
            tokens = seq.block_tokens(i, self.block_size)
            parent = block_hash(parent, tokens)
            block_id = self.hash_to_block.get(parent)
            if block_id is None or self.blocks[block_id].token_ids != tuple(tokens):
                break
            hits.append(block_id)
        return hits

    def admit(self, seq: Sequence, max_new_tokens: int) -> int:
        """Attach the cached prefix to a waiting sequence and allocate blocks for up to max_new_tokens more.
        Returns the number of tokens to compute this step, or 0 (nothing changed) when blocks are short."""
        assert not seq.block_table and seq.num_computed_tokens == 0
        hits = self._cached_prefix(seq)
        cached = len(hits) * self.block_size
        num_new = min(len(seq) - cached, max_new_tokens)
        revived = sum(1 for b in hits if self.blocks[b].ref_count == 0)  # hits sitting on the free list
        fresh = self.blocks_needed(cached + num_new) - len(hits)
        if num_new <= 0 or revived + fresh > self.num_free_blocks:
            return 0
        for b in hits:
            if self.blocks[b].ref_count == 0:
                del self.free[b]
            self.blocks[b].ref_count += 1
        seq.block_table = list(hits)
        seq.block_hashes = [self.blocks[b].hash for b in hits]
        seq.num_computed_tokens = seq.num_cached_tokens = cached
        self.stats.queried_tokens += len(seq)
        self.stats.hit_tokens += cached
        self._grow(seq, fresh)
        return num_new

    # ---- allocation ------------------------------------------------------------------------------------------
    def allocate_slots(self, seq: Sequence, num_new_tokens: int) -> bool:
        """Make room for num_new_tokens more K/V entries of a running sequence; False if blocks are short."""
        need = self.blocks_needed(seq.num_computed_tokens + num_new_tokens) - len(seq.block_table)
        if need > self.num_free_blocks:
            return False
        self._grow(seq, need)
        return True

    def _grow(self, seq: Sequence, count: int) -> None:
        for _ in range(count):
            block_id, _ = self.free.popitem(last=False)  # least recently freed
            block = self.blocks[block_id]
            if block.hash is not None and self.hash_to_block.get(block.hash) == block_id:
                del self.hash_to_block[block.hash]  # evict: this block now holds other tokens
            block.hash, block.token_ids, block.ref_count = None, (), 1
            seq.block_table.append(block_id)

    def free_sequence(self, seq: Sequence) -> None:
        for block_id in reversed(seq.block_table):  # tail first: the shared head stays cached longest
            block = self.blocks[block_id]
            block.ref_count -= 1
            assert block.ref_count >= 0
            if block.ref_count == 0:
                self.free[block_id] = None
        seq.block_table, seq.block_hashes = [], []
        seq.num_computed_tokens = 0

    # ---- prefix cache registration ---------------------------------------------------------------------------
    def cache_computed_blocks(self, seq: Sequence) -> None:
        """Hash every full block whose K/V are now in the cache (call after the step that computed them)."""
        if not self.enable_prefix_caching:
            return
        full = seq.num_computed_tokens // self.block_size
        for i in range(len(seq.block_hashes), full):
            tokens = seq.block_tokens(i, self.block_size)
            h = block_hash(seq.block_hashes[-1] if seq.block_hashes else None, tokens)
            seq.block_hashes.append(h)
            block = self.blocks[seq.block_table[i]]
            if block.hash is None:
                block.hash, block.token_ids = h, tuple(tokens)
                self.hash_to_block.setdefault(h, block.block_id)  # a twin computed earlier stays the cached one
