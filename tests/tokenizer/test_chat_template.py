"""Our chat rendering equals transformers' apply_chat_template: text, ids and assistant masks."""

from __future__ import annotations

import jinja2
import pytest
from transformers import AutoTokenizer

from stellarbyte.tokenizer import ByteTokenizer, render_chat

CONVERSATIONS = {
    "user_only": [{"role": "user", "content": "What is 2 + 3?"}],
    "with_system": [
        {"role": "system", "content": "You are a terse assistant."},
        {"role": "user", "content": "Name a colour."},
        {"role": "assistant", "content": "Blue."},
        {"role": "user", "content": "Another one, with ünïcode 😀 and\nnew lines."},
    ],
    "multi_turn": [
        {"role": "user", "content": "hi"},
        {"role": "assistant", "content": "Hello! How can I help?"},
        {"role": "user", "content": "  spaces  "},
        {"role": "assistant", "content": ""},
    ],
    "image_parts": [
        {"role": "user", "content": [{"type": "image"}, {"type": "text", "text": "What is in the picture?"}]},
        {"role": "assistant", "content": [{"type": "text", "text": "A cat."}]},
    ],
    "none_valued_key": [{"role": "user", "content": "x", "name": None}],
}


@pytest.fixture(scope="module")
def pair(bpe_dir):
    return ByteTokenizer.from_pretrained(bpe_dir), AutoTokenizer.from_pretrained(bpe_dir)


def test_exact_chatml_text(pair):
    ours, _ = pair
    text = ours.apply_chat_template(CONVERSATIONS["with_system"][:3], add_generation_prompt=True)
    assert text == ("<|im_start|>system\nYou are a terse assistant.<|im_end|>\n"
                    "<|im_start|>user\nName a colour.<|im_end|>\n"
                    "<|im_start|>assistant\nBlue.<|im_end|>\n"
                    "<|im_start|>assistant\n")
    assert ours.apply_chat_template(CONVERSATIONS["image_parts"]).startswith("<|im_start|>user\n<|image|>What")


@pytest.mark.parametrize("name", sorted(CONVERSATIONS))
@pytest.mark.parametrize("add_generation_prompt", [False, True])
def test_text_and_ids_match_transformers(pair, name, add_generation_prompt):
    ours, hf = pair
    messages = CONVERSATIONS[name]
    text = ours.apply_chat_template(messages, add_generation_prompt=add_generation_prompt)
    assert text == hf.apply_chat_template(messages, add_generation_prompt=add_generation_prompt, tokenize=False)
    ids = ours.apply_chat_template(messages, add_generation_prompt=add_generation_prompt, tokenize=True)
    hf_ids = hf.apply_chat_template(messages, add_generation_prompt=add_generation_prompt, tokenize=True,
                                    return_dict=False)
    assert ids == hf_ids == ours.encode(text)
    # role markers are single special ids, not spelled out in bytes
    assert ids.count(ours.im_start_token_id) == len(messages) + int(add_generation_prompt)
    assert ids.count(ours.im_end_token_id) == len(messages)


@pytest.mark.parametrize("name", ["with_system", "multi_turn", "image_parts"])
def test_assistant_mask_matches_transformers(pair, name):
    ours, hf = pair
    messages = CONVERSATIONS[name]
    ids, mask = ours.apply_chat_template_with_mask(messages)
    out = hf.apply_chat_template(messages, tokenize=True, return_dict=True, return_assistant_tokens_mask=True)
    assert ids == out["input_ids"]
    assert mask == out["assistant_masks"]
    # what the mask selects is exactly the assistant replies, each closed by <|im_end|>
    picked = ours.decode([i for i, m in zip(ids, mask) if m])
    replies = [m["content"] if isinstance(m["content"], str) else m["content"][0]["text"]
               for m in messages if m["role"] == "assistant"]
    assert picked == "".join(r + "<|im_end|>" for r in replies)


def test_bad_role_raises_in_both(pair):
    ours, hf = pair
    messages = [{"role": "robot", "content": "beep"}]
    with pytest.raises(ValueError, match="roles must be system, user or assistant, got 'robot'"):
        ours.apply_chat_template(messages)
    with pytest.raises(jinja2.TemplateError, match="got 'robot'"):
        hf.apply_chat_template(messages, tokenize=False)


@pytest.mark.parametrize("messages, match", [
    ([], "empty conversation"),
    ("hello", "must be a list"),
    ([{"content": "x"}], "no string 'role'"),
    ([{"role": "user"}], "needs 'content'"),
    (["hi"], "message 0 is str"),
    ([{"role": "user", "content": [{"type": "audio"}]}], "type 'text' or 'image', got 'audio'"),
])
def test_malformed_conversations(pair, messages, match):
    ours, _ = pair
    with pytest.raises(ValueError, match=match):
        ours.apply_chat_template(messages)


def test_renderer_semantics_match_transformers(pair):
    """The environment details: trim/lstrip blocks, loopcontrols, tojson without HTML escaping, special-token
    variables, raise_exception; checked on a template that uses all of them."""
    ours, hf = pair
    template = ("{% for m in messages %}\n    {% if loop.index > 2 %}{% break %}{% endif %}\n"
                "{{ bos_token }}{{ m | tojson }}|{{ eos_token }}\n{% endfor %}"
                "{% if add_generation_prompt %}GEN{% endif %}")
    messages = [{"role": "user", "content": "<b>&'\"é"}] * 3
    ours_text = render_chat(template, messages, add_generation_prompt=True,
                            special_tokens=ours._template_special_tokens())
    assert ours_text == hf.apply_chat_template(messages, chat_template=template, add_generation_prompt=True,
                                               tokenize=False)
    assert '"<b>&\'\\"é"' in ours_text and ours_text.count("<|bos|>") == 2 and ours_text.endswith("GEN")
