"""SFT data: conversations -> token ids with labels on assistant tokens only, then padded or packed batches.

Conventions (Hugging Face): `labels` are NOT shifted; the loss compares logits[:, t] with labels[:, t+1], and
IGNORE_INDEX (-100) marks tokens that carry no loss (system / user turns, template markers, padding).

Truncation policy (SFTConfig.truncation), stated once here and in docs/data.md:
- "right" (default): keep the first max_length tokens. The system prompt and the earliest turns survive; a turn
  cut in the middle keeps its first tokens. If no assistant token survives, the conversation is skipped and
  counted as "no_labels_after_truncation".
- "drop": a conversation longer than max_length is skipped and counted as "too_long".
A conversation with no assistant turn is skipped and counted as "no_assistant_turn" (or raises with strict=True).

Batching:
- `pad_collate`: right-pad with the tokenizer's pad id (never EOS: an EOS pad would be indistinguishable from a real
  end of document), attention_mask 0 on padding, labels -100 on padding.
- `pack_examples` + `collate_packed`: first-fit packing of whole conversations into rows of max_length. Each row
  carries position_ids restarting at 0 per conversation, document_ids (1, 2, ... per conversation, 0 on padding)
  and flattened cu_seqlens for varlen attention; `packed_attention_mask` turns document_ids into the block-
  diagonal causal mask so conversations never attend to each other (tests check it equals attending to each
  conversation alone).
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass

import torch

from stellarbyte.data.conversations import (
    IGNORE_INDEX,
    NoAssistantTurn,
    encode_with_mask,
    render_with_spans,
    to_messages,
)
from stellarbyte.data.records import Stats
from stellarbyte.data.tokenizing import TokenizerLike


@dataclass(slots=True)
class SFTConfig:
    max_length: int = 2048
    truncation: str = "right"
    strict: bool = False

    def __post_init__(self) -> None:
        if self.max_length < 2:
            raise ValueError(f"max_length must be >= 2, got {self.max_length}")
        if self.truncation not in ("right", "drop"):
            raise ValueError(f"truncation must be 'right' or 'drop', got {self.truncation!r}")


@dataclass(slots=True)
class SFTExample:
    input_ids: list[int]
    labels: list[int]  # IGNORE_INDEX except on assistant tokens

    def __post_init__(self) -> None:
        assert len(self.input_ids) == len(self.labels)


def tokenize_conversation(example, tokenizer: TokenizerLike, config: SFTConfig | None = None) -> SFTExample:
    """One conversation (any accepted format) -> SFTExample, truncated per config; raises NoAssistantTurn /
    ValueError when it has nothing left to train on."""
    config = config or SFTConfig()
    messages = to_messages(example)
    text, spans = render_with_spans(messages, tokenizer)
    ids, mask = encode_with_mask(text, spans, tokenizer)
    if len(ids) > config.max_length:
        if config.truncation == "drop":
            raise ValueError(f"too_long: {len(ids)} tokens > max_length {config.max_length}")
        ids, mask = ids[: config.max_length], mask[: config.max_length]
        if not any(mask):
            raise ValueError("no_labels_after_truncation: no assistant token within max_length")
    return SFTExample(ids, [i if m else IGNORE_INDEX for i, m in zip(ids, mask)])


def build_sft_examples(examples: Iterable, tokenizer: TokenizerLike, config: SFTConfig | None = None,
                       stats: Stats | None = None) -> Iterator[SFTExample]:
    """Tokenize a stream of conversations, skipping (and counting) the unusable ones unless strict."""
    config = config or SFTConfig()
    stats = stats if stats is not None else Stats("sft")
    for i, ex in enumerate(examples):
        stats.seen += 1
        try:
            out = tokenize_conversation(ex, tokenizer, config)
        except NoAssistantTurn as err:
            if config.strict:
                raise NoAssistantTurn(f"example {i}: {err}; add an assistant reply or drop the example") from err
            stats.remove("no_assistant_turn")
            continue
        except ValueError as err:
            reason = str(err).split(":")[0]
            if config.strict or reason not in ("too_long", "no_labels_after_truncation"):
                raise ValueError(f"example {i}: {err}") from err
            stats.remove(reason)
            continue
        stats.kept += 1
        yield out


def pad_collate(examples: list[SFTExample], pad_token_id: int | None,
                pad_to_multiple_of: int = 1) -> dict[str, torch.Tensor]:
    """Right-padded batch: input_ids, labels, attention_mask, each (B, L) with L = longest (rounded up)."""
    if pad_token_id is None:
        raise ValueError("the tokenizer has no pad_token_id; padding needs a dedicated pad token (not EOS)")
    L = max(len(e.input_ids) for e in examples)
    L = -(-L // pad_to_multiple_of) * pad_to_multiple_of
    B = len(examples)
    input_ids = torch.full((B, L), pad_token_id, dtype=torch.long)
    labels = torch.full((B, L), IGNORE_INDEX, dtype=torch.long)
    attention_mask = torch.zeros((B, L), dtype=torch.long)
    for b, e in enumerate(examples):
        n = len(e.input_ids)
        input_ids[b, :n] = torch.tensor(e.input_ids)
        labels[b, :n] = torch.tensor(e.labels)
        attention_mask[b, :n] = 1
    return {"input_ids": input_ids, "labels": labels, "attention_mask": attention_mask}


def pack_examples(examples: Iterable[SFTExample], max_length: int) -> list[list[SFTExample]]:
    """First-fit packing, in input order, of whole examples into rows of at most max_length tokens."""
    rows: list[list[SFTExample]] = []
    room: list[int] = []
    for e in examples:
        n = len(e.input_ids)
        if n > max_length:
            raise ValueError(f"an example of {n} tokens exceeds the pack length {max_length}; tokenize with "
                             f"SFTConfig(max_length={max_length})")
        for r, free in enumerate(room):
            if n <= free:
                rows[r].append(e)
                room[r] -= n
                break
        else:
            rows.append([e])
            room.append(max_length - n)
    return rows


def collate_packed(rows: list[list[SFTExample]], max_length: int, pad_token_id: int) -> dict[str, torch.Tensor]:
    """(B, L=max_length) input_ids, labels, position_ids, document_ids (0 = padding), attention_mask, plus flattened
    cu_seqlens (int32, each conversation and each row's padding is a segment) and max_seqlen."""
    B, L = len(rows), max_length
    input_ids = torch.full((B, L), pad_token_id, dtype=torch.long)
    labels = torch.full((B, L), IGNORE_INDEX, dtype=torch.long)
    position_ids = torch.zeros((B, L), dtype=torch.long)
    document_ids = torch.zeros((B, L), dtype=torch.long)
    cu = [0]
    for b, row in enumerate(rows):
        pos = 0
        for d, e in enumerate(row, start=1):
            n = len(e.input_ids)
            input_ids[b, pos:pos + n] = torch.tensor(e.input_ids)
            lab = torch.tensor(e.labels)
            lab[0] = IGNORE_INDEX  # a conversation's first token is never predicted from the previous one
            labels[b, pos:pos + n] = lab
            position_ids[b, pos:pos + n] = torch.arange(n)
            document_ids[b, pos:pos + n] = d
            pos += n
            cu.append(b * L + pos)
        if pos < L:
            cu.append((b + 1) * L)
    cu_seqlens = torch.tensor(cu, dtype=torch.int32)
    return {"input_ids": input_ids, "labels": labels, "position_ids": position_ids, "document_ids": document_ids,
            "attention_mask": (document_ids > 0).long(), "cu_seqlens": cu_seqlens,
            "max_seqlen": int((cu_seqlens[1:] - cu_seqlens[:-1]).max())}


def packed_attention_mask(document_ids: torch.Tensor) -> torch.Tensor:
    """(B, 1, L, L) bool, True where query t may attend key s: s <= t and same conversation (padding attends to
    itself only, so no row of the softmax is empty)."""
    L = document_ids.shape[1]
    causal = torch.ones(L, L, dtype=torch.bool, device=document_ids.device).tril()
    same = document_ids[:, :, None] == document_ids[:, None, :]  # (B, L, L)
    eye = torch.eye(L, dtype=torch.bool, device=document_ids.device)
    pad = (document_ids == 0)[:, :, None] & eye
    return ((same & causal & (document_ids[:, :, None] > 0)) | pad)[:, None]
