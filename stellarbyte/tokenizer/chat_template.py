"""The chat template (ChatML-like Jinja) and our renderer for it, with the same semantics as transformers.

The template is stored verbatim in tokenizer_config.json["chat_template"], so `transformers`' `apply_chat_template`
and ours render it identically. A conversation renders as

    <|im_start|>system\\nYou are terse.<|im_end|>\\n<|im_start|>user\\nHi<|im_end|>\\n
    <|im_start|>assistant\\nHello!<|im_end|>\\n          (one string; wrapped here)

and `add_generation_prompt=True` appends `<|im_start|>assistant\\n` so the model writes the next assistant turn.
A message's content is a string or a list of parts (`{"type": "text", "text": ...}` / `{"type": "image"}`); an
image part renders as the `<|image|>` placeholder the vision-language model fills. Assistant content plus its
closing `<|im_end|>` sits in a `{% generation %}` block: that is how transformers (`return_assistant_tokens_mask`)
and `render_chat(..., return_spans=True)` find the characters an SFT loss should train on; the closing `<|im_end|>`
is included because the model must learn to stop.

Renderer contract (mirrors transformers.utils.chat_template_utils, read for reference, not copied): a jinja2
ImmutableSandboxedEnvironment with trim_blocks=True, lstrip_blocks=True and the loopcontrols extension; `tojson`
that does not HTML-escape; globals `raise_exception(msg)` (raises jinja2.TemplateError) and `strftime_now(fmt)`;
message keys whose value is None are dropped; the special-token names (bos_token, eos_token, ...) are passed as
template variables, and keyword arguments override them.
"""

from __future__ import annotations

import functools
import json
from collections.abc import Iterator
from contextvars import ContextVar
from datetime import datetime
from typing import Any

import jinja2
import jinja2.ext
import jinja2.nodes
from jinja2.sandbox import ImmutableSandboxedEnvironment

from .special_tokens import IM_END_TOKEN, IM_START_TOKEN, IMAGE_TOKEN

CHAT_ROLES = ("system", "user", "assistant")

# ChatML. `{%-`/`-%}` strip the template's own layout whitespace; everything emitted is in explicit strings.
CHAT_TEMPLATE = (
    "{%- for message in messages %}\n"
    "    {%- if message['role'] not in ['system', 'user', 'assistant'] %}\n"
    "        {{- raise_exception(\"chat message roles must be system, user or assistant, got '\" + message['role']"
    " + \"'\") }}\n"
    "    {%- endif %}\n"
    "    {%- if message['content'] is string %}\n"
    "        {%- set content = message['content'] %}\n"
    "    {%- else %}\n"
    "        {%- set ns = namespace(text='') %}\n"
    "        {%- for part in message['content'] %}\n"
    "            {%- if part['type'] == 'image' %}\n"
    f"                {{%- set ns.text = ns.text + '{IMAGE_TOKEN}' %}}\n"
    "            {%- elif part['type'] == 'text' %}\n"
    "                {%- set ns.text = ns.text + part['text'] %}\n"
    "            {%- else %}\n"
    "                {{- raise_exception(\"content parts must have type 'text' or 'image', got '\" + part['type']"
    " + \"'\") }}\n"
    "            {%- endif %}\n"
    "        {%- endfor %}\n"
    "        {%- set content = ns.text %}\n"
    "    {%- endif %}\n"
    f"    {{{{- '{IM_START_TOKEN}' + message['role'] + '\\n' }}}}\n"
    "    {%- if message['role'] == 'assistant' %}\n"
    "        {%- generation %}\n"
    f"            {{{{- content + '{IM_END_TOKEN}' }}}}\n"
    "        {%- endgeneration %}\n"
    "        {{- '\\n' }}\n"
    "    {%- else %}\n"
    f"        {{{{- content + '{IM_END_TOKEN}' + '\\n' }}}}\n"
    "    {%- endif %}\n"
    "{%- endfor %}\n"
    "{%- if add_generation_prompt %}\n"
    f"    {{{{- '{IM_START_TOKEN}assistant\\n' }}}}\n"
    "{%- endif %}\n"
)


class GenerationTag(jinja2.ext.Extension):
    """`{% generation %}...{% endgeneration %}`: renders its body unchanged and, while a tracker is active,
    records the (start, end) character span of that body in the output."""

    tags = {"generation"}

    def __init__(self, environment: jinja2.Environment) -> None:
        super().__init__(environment)
        # (blocks rendered so far, spans) for the render in progress in this context; None when not tracking
        self.tracker: ContextVar[tuple[list[str], list[tuple[int, int]]] | None] = ContextVar(
            "stellarbyte_generation_tracker", default=None)
        environment.extend(generation_tracker=self.tracker)

    def parse(self, parser: jinja2.parser.Parser) -> jinja2.nodes.Node:
        lineno = next(parser.stream).lineno
        body = parser.parse_statements(("name:endgeneration",), drop_needle=True)
        return jinja2.nodes.CallBlock(self.call_method("_render", []), [], [], body).set_lineno(lineno)

    def _render(self, caller: Any) -> str:
        text = caller()
        tracking = self.tracker.get()
        if tracking is not None:
            blocks, spans = tracking
            # template.generate() yields output lazily, so `blocks` holds everything rendered before this block
            start = sum(len(b) for b in blocks)
            spans.append((start, start + len(text)))
        return text


def _raise_exception(message: str) -> None:
    raise jinja2.exceptions.TemplateError(message)


def _tojson(x: Any, ensure_ascii: bool = False, indent: int | None = None, separators: Any = None,
            sort_keys: bool = False) -> str:
    # jinja's own tojson HTML-escapes <, >, & and ': wrong for prompts
    return json.dumps(x, ensure_ascii=ensure_ascii, indent=indent, separators=separators, sort_keys=sort_keys)


def _strftime_now(fmt: str) -> str:
    return datetime.now().strftime(fmt)


@functools.lru_cache(maxsize=16)
def compile_chat_template(template: str) -> jinja2.Template:
    """Compile `template` in the sandboxed environment described in the module docstring (cached)."""
    env = ImmutableSandboxedEnvironment(trim_blocks=True, lstrip_blocks=True,
                                        extensions=[GenerationTag, jinja2.ext.loopcontrols])
    env.filters["tojson"] = _tojson
    env.globals["raise_exception"] = _raise_exception
    env.globals["strftime_now"] = _strftime_now
    try:
        return env.from_string(template)
    except jinja2.TemplateSyntaxError as err:
        raise ValueError(f"chat template has a Jinja syntax error at line {err.lineno}: {err.message}") from None


def normalize_messages(messages: Any) -> list[dict[str, Any]]:
    """Check a conversation's shape and return a copy without None-valued keys (as transformers does)."""
    if not isinstance(messages, (list, tuple)):
        raise ValueError(f"messages must be a list of {{'role': ..., 'content': ...}} dicts, got "
                         f"{type(messages).__name__}")
    if not messages:
        raise ValueError("cannot apply the chat template to an empty conversation; give at least one message")
    out = []
    for i, message in enumerate(messages):
        if not isinstance(message, dict):
            raise ValueError(f"message {i} is {type(message).__name__}, expected a dict with 'role' and 'content'")
        message = {k: v for k, v in message.items() if v is not None}
        if not isinstance(message.get("role"), str):
            raise ValueError(f"message {i} has no string 'role' (one of {', '.join(CHAT_ROLES)})")
        content = message.get("content")
        if not isinstance(content, (str, list)):
            raise ValueError(f"message {i} ({message['role']}) needs 'content': a string or a list of parts")
        out.append(message)
    return out


def render_chat(template: str, messages: list[dict[str, Any]], add_generation_prompt: bool = False,
                special_tokens: dict[str, str] | None = None, return_spans: bool = False,
                **kwargs: Any) -> str | tuple[str, list[tuple[int, int]]]:
    """Render `messages` with `template`. With return_spans=True also return the character spans of every
    `{% generation %}` block (assistant content + <|im_end|> in our template), for SFT loss masks."""
    compiled = compile_chat_template(template)
    variables = {**(special_tokens or {}), **kwargs}
    variables.update(messages=normalize_messages(messages), tools=None, documents=None,
                     add_generation_prompt=add_generation_prompt)
    try:
        if not return_spans:
            return compiled.render(**variables)
        blocks: list[str] = []
        spans: list[tuple[int, int]] = []
        tracker: ContextVar = compiled.environment.generation_tracker
        token = tracker.set((blocks, spans))
        try:
            pieces: Iterator[str] = compiled.generate(**variables)
            for piece in pieces:
                blocks.append(piece)
        finally:
            tracker.reset(token)
        return "".join(blocks), spans
    except jinja2.TemplateError as err:
        raise ValueError(f"chat template error: {err}") from None
