"""A byte-level BPE tokenizer in pure Python, written to be read top to bottom.

References: Sennrich, Haddow & Birch (2016) "Neural Machine Translation of Rare Words with Subword Units" (BPE for
text); Radford et al. (2019) GPT-2 (byte-level BPE, the pre-tokenization regex, the byte-to-printable-char map);
the HF `tokenizers` BpeTrainer, whose exact choices (below) we reproduce so that both learn the same merges.

The idea in four lines:
    1. Split text into "words" with a regex (so merges never cross a word/space/punctuation boundary).
    2. Write every word as its UTF-8 bytes: 256 base tokens, so any string can be encoded, nothing is unknown.
    3. Training: repeatedly find the most frequent adjacent pair of tokens (over all words, weighted by how often
       the word occurs), give the pair a new id, and replace it everywhere. Stop at `vocab_size` tokens.
    4. Encoding: split, bytes, then apply the learned merges in the order they were learned.

What must match HF `tokenizers` for the merges to be identical (tests/tokenizer/test_teaching_bpe.py pins it):
- Pair counts: every adjacent pair in a word counts, overlapping ones too ("aaa" has (a,a) twice), times the
  word's frequency. A merge inside a word is applied left to right, non-overlapping ("aaa" -> "aa" "a").
- Ids of the 256 base tokens: HF sorts its initial alphabet by the code point of the printable character each byte
  is shown as (GPT-2's map), not by byte value. So id 0 is byte 0x21 "!", not byte 0x00. New tokens take the next
  id in the order they are created.
- TIE-BREAKING: when several pairs have the same count, HF picks the pair (left_id, right_id) that is smallest as a
  tuple. That is why the base-token order above matters: with ids = byte values the counts would be the same but
  the first tie would be broken differently, and from there the merge lists diverge.
- Stopping: stop when the vocabulary has `vocab_size` tokens, or when the best count is below `min_frequency`.
- One corner where the implementations could differ: a merge that produces a token string which already exists
  (e.g. "ab"+"c" after "a"+"bc" made "abc"). Both reuse the existing id, but HF tracks the words to update per
  queue entry, so it may apply such a merge only in the words where the pair was newly formed, while we apply it
  in every word. We never observed the case: 5,500 random tie-heavy corpora over {a,b,c}, and TinyStories at
  vocab 8192, never repeated a token. Once a pair (A, B) is merged, no new (A, B) adjacency can ever form, which
  suggests that the case may be impossible. `merge_ids` records it if it does happen: a repeated id.
"""

from __future__ import annotations

import heapq
from collections import Counter, defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field

import regex  # the `regex` module: the stdlib `re` has no \p{L} (any letter) / \p{N} (any number)

# GPT-2's pre-tokenizer: English contractions, optional space + letters, optional space + digits, optional space +
# other symbols, whitespace not followed by non-space (so "  hello" -> " " + " hello"), remaining whitespace.
GPT2_SPLIT_PATTERN = r"""'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+"""
_SPLIT = regex.compile(GPT2_SPLIT_PATTERN)


def bytes_to_unicode() -> dict[int, str]:
    """GPT-2's map from the 256 byte values to printable characters (so tokens can be shown and stored as text).

    The 188 bytes that are already printable Latin-1 characters map to themselves; the other 68 (control
    characters, space, 0x7F-0xA0, 0xAD) map to code points 256, 257, ... in byte order. Space 0x20 -> "Ġ" (U+0120).
    """
    printable = [*range(ord("!"), ord("~") + 1), *range(ord("¡"), ord("¬") + 1), *range(ord("®"), ord("ÿ") + 1)]
    mapping = {b: chr(b) for b in printable}
    shifted = 0
    for b in range(256):
        if b not in mapping:
            mapping[b] = chr(256 + shifted)
            shifted += 1
    return mapping


BYTE_TO_CHAR = bytes_to_unicode()
# HF's id order for the base alphabet: sorted by the printable character's code point (see module docstring)
BASE_BYTES_IN_ID_ORDER: list[int] = sorted(range(256), key=lambda b: ord(BYTE_TO_CHAR[b]))


def pre_tokenize(text: str) -> list[str]:
    """Split text into the words BPE works inside: "Hello world!" -> ["Hello", " world", "!"]."""
    return _SPLIT.findall(text)


@dataclass
class TeachingBPE:
    """A trained byte-level BPE: `vocab[id]` is the token's bytes, `merges[k] = (left_id, right_id)` made id
    `merge_ids[k]`."""

    vocab: list[bytes] = field(default_factory=lambda: [bytes([b]) for b in BASE_BYTES_IN_ID_ORDER])
    merges: list[tuple[int, int]] = field(default_factory=list)
    merge_ids: list[int] = field(default_factory=list)

    def __post_init__(self) -> None:
        self._byte_to_id = {tok[0]: i for i, tok in enumerate(self.vocab[:256])}
        self._rank = {pair: (k, new) for k, (pair, new) in enumerate(zip(self.merges, self.merge_ids))}
        self._cache: dict[str, list[int]] = {}  # word -> ids; words repeat a lot in real text

    # ---- training -----------------------------------------------------------------------------------------------
    @classmethod
    def train(cls, texts: Iterable[str], vocab_size: int, min_frequency: int = 0) -> TeachingBPE:
        if vocab_size < 256:
            raise ValueError(f"vocab_size={vocab_size} is smaller than the 256 byte tokens; use at least 256")
        bpe = cls()
        # 1. count words. Words are independent, so a word seen 1000 times is processed once with weight 1000.
        word_counts: Counter[str] = Counter()
        for text in texts:
            word_counts.update(pre_tokenize(text))
        words: list[list[int]] = [[bpe._byte_to_id[b] for b in w.encode("utf-8")] for w in word_counts]
        counts: list[int] = list(word_counts.values())

        # 2. count every adjacent pair, and remember which words contain it (so a merge touches only those words)
        pair_counts: defaultdict[tuple[int, int], int] = defaultdict(int)
        where: defaultdict[tuple[int, int], set[int]] = defaultdict(set)
        for w, (symbols, n) in enumerate(zip(words, counts)):
            for pair in zip(symbols, symbols[1:]):
                pair_counts[pair] += n
                where[pair].add(w)

        # 3. a max-heap of (-count, left, right): heapq pops the smallest tuple, i.e. the highest count, and among
        # equal counts the smallest (left, right): HF's tie-break. Entries go stale when counts drop; we check
        # each popped entry against pair_counts and push it back with its current count if it changed.
        heap = [(-c, a, b) for (a, b), c in pair_counts.items()]
        heapq.heapify(heap)
        token_ids = {tok: i for i, tok in enumerate(bpe.vocab)}
        while len(bpe.vocab) < vocab_size and heap:
            neg, a, b = heapq.heappop(heap)
            current = pair_counts[(a, b)]
            if -neg != current:
                if current > 0:
                    heapq.heappush(heap, (-current, a, b))
                continue
            if current < 1 or current < min_frequency:
                break
            new_bytes = bpe.vocab[a] + bpe.vocab[b]
            new = token_ids.get(new_bytes)
            if new is None:  # the usual case: a brand-new token
                new = len(bpe.vocab)
                bpe.vocab.append(new_bytes)
                token_ids[new_bytes] = new
            bpe.merges.append((a, b))
            bpe.merge_ids.append(new)
            # 4. replace (a, b) by `new` in every word that has it, updating the pair counts incrementally
            changed: set[tuple[int, int]] = set()
            for w in where.pop((a, b)):
                for pair, delta in _merge_word(words[w], a, b, new):
                    pair_counts[pair] += delta * counts[w]
                    if delta > 0:
                        where[pair].add(w)
                        changed.add(pair)
            pair_counts[(a, b)] = 0
            for pair in changed:  # new pairs (those containing `new`) enter the heap with their full count
                if pair_counts[pair] > 0:
                    heapq.heappush(heap, (-pair_counts[pair], *pair))
        bpe.__post_init__()
        return bpe

    # ---- encoding / decoding ------------------------------------------------------------------------------------
    def encode(self, text: str) -> list[int]:
        ids: list[int] = []
        for word in pre_tokenize(text):
            cached = self._cache.get(word)
            if cached is None:
                cached = self._cache[word] = self._encode_word(word)
            ids.extend(cached)
        return ids

    def _encode_word(self, word: str) -> list[int]:
        symbols = [self._byte_to_id[b] for b in word.encode("utf-8")]
        while len(symbols) > 1:
            # the adjacent pair learned earliest is applied first (training order = priority)
            ranked = [(self._rank[p][0], p) for p in zip(symbols, symbols[1:]) if p in self._rank]
            if not ranked:
                break
            _, (a, b) = min(ranked)
            _merge_word(symbols, a, b, self._rank[(a, b)][1])
        return symbols

    def decode(self, ids: Iterable[int]) -> str:
        # errors="replace": a slice of ids may end inside a multi-byte character (HF's ByteLevel decoder does this too)
        return b"".join(self.vocab[i] for i in ids).decode("utf-8", errors="replace")

    # ---- inspection ---------------------------------------------------------------------------------------------
    def token_str(self, token_id: int) -> str:
        """The token as GPT-2/HF show it: each byte as its printable character (space -> "Ġ")."""
        return "".join(BYTE_TO_CHAR[b] for b in self.vocab[token_id])

    def merges_as_strings(self) -> list[tuple[str, str]]:
        """Merges in HF's tokenizer.json form, e.g. ("Ġ", "t"), for comparison with `tokenizers`."""
        return [(self.token_str(a), self.token_str(b)) for a, b in self.merges]


def _merge_word(symbols: list[int], a: int, b: int, new: int) -> list[tuple[tuple[int, int], int]]:
    """Replace each (a, b) in `symbols` by `new`, left to right, in place. Returns the pair-count changes:
    for "x a b y" -> "x N y": (x,a) -1, (x,N) +1, (b,y) -1, (N,y) +1. The merged pair's own count is reset by the
    caller."""
    changes = []
    i = 0
    while i < len(symbols) - 1:
        if symbols[i] == a and symbols[i + 1] == b:
            if i > 0:
                changes.append(((symbols[i - 1], a), -1))
                changes.append(((symbols[i - 1], new), 1))
            if i + 2 < len(symbols):
                changes.append(((b, symbols[i + 2]), -1))
                changes.append(((new, symbols[i + 2]), 1))
            symbols[i:i + 2] = [new]
        i += 1
    return changes
