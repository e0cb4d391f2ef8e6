"""Memory-mapped loader of packed token shards: fixed-length (input, target) blocks for pretraining.

Reference: nanoGPT's `get_batch` (np.memmap over a flat uint16 file, x = tokens[i:i+T], y = tokens[i+1:i+T+1]),
extended with ordered epochs, data-parallel sharding and an exact resume position.

Contract:
- The split's shards form one token stream of N tokens. Sample s (0 <= s < S = (N - 1) // T) is the window
  tokens[s*T : s*T + T + 1]; input = window[:-1], target = window[1:]. Windows tile the stream, so every token is
  a target once per epoch (except the last N - S*T - 1 ones). A window crossing a shard boundary is stitched.
- Shards are np.memmap'ed and only the B windows of a batch are read (copies of B*(T+1) tokens); a shard is never
  read into RAM whole.
- Epoch e visits samples in order `permutation(S)` from numpy's PCG64 seeded with (seed, e) (or 0..S-1 with
  shuffle=False). Rank r of W takes positions r, r+W, r+2W, ... of that order, truncated so all ranks have the
  same number of samples: ranks get disjoint samples and the same number of batches (no DDP hang at epoch end).
- `state_dict()` is {epoch, batch} plus the settings it is valid for; `load_state_dict` checks them and continues
  with exactly the batches an uninterrupted loader would have produced.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import torch

from stellarbyte.data.pack import read_index


class PackedTokens:
    """One split of a packed dataset as a lazily memory-mapped token stream."""

    def __init__(self, path: str | os.PathLike, split: str = "train") -> None:
        self.path = Path(path)
        self.index = read_index(self.path)
        if split not in self.index["splits"]:
            raise ValueError(f"{path}: no split {split!r}; splits are {', '.join(self.index['splits'])}")
        self.split = split
        self.dtype = np.dtype(self.index["dtype"])
        shards = self.index["splits"][split]["shards"]
        self.files = [self.path / s["file"] for s in shards]
        self.sizes = np.array([s["num_tokens"] for s in shards], dtype=np.int64)
        self.starts = np.concatenate([[0], np.cumsum(self.sizes)])  # (num_shards + 1,)
        for f, n in zip(self.files, self.sizes):
            if not f.is_file() or f.stat().st_size != n * self.dtype.itemsize:
                raise ValueError(f"{f}: missing or not {n} tokens of {self.dtype}; the dataset is damaged, "
                                 f"pack it again with --overwrite")
        self._maps: dict[int, np.memmap] = {}

    def __len__(self) -> int:
        return int(self.starts[-1])

    def _map(self, k: int) -> np.memmap:
        if k not in self._maps:
            self._maps[k] = np.memmap(self.files[k], dtype=self.dtype, mode="r")
        return self._maps[k]

    def read(self, start: int, length: int) -> np.ndarray:
        """tokens[start : start+length] as int64, stitched across shard boundaries; copies only that slice."""
        if start < 0 or start + length > len(self):
            raise IndexError(f"read [{start}, {start + length}) outside 0..{len(self)}")
        out = np.empty(length, dtype=np.int64)
        k = int(np.searchsorted(self.starts, start, side="right")) - 1
        pos = 0
        while pos < length:
            off = start + pos - int(self.starts[k])
            take = min(length - pos, int(self.sizes[k]) - off)
            out[pos:pos + take] = self._map(k)[off:off + take]
            pos += take
            k += 1
        return out


class TokenBlockLoader:
    """Yields (input, target) LongTensors of shape (batch_size, seq_len) forever (or for num_epochs)."""

    def __init__(self, path: str | os.PathLike, batch_size: int, seq_len: int, split: str = "train", *,
                 rank: int = 0, world_size: int = 1, shuffle: bool = True, seed: int = 0,
                 num_epochs: int | None = None, device: str | torch.device | None = None) -> None:
        if batch_size < 1 or seq_len < 1:
            raise ValueError(f"batch_size and seq_len must be >= 1, got {batch_size}, {seq_len}")
        if world_size < 1 or not 0 <= rank < world_size:
            raise ValueError(f"need 0 <= rank < world_size, got rank={rank}, world_size={world_size}")
        self.tokens = PackedTokens(path, split)
        self.batch_size, self.seq_len, self.rank, self.world_size = batch_size, seq_len, rank, world_size
        self.shuffle, self.seed, self.num_epochs, self.device = shuffle, seed, num_epochs, device
        self.num_samples = (len(self.tokens) - 1) // seq_len if len(self.tokens) > 1 else 0
        self.samples_per_rank = self.num_samples // world_size
        self.batches_per_epoch = self.samples_per_rank // batch_size
        if self.batches_per_epoch == 0:
            raise ValueError(f"{path} [{split}]: {len(self.tokens)} tokens make {self.num_samples} windows of "
                             f"{seq_len}+1, too few for one batch of {batch_size} on each of {world_size} rank(s); "
                             f"lower --batch-size / --seq-len or pack more data")
        self.epoch, self.batch = 0, 0
        self._order_epoch, self._order = -1, np.empty(0, dtype=np.int64)

    def __len__(self) -> int:
        """Batches per epoch on this rank."""
        return self.batches_per_epoch

    def _rank_order(self, epoch: int) -> np.ndarray:
        """This rank's sample ids for `epoch`, cached: (samples_per_rank,) int64."""
        if self._order_epoch != epoch:
            if self.shuffle:
                order = np.random.default_rng([self.seed, epoch]).permutation(self.num_samples)
            else:
                order = np.arange(self.num_samples)
            self._order = order[self.rank : self.samples_per_rank * self.world_size : self.world_size]
            self._order_epoch = epoch
        return self._order

    def sample_ids(self, epoch: int, batch: int) -> np.ndarray:
        """The (batch_size,) sample ids of batch `batch` of `epoch` on this rank."""
        return self._rank_order(epoch)[batch * self.batch_size : (batch + 1) * self.batch_size]

    def get_batch(self, epoch: int, batch: int) -> tuple[torch.Tensor, torch.Tensor]:
        T = self.seq_len
        windows = np.stack([self.tokens.read(int(s) * T, T + 1) for s in self.sample_ids(epoch, batch)])  # (B, T+1)
        w = torch.from_numpy(windows)
        x, y = w[:, :-1].contiguous(), w[:, 1:].contiguous()  # (B, T) each, int64
        if self.device is not None and torch.device(self.device).type == "cuda":
            # pinned host memory lets the copy overlap with compute (non_blocking needs it to be truly async)
            x, y = x.pin_memory().to(self.device, non_blocking=True), y.pin_memory().to(self.device, non_blocking=True)
        elif self.device is not None:
            x, y = x.to(self.device), y.to(self.device)
        return x, y

    def __iter__(self) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        return self

    def __next__(self) -> tuple[torch.Tensor, torch.Tensor]:
        if self.batch >= self.batches_per_epoch:
            self.epoch, self.batch = self.epoch + 1, 0
        if self.num_epochs is not None and self.epoch >= self.num_epochs:
            raise StopIteration
        out = self.get_batch(self.epoch, self.batch)
        self.batch += 1
        return out

    # ---- resume --------------------------------------------------------------------------------------------------
    def _identity(self) -> dict:
        return {"content_hash": self.tokens.index.get("content_hash"), "split": self.tokens.split,
                "batch_size": self.batch_size, "seq_len": self.seq_len, "rank": self.rank,
                "world_size": self.world_size, "shuffle": self.shuffle, "seed": self.seed}

    def state_dict(self) -> dict:
        """Position (the next batch to yield) plus the settings it is valid for."""
        return {"epoch": self.epoch, "batch": self.batch, **self._identity()}

    def load_state_dict(self, state: dict) -> None:
        for key, value in self._identity().items():
            if state.get(key) != value:
                raise ValueError(f"loader state was saved with {key}={state.get(key)!r} but this loader has "
                                 f"{value!r}; resume with the same dataset and loader settings")
        if not 0 <= state["batch"] <= self.batches_per_epoch or state["epoch"] < 0:
            raise ValueError(f"loader state position epoch={state['epoch']} batch={state['batch']} is out of range")
        self.epoch, self.batch = int(state["epoch"]), int(state["batch"])
