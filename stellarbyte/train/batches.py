"""The batch format the training loop consumes, the default loss, and adapters from stellarbyte.data.

A batch is a dict of tensors:
    input_ids       (B, T) int64
    targets         (B, T) int64, ALIGNED with input_ids: targets[b, t] is the token to predict after position t;
                    IGNORE_INDEX (-100) where no loss is wanted (SFT prompts, padding)
    attention_mask  (B, T) optional, 1 = token, 0 = padding
    position_ids    (B, T) optional (packed SFT rows restart positions per conversation)

Why aligned targets rather than HF's unshifted `labels`: the pretraining loader already yields (x, y) shifted by
one over a window of T + 1 tokens, so every position has a target; shifting inside the loss would drop the last.
SFT batches (HF convention, labels unshifted) are converted once by `labels_to_targets`.

Loss contract: `loss_fn(model, batch)` returns the SUM of per-token losses; the trainer divides by the number of
targets in the whole accumulation window (`count_targets` summed over micro-batches). That makes batch 8 x accum 1
and batch 1 x accum 8 the same mean even when micro-batches hold different numbers of targets (the HF
"num_items_in_batch" fix); a mean per micro-batch would weight short micro-batches up.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable, Iterator
from typing import Any

import torch

from stellarbyte.data.loader import TokenBlockLoader

IGNORE_INDEX = -100
Batch = dict[str, torch.Tensor]


def count_targets(batch: Batch) -> int:
    return int((batch["targets"] != IGNORE_INDEX).sum())


def lm_loss(model: torch.nn.Module, batch: Batch) -> torch.Tensor:
    """Summed next-token cross-entropy (float32), plus the model's aux loss (MoE) once per target.

    The model computes it inside its own forward (ByteModel: `shift_labels` = our aligned targets,
    loss_reduction="sum", return_logits=False), so under torch.compile the LM head and the loss are part of the
    compiled graph and the (B, T, V) logits are never materialised (kernels.fused_linear_cross_entropy). The
    arithmetic is F.linear then F.cross_entropy(reduction="sum") on the torch reference path, as before."""
    out = model(batch["input_ids"], attention_mask=batch.get("attention_mask"),
                position_ids=batch.get("position_ids"), shift_labels=batch["targets"], loss_reduction="sum",
                return_logits=False)
    return out.loss


def labels_to_targets(labels: torch.Tensor) -> torch.Tensor:
    """HF unshifted labels (B, T) -> aligned targets (B, T): targets[:, t] = labels[:, t + 1], last = -100."""
    pad = torch.full_like(labels[:, :1], IGNORE_INDEX)
    return torch.cat([labels[:, 1:], pad], dim=1)


def to_device(batch: Batch, device: torch.device) -> Batch:
    return {k: v.to(device, non_blocking=True) for k, v in batch.items()}


class PretrainBatches:
    """TokenBlockLoader (x, y) pairs as batches; state_dict() is the loader's exact resume position."""

    def __init__(self, loader: TokenBlockLoader) -> None:
        self.loader = loader

    def __iter__(self) -> Iterator[Batch]:
        return self

    def __next__(self) -> Batch:
        x, y = next(self.loader)
        return {"input_ids": x, "targets": y}

    def state_dict(self) -> dict[str, Any]:
        return self.loader.state_dict()

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.loader.load_state_dict(state)


def pretrain_batches(data_dir: str | os.PathLike, batch_size: int, seq_len: int, *, shuffle: bool = True,
                     seed: int = 0, rank: int = 0, world_size: int = 1) -> PretrainBatches:
    if not os.path.isdir(data_dir):
        raise FileNotFoundError(f"{data_dir}: no such packed dataset; build one with `stellarbyte data pack` and "
                                f"pass its directory as data_dir")
    return PretrainBatches(TokenBlockLoader(data_dir, batch_size, seq_len, "train", shuffle=shuffle, seed=seed,
                                            rank=rank, world_size=world_size))


def validation_batches(data_dir: str | os.PathLike, batch_size: int, seq_len: int,
                       max_batches: int) -> Callable[[], Iterable[Batch]]:
    """A factory giving the same first `max_batches` validation batches (in order, unshuffled) each call."""
    loader = TokenBlockLoader(data_dir, batch_size, seq_len, "validation", shuffle=False)
    n = min(max_batches, len(loader))

    def batches() -> Iterator[Batch]:
        for i in range(n):
            x, y = loader.get_batch(0, i)
            yield {"input_ids": x, "targets": y}

    return batches


class SFTBatches:
    """Cycles over collated SFT batches (stellarbyte.data.sft.pad_collate / collate_packed outputs) in a fixed
    order; position = number of batches yielded, so resume is exact."""

    def __init__(self, collated: list[dict[str, torch.Tensor]]) -> None:
        if not collated:
            raise ValueError("no SFT batches: the dataset produced no examples with assistant tokens")
        self.batches = [self._convert(b) for b in collated]
        self.position = 0

    @staticmethod
    def _convert(b: dict[str, torch.Tensor]) -> Batch:
        out = {"input_ids": b["input_ids"], "targets": labels_to_targets(b["labels"])}
        for key in ("attention_mask", "position_ids"):
            if key in b:
                out[key] = b[key]
        return out

    def __iter__(self) -> Iterator[Batch]:
        return self

    def __next__(self) -> Batch:
        batch = self.batches[self.position % len(self.batches)]
        self.position += 1
        return batch

    def state_dict(self) -> dict[str, Any]:
        return {"position": self.position, "num_batches": len(self.batches)}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        if state.get("num_batches") != len(self.batches):
            raise ValueError(f"SFT data state was saved with {state.get('num_batches')} batches, this run has "
                             f"{len(self.batches)}; resume with the same data and batch size")
        self.position = int(state["position"])
