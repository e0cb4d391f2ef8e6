"""Preference pairs: formats, response-only labels, left prompt truncation, masks that DPO/ORPO/RM need."""

from __future__ import annotations

import pytest
import torch

from stellarbyte.data.conversations import IGNORE_INDEX
from stellarbyte.data.preference import (
    PreferenceConfig,
    build_preference_pairs,
    collate_preference,
    sequence_logps,
    to_preference_messages,
    tokenize_preference,
)
from stellarbyte.data.records import Stats

EX = {"prompt": "Where did the cat go?", "chosen": "The cat went to the garden.", "rejected": "The dog sat."}


def test_three_forms_give_the_same_pair(tokenizer):
    conv_prompt = [{"role": "user", "content": EX["prompt"]}]
    explicit = {"prompt": conv_prompt, "chosen": [{"role": "assistant", "content": EX["chosen"]}],
                "rejected": EX["rejected"]}
    implicit = {"chosen": conv_prompt + [{"role": "assistant", "content": EX["chosen"]}],
                "rejected": conv_prompt + [{"role": "assistant", "content": EX["rejected"]}]}
    a, b, c = (tokenize_preference(x, tokenizer) for x in (EX, explicit, implicit))
    assert a == b == c
    full = tokenizer.apply_chat_template(conv_prompt + [{"role": "assistant", "content": EX["chosen"]}], tokenize=True)
    assert a.prompt_ids + a.chosen_ids == full[: len(a.prompt_ids) + len(a.chosen_ids)]
    assert tokenizer.decode(a.chosen_ids) == EX["chosen"] + "<|im_end|>"
    assert tokenizer.decode(a.prompt_ids).endswith("<|im_start|>assistant\n")
    with pytest.raises(ValueError, match="share the prompt turns"):
        to_preference_messages({"chosen": [{"role": "user", "content": "a"}],
                                "rejected": [{"role": "user", "content": "b"}]})


def test_truncation_cuts_prompt_left_then_responses(tokenizer):
    long = {"prompt": " ".join(["the big red ball"] * 40), "chosen": " ".join(["a cat"] * 30), "rejected": "no"}
    full = tokenize_preference(long, tokenizer, PreferenceConfig(max_length=10_000, max_prompt_length=5000))
    cut = tokenize_preference(long, tokenizer, PreferenceConfig(max_length=40, max_prompt_length=16))
    assert cut.prompt_ids == full.prompt_ids[-16:] and cut.chosen_ids == full.chosen_ids[:24]
    assert cut.rejected_ids == full.rejected_ids  # short enough already
    with pytest.raises(ValueError, match="max_prompt_length < max_length"):
        PreferenceConfig(max_length=8, max_prompt_length=8)


def test_collate_masks_and_logps(tokenizer):
    stats = Stats("pref")
    examples = [EX, {"prompt": "Hi", "chosen": "Hello friend.", "rejected": "Go away."}, {"prompt": "x"},
                {"prompt": "Hi", "chosen": "same", "rejected": "same"}]
    pairs = list(build_preference_pairs(examples, tokenizer, stats=stats))
    assert len(pairs) == 2 and stats.reasons == {"invalid": 1, "identical_responses": 1}
    batch = collate_preference(pairs, tokenizer.pad_token_id)
    L = batch["chosen_input_ids"].shape[1]
    assert batch["rejected_input_ids"].shape == (2, L)
    for b, p in enumerate(pairs):
        for side in ("chosen", "rejected"):
            resp = getattr(p, f"{side}_ids")
            labels = batch[f"{side}_labels"][b]
            assert labels[labels != IGNORE_INDEX].tolist() == resp
            n = len(p.prompt_ids) + len(resp)
            assert batch[f"{side}_attention_mask"][b].sum() == n and batch[f"{side}_last_index"][b] == n - 1
            assert (batch[f"{side}_input_ids"][b, n:] == tokenizer.pad_token_id).all()
    # sequence_logps against a direct loop with torch.nn.functional.cross_entropy
    torch.manual_seed(0)
    logits = torch.randn(2, L, tokenizer.vocab_size)
    s, n = sequence_logps(logits, batch["chosen_labels"])
    for b in range(2):
        lab = batch["chosen_labels"][b, 1:]
        ref = -torch.nn.functional.cross_entropy(logits[b, :-1], lab, ignore_index=IGNORE_INDEX, reduction="sum")
        assert torch.allclose(s[b], ref, atol=1e-4) and n[b] == (lab != IGNORE_INDEX).sum()
