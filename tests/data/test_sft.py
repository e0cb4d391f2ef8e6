"""SFT: formats, assistant-only labels (checked against ByteTokenizer's own template mask and transformers),
truncation policy, skips, padding and packing without cross-conversation attention."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from stellarbyte.data.conversations import IGNORE_INDEX, NoAssistantTurn, to_messages
from stellarbyte.data.records import Stats
from stellarbyte.data.sft import (
    SFTConfig,
    build_sft_examples,
    collate_packed,
    pack_examples,
    packed_attention_mask,
    pad_collate,
    tokenize_conversation,
)

CONV = [{"role": "system", "content": "Be kind."}, {"role": "user", "content": "Where is the cat?"},
        {"role": "assistant", "content": "The cat sat on the mat."}, {"role": "user", "content": "And the dog?"},
        {"role": "assistant", "content": "The dog ran to the river."}]


def test_formats_normalise_to_the_same_messages():
    sharegpt = {"conversations": [{"from": "system", "value": "Be kind."}, {"from": "human", "value": "Hi"},
                                  {"from": "gpt", "value": "Hello"}]}
    wrapped = {"messages": [{"role": "user", "content": "Hi"}, {"role": "assistant", "content": "Hello"}],
               "system": "Be kind."}
    assert to_messages(sharegpt) == to_messages(wrapped) == [
        {"role": "system", "content": "Be kind."}, {"role": "user", "content": "Hi"},
        {"role": "assistant", "content": "Hello"}]
    alpaca = {"instruction": "Sort the list.", "input": "3 1 2", "output": "1 2 3"}
    assert to_messages(alpaca) == [{"role": "user", "content": "Sort the list.\n\n3 1 2"},
                                   {"role": "assistant", "content": "1 2 3"}]
    with pytest.raises(ValueError, match="unknown role 'robot'"):
        to_messages([{"role": "robot", "content": "x"}])
    with pytest.raises(ValueError, match="unrecognised conversation format"):
        to_messages({"question": "x"})


def test_labels_equal_bytetokenizer_template_mask_and_full_encoding(tokenizer):
    ex = tokenize_conversation(CONV, tokenizer)
    ref_ids, ref_mask = tokenizer.apply_chat_template_with_mask(CONV)  # the tokenizer engineer's independent code
    assert ex.input_ids == ref_ids == tokenizer.apply_chat_template(CONV, tokenize=True)
    assert [lab != IGNORE_INDEX for lab in ex.labels] == [bool(m) for m in ref_mask]
    trained = tokenizer.decode([t for t in ex.labels if t != IGNORE_INDEX])
    assert trained == "The cat sat on the mat.<|im_end|>The dog ran to the river.<|im_end|>"


def test_labels_match_transformers_assistant_mask(tokenizer, tokenizer_dir):
    transformers = pytest.importorskip("transformers")
    hf = transformers.AutoTokenizer.from_pretrained(str(tokenizer_dir))
    out = hf.apply_chat_template(CONV, tokenize=True, return_dict=True, return_assistant_tokens_mask=True)
    ex = tokenize_conversation(CONV, tokenizer)
    assert ex.input_ids == list(out["input_ids"])
    assert [lab != IGNORE_INDEX for lab in ex.labels] == [bool(m) for m in out["assistant_masks"]]


def test_truncation_policy_and_skips(tokenizer):
    full = tokenize_conversation(CONV, tokenizer)
    n_first_user = tokenize_conversation(CONV[:3], tokenizer).labels.index(next(
        t for t in tokenize_conversation(CONV[:3], tokenizer).labels if t != IGNORE_INDEX))
    cut = tokenize_conversation(CONV, tokenizer, SFTConfig(max_length=n_first_user + 3))
    assert cut.input_ids == full.input_ids[: n_first_user + 3]  # right truncation keeps the beginning
    assert sum(t != IGNORE_INDEX for t in cut.labels) == 3
    stats = Stats("sft")
    examples = [CONV, [{"role": "user", "content": "hello?"}], CONV, {"instruction": "x", "output": "y"}]
    out = list(build_sft_examples(examples, tokenizer, SFTConfig(max_length=n_first_user), stats))
    assert len(out) == 1 and stats.reasons == {"no_assistant_turn": 1, "no_labels_after_truncation": 2}
    stats = Stats("sft")
    out = list(build_sft_examples(examples, tokenizer, SFTConfig(max_length=len(full.input_ids) - 1,
                                                                    truncation="drop"), stats))
    assert len(out) == 1 and stats.reasons == {"no_assistant_turn": 1, "too_long": 2}
    with pytest.raises(NoAssistantTurn, match="example 1: .*no assistant turn"):
        list(build_sft_examples(examples, tokenizer, SFTConfig(strict=True)))


def test_pad_collate_uses_pad_not_eos(tokenizer):
    exs = [tokenize_conversation(CONV, tokenizer), tokenize_conversation(CONV[1:3], tokenizer)]
    batch = pad_collate(exs, tokenizer.pad_token_id, pad_to_multiple_of=8)
    B, L = batch["input_ids"].shape
    n0, n1 = len(exs[0].input_ids), len(exs[1].input_ids)
    assert B == 2 and L % 8 == 0 and n0 <= L
    assert batch["attention_mask"].sum(1).tolist() == [n0, n1]
    assert (batch["input_ids"][1, n1:] == tokenizer.pad_token_id).all()
    assert tokenizer.pad_token_id != tokenizer.eos_token_id
    assert (batch["labels"][1, n1:] == IGNORE_INDEX).all()
    with pytest.raises(ValueError, match="pad_token_id"):
        pad_collate(exs, None)


def test_packing_isolates_conversations(tokenizer):
    convs = [CONV, CONV[1:3], CONV[3:], [{"role": "user", "content": "big red ball"},
                                        {"role": "assistant", "content": "a small blue box"}]]
    exs = [tokenize_conversation(c, tokenizer) for c in convs]
    L = len(exs[0].input_ids) + len(exs[1].input_ids) + 5
    rows = pack_examples(exs, L)
    assert [len(r) for r in rows] == [2, 2]  # first fit: 0+1 fill row 0, 2+3 go to row 1
    batch = collate_packed(rows, L, tokenizer.pad_token_id)
    n0 = len(exs[0].input_ids)
    assert batch["position_ids"][0, :3].tolist() == [0, 1, 2] and batch["position_ids"][0, n0] == 0
    assert batch["document_ids"][0, n0 - 1] == 1 and batch["document_ids"][0, n0] == 2
    assert batch["labels"][0, n0] == IGNORE_INDEX
    seg = (batch["cu_seqlens"][1:] - batch["cu_seqlens"][:-1]).tolist()
    assert sum(seg) == 2 * L and seg[0] == n0 and batch["max_seqlen"] == max(seg)

    # attention over the packed row with the block-diagonal mask == attention over each conversation alone
    torch.manual_seed(0)
    emb = torch.nn.Embedding(tokenizer.vocab_size, 16)
    q_proj, k_proj = torch.nn.Linear(16, 16), torch.nn.Linear(16, 16)
    x = emb(batch["input_ids"])  # (B, L, 16)
    mask = packed_attention_mask(batch["document_ids"])  # (B, 1, L, L)
    packed = F.scaled_dot_product_attention(q_proj(x)[:, None], k_proj(x)[:, None], x[:, None], attn_mask=mask)
    pos = 0
    for e in rows[0]:
        n = len(e.input_ids)
        xs = emb(torch.tensor(e.input_ids))[None]
        alone = F.scaled_dot_product_attention(q_proj(xs)[:, None], k_proj(xs)[:, None], xs[:, None], is_causal=True)
        assert torch.allclose(packed[0, 0, pos:pos + n], alone[0, 0], atol=1e-5)
        pos += n
    with pytest.raises(ValueError, match="exceeds the pack length"):
        pack_examples(exs, 10)
