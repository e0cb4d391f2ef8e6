"""Conversation formats -> one canonical list of {"role", "content"} messages, and the loss mask by rendering.

Accepted inputs (`to_messages`):
- a list of {"role", "content"} dicts (OpenAI / transformers chat format),
- {"messages": [...]} (same, wrapped; an optional top-level "system" string is prepended),
- {"conversations": [{"from": "human"|"gpt"|"system", "value": ...}]} (ShareGPT; role/content inside also works),
- {"instruction", "input"?, "output", "system"?} (Alpaca: user = instruction + blank line + input).

`render_with_spans` renders with the tokenizer's chat template and returns the assistant character spans: for turn
i, span = [len(render(messages[:i], add_generation_prompt=True)), len(render(messages[:i+1]).rstrip())), i.e. the
assistant content plus the template's end-of-turn marker (the model must learn to stop), without the whitespace
the template puts after it. It requires the template to be
prefix-stable (rendering a conversation's first k turns is a prefix of rendering all of them); ChatML is, and a
template that is not raises ValueError instead of producing a wrong mask.

`encode_with_mask` encodes the text segment by segment at span boundaries, so every token is wholly inside or
outside a span; with a template whose boundaries fall on special tokens (ChatML) this equals encoding the whole
text at once (tests/data/test_sft.py pins that, and that the mask equals ByteTokenizer's own
`apply_chat_template_with_mask`).
"""

from __future__ import annotations

from stellarbyte.data.tokenizing import TokenizerLike

IGNORE_INDEX = -100  # label value the cross-entropy ignores (torch.nn.CrossEntropyLoss(ignore_index=-100))
ROLES = ("system", "user", "assistant")
ROLE_ALIASES = {"human": "user", "user": "user", "gpt": "assistant", "assistant": "assistant", "bot": "assistant",
                "model": "assistant", "system": "system"}


class NoAssistantTurn(ValueError):
    """A conversation with nothing to train on."""


def _message(m, where: str) -> dict:
    if not isinstance(m, dict):
        raise ValueError(f"{where}: a message must be a dict with role and content, got {type(m).__name__}")
    role = m.get("role", m.get("from"))
    content = m.get("content", m.get("value"))
    if role not in ROLE_ALIASES:
        raise ValueError(f"{where}: unknown role {role!r}; use one of {', '.join(ROLE_ALIASES)}")
    if not isinstance(content, str):
        raise ValueError(f"{where}: message content must be a string, got {type(content).__name__}")
    return {"role": ROLE_ALIASES[role], "content": content}


def to_messages(example) -> list[dict]:
    """Canonical [{"role", "content"}] of any accepted format (see module docstring)."""
    if isinstance(example, list):
        return [_message(m, f"message {i}") for i, m in enumerate(example)]
    if not isinstance(example, dict):
        raise ValueError(f"a conversation must be a list of messages or a dict, got {type(example).__name__}")
    system = example.get("system")
    prefix = [{"role": "system", "content": system}] if isinstance(system, str) and system else []
    if "messages" in example or "conversations" in example:
        key = "messages" if "messages" in example else "conversations"
        if not isinstance(example[key], list):
            raise ValueError(f"{key!r} must be a list of messages")
        msgs = [_message(m, f"{key}[{i}]") for i, m in enumerate(example[key])]
        return prefix + msgs if not (msgs and msgs[0]["role"] == "system") else msgs
    if "instruction" in example and "output" in example:
        extra = example.get("input") or ""
        user = example["instruction"] + (f"\n\n{extra}" if extra else "")
        return prefix + [_message({"role": "user", "content": user}, "alpaca instruction"),
                         _message({"role": "assistant", "content": example["output"]}, "alpaca output")]
    keys = ", ".join(sorted(map(str, example))[:8])
    raise ValueError(f"unrecognised conversation format (keys: {keys}); expected messages, conversations "
                     f"(ShareGPT) or instruction/input/output (Alpaca)")


def render_with_spans(messages: list[dict], tokenizer: TokenizerLike) -> tuple[str, list[tuple[int, int]]]:
    """(full rendered text, assistant character spans) for a conversation."""
    full = tokenizer.apply_chat_template(messages, add_generation_prompt=False, tokenize=False)
    spans = []
    for i, m in enumerate(messages):
        if m["role"] != "assistant":
            continue
        before = tokenizer.apply_chat_template(messages[:i], add_generation_prompt=True, tokenize=False)
        upto = tokenizer.apply_chat_template(messages[: i + 1], add_generation_prompt=False, tokenize=False)
        if not (upto.startswith(before) and full.startswith(upto)):
            raise ValueError("the chat template is not prefix-stable (rendering the first turns is not a prefix of "
                             "rendering the whole conversation), so assistant tokens cannot be located; use a "
                             "template such as ChatML that renders turns independently")
        # trailing whitespace after the end-of-turn marker belongs to the template, not the reply
        spans.append((len(before), max(len(before), len(upto.rstrip()))))
    if not spans:
        raise NoAssistantTurn("conversation has no assistant turn: nothing to train on")
    return full, spans


def encode_with_mask(text: str, spans: list[tuple[int, int]], tokenizer: TokenizerLike) -> tuple[list[int], list[int]]:
    """(ids, mask) with mask 1 on tokens of the given character spans; encoded segment by segment."""
    ids: list[int] = []
    mask: list[int] = []
    pos = 0
    for start, end in spans:
        for seg, flag in ((text[pos:start], 0), (text[start:end], 1)):
            if seg:
                seg_ids = tokenizer.encode(seg)
                ids += seg_ids
                mask += [flag] * len(seg_ids)
        pos = end
    if pos < len(text):
        tail = tokenizer.encode(text[pos:])
        ids += tail
        mask += [0] * len(tail)
    return ids, mask
