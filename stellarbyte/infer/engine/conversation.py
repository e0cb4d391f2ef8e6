"""Conversation memory: fit a multi-turn chat into the context window by a stated policy.

Policy ("keep the system prompt, drop the oldest turns"):
  1. the leading system message (if any) and the final user message are always kept;
  2. while the rendered prompt + the reply budget (max_tokens) exceeds the context window, the oldest
     remaining turn is dropped: a user message together with the assistant replies that follow it;
  3. if the system message + the final user message alone do not fit, a ValueError says by how much.
Reuse of earlier turns' KV: the chat template renders earlier turns identically, so turn N+1's prompt starts
with turn N's prompt + answer and the engine's prefix cache serves those blocks. After a drop the shared
prefix shrinks to the system prompt (whose blocks still hit) -- dropping is the price of bounded memory.
Reference: the "sliding window of turns" used by common chat front ends; the template is the tokenizer's.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


@dataclass(slots=True)
class FittedConversation:
    messages: list[dict[str, Any]]  # what is actually sent
    prompt_token_ids: list[int]
    num_dropped_messages: int


def _turns(messages: list[dict[str, Any]]) -> list[list[dict[str, Any]]]:
    """Group messages into turns: each starts at a user message (a leading non-user run is its own turn)."""
    turns: list[list[dict[str, Any]]] = []
    for m in messages:
        if m.get("role") == "user" or not turns:
            turns.append([m])
        else:
            turns[-1].append(m)
    return turns


def fit_conversation(messages: list[dict[str, Any]], tokenizer: Any, context_length: int,
                     max_tokens: int) -> FittedConversation:
    """Apply the policy above; tokenizer needs apply_chat_template(messages, add_generation_prompt, tokenize)."""
    if not messages:
        raise ValueError("messages is empty; send at least one user message")
    if messages[-1].get("role") != "user":
        raise ValueError(f"the last message must come from the user, got role {messages[-1].get('role')!r}")
    if max_tokens < 1 or max_tokens >= context_length:
        raise ValueError(f"max_tokens={max_tokens} must be in [1, {context_length - 1}] for a {context_length}-token "
                         f"context window")
    system = [messages[0]] if messages[0].get("role") == "system" else []
    turns = _turns(messages[len(system):])
    budget = context_length - max_tokens
    dropped = 0
    while True:
        kept = system + [m for turn in turns for m in turn]
        ids = tokenizer.apply_chat_template(kept, add_generation_prompt=True, tokenize=True)
        if len(ids) <= budget:
            return FittedConversation(kept, list(ids), dropped)
        if len(turns) == 1:
            raise ValueError(f"the system prompt and the last user message alone take {len(ids)} tokens; with "
                             f"max_tokens={max_tokens} the {context_length}-token window allows {budget}. Shorten "
                             f"the message or lower max_tokens")
        dropped += len(turns.pop(0))
