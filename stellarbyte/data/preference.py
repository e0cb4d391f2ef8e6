"""Preference data: (prompt, chosen, rejected) -> tokenized pairs with masks for DPO, ORPO and reward models.

Accepted inputs (`to_preference_messages`):
- {"prompt": str, "chosen": str, "rejected": str, "system"?: str}   (the prompt becomes one user turn)
- {"prompt": [messages], "chosen": [assistant message(s)] | str, "rejected": ...}   (conversational, explicit prompt)
- {"chosen": [full conversation], "rejected": [full conversation]}   (implicit prompt: their longest common prefix,
  which must end right before the first differing assistant turn)

Tokenization: prompt = render(prompt_messages, add_generation_prompt=True); response = render(prompt + reply)
minus that prefix (the reply plus the end-of-turn marker; trailing template whitespace dropped).

Truncation (as in TRL's DPOTrainer): when prompt + longer response exceeds max_length, the prompt is first cut from
the LEFT to max_prompt_length (keeping the most recent context), then responses are cut from the right.

Batch (`collate_preference`), for every method:
  chosen_input_ids / rejected_input_ids     (B, L) prompt + response, right-padded with pad id
  chosen_attention_mask / rejected_...      (B, L) 1 on real tokens
  chosen_labels / rejected_labels           (B, L) response ids, -100 on prompt and padding (unshifted, HF style)
  chosen_last_index / rejected_last_index   (B,) index of the last real token: where a reward model reads its score
Chosen and rejected share one L, so a trainer may concatenate them into a single (2B, L) forward.
DPO sums log-probabilities over label positions, ORPO adds the chosen NLL over the same positions, a reward model
uses the last index; `sequence_logps` computes the masked sums they share.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass

import torch

from stellarbyte.data.conversations import IGNORE_INDEX, to_messages
from stellarbyte.data.records import Stats
from stellarbyte.data.tokenizing import TokenizerLike


@dataclass(slots=True)
class PreferenceConfig:
    max_length: int = 1024
    max_prompt_length: int = 512

    def __post_init__(self) -> None:
        if not 1 <= self.max_prompt_length < self.max_length:
            raise ValueError(f"need 1 <= max_prompt_length < max_length, got {self.max_prompt_length}, "
                             f"{self.max_length}")


@dataclass(slots=True)
class PreferencePair:
    prompt_ids: list[int]
    chosen_ids: list[int]  # response tokens only
    rejected_ids: list[int]


def _replies(value, where: str) -> list[dict]:
    if isinstance(value, str):
        return [{"role": "assistant", "content": value}]
    msgs = to_messages(value)
    if not msgs or any(m["role"] != "assistant" for m in msgs):
        raise ValueError(f"{where} must be a string or assistant message(s) when a prompt is given")
    return msgs


def to_preference_messages(example: dict) -> tuple[list[dict], list[dict], list[dict]]:
    """(prompt messages, chosen reply messages, rejected reply messages)."""
    if not isinstance(example, dict) or "chosen" not in example or "rejected" not in example:
        keys = ", ".join(sorted(map(str, example))[:8]) if isinstance(example, dict) else type(example).__name__
        raise ValueError(f"a preference example needs 'chosen' and 'rejected' (and usually 'prompt'); got {keys}")
    if "prompt" in example:
        p = example["prompt"]
        prompt = [{"role": "user", "content": p}] if isinstance(p, str) else to_messages(p)
        system = example.get("system")
        if isinstance(system, str) and system and not (prompt and prompt[0]["role"] == "system"):
            prompt = [{"role": "system", "content": system}] + prompt
        return prompt, _replies(example["chosen"], "chosen"), _replies(example["rejected"], "rejected")
    chosen, rejected = to_messages(example["chosen"]), to_messages(example["rejected"])
    k = 0
    while k < min(len(chosen), len(rejected)) and chosen[k] == rejected[k]:
        k += 1
    if k == 0 or chosen[k:k + 1] == [] or rejected[k:k + 1] == [] or chosen[k]["role"] != "assistant" \
            or rejected[k]["role"] != "assistant":
        raise ValueError("implicit-prompt preference pair: chosen and rejected must share the prompt turns and "
                         "differ from an assistant turn on; pass an explicit 'prompt' otherwise")
    return chosen[:k], chosen[k:], rejected[k:]


def _response_ids(prompt: list[dict], reply: list[dict], prompt_text: str, tokenizer: TokenizerLike) -> list[int]:
    full = tokenizer.apply_chat_template(prompt + reply, add_generation_prompt=False, tokenize=False)
    if not full.startswith(prompt_text):
        raise ValueError("the chat template is not prefix-stable: the rendered prompt is not a prefix of the "
                         "rendered conversation; use a ChatML-like template")
    return tokenizer.encode(full[len(prompt_text):].rstrip())


def tokenize_preference(example: dict, tokenizer: TokenizerLike,
                        config: PreferenceConfig | None = None) -> PreferencePair:
    config = config or PreferenceConfig()
    prompt, chosen, rejected = to_preference_messages(example)
    prompt_text = tokenizer.apply_chat_template(prompt, add_generation_prompt=True, tokenize=False)
    p = tokenizer.encode(prompt_text)
    c = _response_ids(prompt, chosen, prompt_text, tokenizer)
    r = _response_ids(prompt, rejected, prompt_text, tokenizer)
    if not c or not r:
        raise ValueError("empty chosen or rejected response")
    longest = max(len(c), len(r))
    if len(p) + longest > config.max_length:
        p = p[-config.max_prompt_length:]  # keep the end of the prompt: the latest turns and the assistant header
        keep = config.max_length - len(p)
        c, r = c[:keep], r[:keep]
    return PreferencePair(p, c, r)


def build_preference_pairs(examples: Iterable[dict], tokenizer: TokenizerLike, config: PreferenceConfig | None = None,
                           stats: Stats | None = None, strict: bool = False) -> Iterator[PreferencePair]:
    """Tokenize a stream; a malformed example is counted as "invalid" (or raises with strict=True)."""
    stats = stats if stats is not None else Stats("preference")
    for i, ex in enumerate(examples):
        stats.seen += 1
        try:
            pair = tokenize_preference(ex, tokenizer, config)
        except ValueError as err:
            if strict:
                raise ValueError(f"example {i}: {err}") from err
            stats.remove("invalid")
            continue
        if pair.chosen_ids == pair.rejected_ids:
            stats.remove("identical_responses")  # no preference signal (also what truncation can produce)
            continue
        stats.kept += 1
        yield pair


def collate_preference(pairs: list[PreferencePair], pad_token_id: int | None) -> dict[str, torch.Tensor]:
    if pad_token_id is None:
        raise ValueError("the tokenizer has no pad_token_id; padding needs a dedicated pad token (not EOS)")
    B = len(pairs)
    L = max(len(x.prompt_ids) + max(len(x.chosen_ids), len(x.rejected_ids)) for x in pairs)
    out: dict[str, torch.Tensor] = {}
    for side in ("chosen", "rejected"):
        ids = torch.full((B, L), pad_token_id, dtype=torch.long)
        labels = torch.full((B, L), IGNORE_INDEX, dtype=torch.long)
        attn = torch.zeros((B, L), dtype=torch.long)
        last = torch.zeros(B, dtype=torch.long)
        for b, x in enumerate(pairs):
            resp = getattr(x, f"{side}_ids")
            n_p, n = len(x.prompt_ids), len(x.prompt_ids) + len(resp)
            ids[b, :n] = torch.tensor(x.prompt_ids + resp)
            labels[b, n_p:n] = torch.tensor(resp)
            attn[b, :n] = 1
            last[b] = n - 1
        out |= {f"{side}_input_ids": ids, f"{side}_attention_mask": attn, f"{side}_labels": labels,
                f"{side}_last_index": last}
    out["prompt_lengths"] = torch.tensor([len(x.prompt_ids) for x in pairs])
    return out


def sequence_logps(logits: torch.Tensor, labels: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Sum of log p(label_t | < t) over non-ignored positions and their count, per row.
    logits: (B, L, V) from a causal LM; labels: (B, L) unshifted -> ((B,), (B,))."""
    logits, labels = logits[:, :-1].float(), labels[:, 1:]  # position t predicts token t+1
    mask = labels != IGNORE_INDEX
    logp = torch.log_softmax(logits, dim=-1).gather(-1, labels.clamp(min=0).unsqueeze(-1)).squeeze(-1)  # (B, L-1)
    return (logp * mask).sum(-1), mask.sum(-1)
