"""`stellarbyte chat MODEL_DIR`: a terminal chat on the serving engine, streamed token by token.

    $ stellarbyte chat runs/quickstart/sft --temperature 0.7 --system "You are terse."
    you> hello
    Hello! How can I help?
    you> /stats
    printf 'hi\\n/reset\\nhello\\n' | stellarbyte chat DIR --max-tokens 8     # a pipe works too

How a turn runs (ChatSession.reply):
  history + the new user message -> engine/conversation.fit_conversation (policy: keep the system prompt and
  the last user message, drop the oldest turns until prompt + max_tokens fits the context window; what was
  dropped is dropped from the session too, so later turns keep extending one prefix) -> the tokenizer's chat
  template -> LLMEngine.add_request -> engine.step() until the request finishes; each step's decoded text
  minus what is already printed goes to the terminal. The reply stops at <|im_end|> (end of turn), EOS,
  max_tokens or the window, and joins the history as the assistant message.
Multi-turn memory costs little: the chat template renders earlier turns identically, so turn N+1's prompt
starts with turn N's prompt and reply, and the engine's prefix cache serves those KV blocks (/stats shows the
cached share of the last prompt and the engine's hit rate since start).
Commands: /reset, /system TEXT, /stats, /help, /quit. EOF (Ctrl-D) or Ctrl-C at the prompt ends the chat
(exit 0); Ctrl-C during a reply stops it, frees its KV blocks, and keeps the part already shown.
Streams: replies go to stdout (each followed by one newline), everything else (banner, command answers,
notices) to stderr, so `... | stellarbyte chat DIR > replies.txt` captures exactly the replies.
References: vLLM's LLMEngine step loop; the ChatML template of stellarbyte/tokenizer/chat_template.py.
"""

from __future__ import annotations

import argparse
import contextlib
import signal
import sys
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, replace
from typing import Any, TextIO

from stellarbyte.infer.engine import LLM, LLMEngine, SamplingParams
from stellarbyte.infer.engine.conversation import fit_conversation

HELP = """commands:
  /reset         forget the conversation (the system message stays)
  /system TEXT   set the system message (and start a new conversation); /system alone clears it
  /stats         tokens, prefix-cache hits and KV blocks of the last turn and of the session
  /help          this list
  /quit          leave (so do Ctrl-D and Ctrl-C at the prompt; Ctrl-C during a reply stops the reply)"""


@dataclass(slots=True)
class Reply:
    text: str  # the assistant message as stored in the history
    token_ids: list[int]  # generated ids (the end-of-turn token included when it ended the reply)
    finish_reason: str  # "stop" (end of turn / EOS), "length" (max_tokens / window) or "interrupted"
    prompt_token_ids: list[int]  # the rendered, fitted conversation the engine saw
    num_cached_tokens: int  # prompt tokens served from the prefix cache
    num_dropped_messages: int  # oldest messages dropped by the history policy for this turn
    seconds: float


class ChatSession:
    """One conversation over an LLM (its engine and tokenizer); the engine lives as long as the session, so the
    prefix cache keeps earlier turns' KV blocks."""

    def __init__(self, llm: LLM, params: SamplingParams, system: str | None = None) -> None:
        tok = llm.tokenizer
        if tok is None or not hasattr(tok, "apply_chat_template"):
            raise ValueError("chat needs a tokenizer with a chat template: put tokenizer.json beside the model or "
                             "pass --tokenizer DIR")
        end_of_turn = getattr(tok, "im_end_token_id", None)
        if end_of_turn is not None and end_of_turn not in params.stop_token_ids:
            params = replace(params, stop_token_ids=[*params.stop_token_ids, end_of_turn])
        context = llm.engine.context_length
        if params.max_tokens is None or params.max_tokens >= context:
            raise ValueError(f"max_tokens={params.max_tokens} must be below the model's {context}-token context "
                             f"window (leave room for the conversation); e.g. --max-tokens {max(1, context // 4)}")
        self.llm = llm
        self.params = params
        self.system = system or None
        self.messages: list[dict[str, str]] = []  # user/assistant turns; the system message is kept apart
        self.last: Reply | None = None
        self.num_turns = 0

    @property
    def engine(self) -> LLMEngine:
        return self.llm.engine

    def conversation(self, user_text: str) -> list[dict[str, str]]:
        """The messages a reply to user_text is conditioned on (before fitting)."""
        head = [{"role": "system", "content": self.system}] if self.system else []
        return head + self.messages + [{"role": "user", "content": user_text}]

    def reset(self) -> None:
        self.messages = []

    def set_system(self, text: str | None) -> None:
        self.system = text or None
        self.reset()  # a new persona starts a new conversation

    def reply(self, user_text: str, on_text: Callable[[str], None] | None = None) -> Reply:
        """Generate the assistant's answer to user_text, calling on_text with each new piece of text."""
        start = time.perf_counter()
        fitted = fit_conversation(self.conversation(user_text), self.llm.tokenizer, self.engine.context_length,
                                  self.params.max_tokens)
        engine = self.engine
        rid = engine.add_request(fitted.prompt_token_ids, self.params)
        shown, text, token_ids, reason, cached = "", "", [], "interrupted", 0
        try:
            with _ctrl_c_flag() as stop:
                while not stop:
                    outs = [o for o in engine.step() if o.request_id == rid]
                    if not outs:
                        continue  # a chunked-prefill step: nothing sampled yet
                    out = outs[-1]
                    cached = out.num_cached_tokens
                    text, token_ids = out.outputs[0].text, list(out.outputs[0].token_ids)
                    # decoding is prefix-stable for byte-level BPE except a trailing, half-decoded UTF-8
                    # character (U+FFFD): hold that back until the next token completes it
                    ready = out.finished or not text.endswith("\ufffd")
                    if ready and text.startswith(shown) and len(text) > len(shown):
                        if on_text is not None:
                            on_text(text[len(shown):])
                        shown = text
                    if out.finished:
                        reason = out.outputs[0].finish_reason or "stop"
                        break
        except KeyboardInterrupt:  # a second Ctrl-C, or one outside the main thread's handler
            pass
        finally:
            if reason == "interrupted":
                text = shown  # keep what the user saw
                engine.abort_request(rid)  # frees its KV blocks (full ones stay in the prefix cache)
        # what the model saw is what it remembers: the fitted history (oldest turns dropped) plus this reply;
        # a reply stopped before any text leaves no turn behind
        kept = fitted.messages[1:] if self.system else fitted.messages
        if reason != "interrupted" or text:
            self.messages = [*kept, {"role": "assistant", "content": text}]
        else:
            self.messages = kept[:-1]
        self.num_turns += 1
        self.last = Reply(text, token_ids, reason, fitted.prompt_token_ids, cached, fitted.num_dropped_messages,
                          time.perf_counter() - start)
        return self.last

    def stats_lines(self) -> list[str]:
        s = self.engine.get_stats()
        lines = [f"session: {self.num_turns} turns, {len(self.messages)} messages in history, "
                 f"engine prefix-cache hit rate {s.prefix_cache_hit_rate:.1%}, {s.num_generated_tokens} tokens "
                 f"generated, KV blocks free {s.num_free_blocks}/{s.num_blocks}"]
        r = self.last
        if r is not None:
            n = len(r.prompt_token_ids)
            rate = len(r.token_ids) / r.seconds if r.seconds > 0 else 0.0
            lines.append(f"last turn: prompt {n} tokens, {r.num_cached_tokens} from the prefix cache "
                         f"({r.num_cached_tokens / n:.1%}), reply {len(r.token_ids)} tokens in {r.seconds:.2f} s "
                         f"({rate:.1f} tok/s), finish {r.finish_reason}, dropped {r.num_dropped_messages} messages")
        return lines


class _Flag:
    def __init__(self) -> None:
        self.raised = False

    def __bool__(self) -> bool:
        return self.raised


@contextlib.contextmanager
def _ctrl_c_flag() -> Iterator[_Flag]:
    """During a reply, Ctrl-C sets a flag the step loop reads between steps (an engine step is never cut in
    half); a second Ctrl-C raises KeyboardInterrupt as usual. Outside the main thread: no handler, a plain flag."""
    flag = _Flag()
    if threading.current_thread() is not threading.main_thread():
        yield flag
        return

    def handler(signum: int, frame: Any) -> None:
        if flag.raised:
            raise KeyboardInterrupt
        flag.raised = True

    previous = signal.signal(signal.SIGINT, handler)
    try:
        yield flag
    finally:
        signal.signal(signal.SIGINT, previous)


def run_chat(session: ChatSession, stdin: TextIO, stdout: TextIO, stderr: TextIO, interactive: bool = False) -> int:
    """The read-reply loop. interactive: show a `you> ` prompt (a terminal); a pipe gets replies only."""

    def note(message: str) -> None:
        print(message, file=stderr, flush=True)

    def write(piece: str) -> None:
        stdout.write(piece)
        stdout.flush()

    while True:
        try:
            if interactive:
                line = input("you> ")  # input() gives line editing (readline) on a terminal
            else:
                line = stdin.readline()
                if not line:
                    raise EOFError
        except (EOFError, KeyboardInterrupt):
            if interactive:
                note("")
            return 0
        line = line.rstrip("\r\n")
        if not line.strip():
            continue
        if line.startswith("/"):
            command, _, rest = line.partition(" ")
            if command in ("/quit", "/exit"):
                return 0
            if command == "/reset":
                session.reset()
                note("[history cleared]")
            elif command == "/system":
                session.set_system(rest.strip() or None)
                note(f"[system message {'set' if session.system else 'cleared'}; history cleared]")
            elif command == "/stats":
                for s in session.stats_lines():
                    note(s)
            elif command == "/help":
                note(HELP)
            else:
                note(f"unknown command {command!r}; /help lists the commands")
            continue
        try:
            reply = session.reply(line, on_text=write)
        except ValueError as err:  # e.g. a message too long for the window: say so and keep chatting
            note(f"error: {err}")
            continue
        write("\n")
        if reply.finish_reason == "interrupted":
            note("[reply stopped]")
        if reply.num_dropped_messages:
            note(f"[dropped the {reply.num_dropped_messages} oldest messages to fit the context window]")


def add_parser(subparsers: Any, verb: str) -> None:
    p = subparsers.add_parser(verb, help="terminal chat with a model directory", description=__doc__,
                              formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("model_dir", help="directory with config.json + safetensors and tokenizer.json")
    p.add_argument("--tokenizer", help="tokenizer directory (default: MODEL_DIR)")
    p.add_argument("--system", default=None, help="system message for the conversation")
    p.add_argument("--temperature", type=float, default=0.7, help="0 = greedy (default 0.7)")
    p.add_argument("--top-p", type=float, default=0.95, help="nucleus sampling mass (default 0.95; 1 = off)")
    p.add_argument("--max-tokens", type=int, default=256, help="longest reply in tokens (default 256)")
    p.add_argument("--seed", type=int, default=None, help="seed each reply's sampling (reproducible chats)")
    p.add_argument("--quantize", choices=("none", "int8"), default="none",
                   help="int8: dynamic int8 linear layers for CPU inference (stellarbyte.infer.quant)")
    p.add_argument("--device", default=None, help="cpu, cuda, cuda:1 ... (default: cuda if available)")
    p.add_argument("--dtype", choices=("float32", "bfloat16", "float16"), default=None,
                   help="weights and KV dtype (default: bfloat16 on CUDA, float32 on CPU)")
    p.add_argument("--num-blocks", type=int, default=None,
                   help="KV pool size in blocks (default: four context windows, so earlier turns stay cached)")
    p.add_argument("--block-size", type=int, default=16, help="tokens per KV block (default 16)")
    p.add_argument("--threads", type=int, default=None,
                   help="torch CPU threads (default: torch's choice; 1 is much faster on a busy machine)")
    p.set_defaults(func=run)


def build_llm(args: argparse.Namespace) -> LLM:
    """Load the model (optionally quantized) and its tokenizer into an engine sized for one conversation."""
    from stellarbyte.serve.loading import load_for_inference

    if args.block_size < 1 or (args.num_blocks is not None and args.num_blocks < 1):
        raise ValueError("--block-size and --num-blocks must be >= 1")
    model, tokenizer = load_for_inference(args.model_dir, args.tokenizer, args.device, args.dtype, args.quantize,
                                          args.threads)
    per_window = -(-model.config.context_length // args.block_size)
    num_blocks = args.num_blocks or 4 * per_window
    return LLM(model, tokenizer=tokenizer, block_size=args.block_size, num_blocks=num_blocks, max_num_seqs=1)


def run(args: argparse.Namespace) -> int:
    params = SamplingParams(temperature=args.temperature, top_p=args.top_p, max_tokens=args.max_tokens,
                            seed=args.seed)  # validated here: a bad flag fails before the model loads
    session = ChatSession(build_llm(args), params, system=args.system)
    interactive = sys.stdin.isatty()
    if interactive:
        with contextlib.suppress(ImportError):
            import readline  # noqa: F401  (line editing and history for input())
        print(f"chatting with {args.model_dir} (context {session.engine.context_length} tokens); /help for "
              f"commands, Ctrl-D to leave", file=sys.stderr)
    return run_chat(session, sys.stdin, sys.stdout, sys.stderr, interactive=interactive)
