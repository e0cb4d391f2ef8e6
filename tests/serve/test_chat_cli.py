"""`stellarbyte chat`: streamed replies equal the engine's greedy replies for the same rendered conversation,
/reset and /system change what the model sees, later turns hit the prefix cache, Ctrl-C stops a reply and
frees its blocks, the history policy trims what no longer fits, and the real CLI works from a pipe."""

from __future__ import annotations

import io
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from tiny_models import tiny_model

from stellarbyte.infer.engine import LLM, SamplingParams
from stellarbyte.serve.chat_cli import ChatSession, run_chat
from stellarbyte.tokenizer import train_tokenizer

MAX_TOKENS = 8
CONTEXT = 256
BLOCK = 4


@pytest.fixture(scope="module", autouse=True)
def one_thread():
    """Batch-1 decoding of a tiny model is launch overhead: one thread is as fast alone and much faster on a
    busy machine (docs/chat.md). Restored afterwards for the other tests in this process."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("chat_model")
    corpus = out / "corpus.txt"
    corpus.write_text("hello there, how are you? i am fine. tell me a story about a cat and a dog.\n" * 50)
    tok = train_tokenizer([str(corpus)], 300, out)
    model = tiny_model(vocab_size=tok.vocab_size, max_position_embeddings=CONTEXT, eos_token_id=tok.eos_token_id)
    with torch.no_grad():  # no special token can win the argmax: every greedy reply runs to max_tokens
        model.lm_head.weight[:7] = 0.0
        model.lm_head.weight[7:] *= 4.0
    model.save_pretrained(out)
    return out


def new_llm(model_dir: Path) -> LLM:
    return LLM(model_dir, block_size=BLOCK, num_blocks=256, max_num_seqs=1)


def greedy(max_tokens: int = MAX_TOKENS) -> SamplingParams:
    return SamplingParams(temperature=0, max_tokens=max_tokens)


def reference(model_dir: Path, messages: list[dict]) -> tuple[str, list[int]]:
    """The engine's greedy reply on a fresh engine for the rendered conversation (the chat stops at <|im_end|>)."""
    llm = new_llm(model_dir)
    tok = llm.tokenizer
    ids = tok.apply_chat_template(messages, add_generation_prompt=True, tokenize=True)
    out = llm.generate([ids], SamplingParams(temperature=0, max_tokens=MAX_TOKENS,
                                             stop_token_ids=[tok.im_end_token_id]))[0].outputs[0]
    return out.text, out.token_ids


def has_quant() -> bool:
    try:
        from stellarbyte.infer.quant import quantize_model  # noqa: F401
    except ImportError:
        return False
    return True


def chat(session: ChatSession, text: str) -> tuple[str, str]:
    stdout, stderr = io.StringIO(), io.StringIO()
    assert run_chat(session, io.StringIO(text), stdout, stderr) == 0
    return stdout.getvalue(), stderr.getvalue()


def test_streamed_reply_equals_engine_greedy_reply(model_dir):
    session = ChatSession(new_llm(model_dir), greedy())
    pieces: list[str] = []
    reply = session.reply("hello there", on_text=pieces.append)
    text, ids = reference(model_dir, [{"role": "user", "content": "hello there"}])
    assert reply.token_ids == ids and len(ids) == MAX_TOKENS and reply.finish_reason == "length"
    assert "".join(pieces) == reply.text == text and len(text) > 0
    assert len(pieces) > 1  # streamed piece by piece, not in one write
    assert session.messages == [{"role": "user", "content": "hello there"}, {"role": "assistant", "content": text}]


def test_second_turn_extends_the_first_and_hits_the_prefix_cache(model_dir):
    session = ChatSession(new_llm(model_dir), greedy())
    first = session.reply("hello there")
    second = session.reply("tell me a story")
    history = [{"role": "user", "content": "hello there"}, {"role": "assistant", "content": first.text},
               {"role": "user", "content": "tell me a story"}]
    tok = session.llm.tokenizer
    assert second.prompt_token_ids == tok.apply_chat_template(history, add_generation_prompt=True, tokenize=True)
    text, _ = reference(model_dir, history)
    assert second.text == text
    shared = 0  # the second prompt starts with the first prompt + reply
    while first.prompt_token_ids[shared:shared + 1] == second.prompt_token_ids[shared:shared + 1]:
        shared += 1
    assert shared == len(first.prompt_token_ids)
    assert first.num_cached_tokens == 0
    assert second.num_cached_tokens >= shared // BLOCK * BLOCK > 0
    _, err = chat(session, "/stats\n")
    rate = session.engine.get_stats().prefix_cache_hit_rate
    assert rate > 0 and f"hit rate {rate:.1%}" in err
    assert f"{second.num_cached_tokens} from the prefix cache" in err


def test_reset_clears_history_through_the_loop(model_dir):
    session = ChatSession(new_llm(model_dir), greedy())
    out, err = chat(session, "hi\n/reset\nhello\n")
    hi, _ = reference(model_dir, [{"role": "user", "content": "hi"}])
    hello, _ = reference(model_dir, [{"role": "user", "content": "hello"}])
    assert out == hi + "\n" + hello + "\n"  # stdout holds exactly the replies
    assert "[history cleared]" in err
    tok = session.llm.tokenizer
    assert session.last.prompt_token_ids == tok.apply_chat_template(
        [{"role": "user", "content": "hello"}], add_generation_prompt=True, tokenize=True)
    assert session.messages == [{"role": "user", "content": "hello"}, {"role": "assistant", "content": hello}]


def test_system_command_and_flag_set_the_system_message(model_dir):
    session = ChatSession(new_llm(model_dir), greedy(), system="you are a cat.")
    out, _ = chat(session, "hi\n/system you are a dog.\nhi\n")
    cat, _ = reference(model_dir, [{"role": "system", "content": "you are a cat."}, {"role": "user", "content": "hi"}])
    dog_msgs = [{"role": "system", "content": "you are a dog."}, {"role": "user", "content": "hi"}]
    dog, _ = reference(model_dir, dog_msgs)
    assert out == cat + "\n" + dog + "\n"
    tok = session.llm.tokenizer
    assert session.last.prompt_token_ids == tok.apply_chat_template(dog_msgs, add_generation_prompt=True,
                                                                    tokenize=True)
    _, err = chat(session, "/system\n")
    assert session.system is None and session.messages == [] and "cleared" in err


def test_oldest_turns_dropped_to_fit_the_window(model_dir):
    session = ChatSession(new_llm(model_dir), greedy(16), system="you are a cat.")
    story = "tell me a story about a cat and a dog, how are you? " * 5
    out, err = chat(session, "".join(f"{story}part {i}\n" for i in range(5)))
    assert out.count("\n") >= 5
    r = session.last
    assert r.num_dropped_messages > 0 and "oldest messages to fit the context window" in err
    assert len(r.prompt_token_ids) + 16 <= CONTEXT
    # the session forgot what the model no longer saw; the system message is still there
    assert session.messages[-2]["content"] == f"{story}part 4"
    assert len(session.messages) < 10
    rendered = session.llm.tokenizer.apply_chat_template(
        [{"role": "system", "content": "you are a cat."}, *session.messages[:-1]], add_generation_prompt=True,
        tokenize=True)
    assert rendered == r.prompt_token_ids


def test_ctrl_c_stops_the_reply_and_frees_its_blocks(model_dir):
    session = ChatSession(new_llm(model_dir), greedy(100))
    engine = session.engine
    pieces: list[str] = []

    def interrupt(piece: str) -> None:  # the user presses Ctrl-C once the reply has started
        pieces.append(piece)
        if len(pieces) == 2:
            os.kill(os.getpid(), signal.SIGINT)

    reply = session.reply("hello there", on_text=interrupt)
    assert reply.finish_reason == "interrupted" and reply.text == "".join(pieces)
    assert 2 <= len(reply.token_ids) < 100
    assert engine.get_stats().num_free_blocks == engine.get_stats().num_blocks
    assert not engine.has_unfinished_requests()
    assert session.messages[-1] == {"role": "assistant", "content": reply.text}
    assert session.reply("again").finish_reason == "length"  # the engine keeps serving


def test_interrupt_before_any_text_leaves_no_turn(model_dir, monkeypatch):
    session = ChatSession(new_llm(model_dir), greedy())
    session.reply("hello there")
    before = list(session.messages)
    engine = session.engine

    def interrupted_step():
        raise KeyboardInterrupt  # a second Ctrl-C inside the first step of the reply

    monkeypatch.setattr(engine, "step", interrupted_step)
    reply = session.reply("tell me a story")
    assert reply.finish_reason == "interrupted" and reply.text == ""
    assert session.messages == before  # neither the question nor an empty answer joined the history
    monkeypatch.undo()
    assert engine.get_stats().num_free_blocks == engine.get_stats().num_blocks
    assert not engine.has_unfinished_requests()


def test_commands_help_unknown_quit_and_errors(model_dir):
    session = ChatSession(new_llm(model_dir), greedy())
    out, err = chat(session, "/help\n/bogus\n\n/quit\nnever read\n")
    assert out == "" and "/system TEXT" in err and "unknown command '/bogus'" in err
    assert session.num_turns == 0
    out, err = chat(session, ("cat " * 400) + "\nhi\n")  # too long for the window: a message, then more chat
    assert "error:" in err and "Shorten the message" in err and out.count("\n") == 1
    with pytest.raises(ValueError, match="max_tokens=256 must be below"):
        ChatSession(new_llm(model_dir), greedy(256))


@pytest.mark.slow  # a fresh interpreter imports torch (~5-10 s on 2 shared cores)
def test_cli_from_a_pipe(model_dir):
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[2])}
    cmd = [sys.executable, "-m", "stellarbyte.cli", "chat", str(model_dir), "--max-tokens", str(MAX_TOKENS),
           "--temperature", "0", "--block-size", str(BLOCK), "--threads", "1"]
    proc = subprocess.run(cmd, input="hi\n/reset\nhello\n", capture_output=True, text=True, env=env, timeout=120)
    assert proc.returncode == 0, proc.stderr
    hi, _ = reference(model_dir, [{"role": "user", "content": "hi"}])
    hello, _ = reference(model_dir, [{"role": "user", "content": "hello"}])
    assert proc.stdout == hi + "\n" + hello + "\n"
    assert "[history cleared]" in proc.stderr


def test_cli_in_process_flags_and_errors(model_dir, monkeypatch, capsys):
    from stellarbyte.cli import main

    args = ["chat", str(model_dir), "--max-tokens", str(MAX_TOKENS), "--temperature", "0", "--block-size",
            str(BLOCK), "--system", "you are a cat."]
    monkeypatch.setattr(sys, "stdin", io.StringIO("hi\n"))
    assert main(args) == 0
    cat, _ = reference(model_dir, [{"role": "system", "content": "you are a cat."}, {"role": "user", "content": "hi"}])
    assert capsys.readouterr().out == cat + "\n"
    # --quantize int8: runs when stellarbyte.infer.quant exists, else a one-line error naming the fix
    monkeypatch.setattr(sys, "stdin", io.StringIO("hi\n"))
    code = main(args + ["--quantize", "int8"])
    captured = capsys.readouterr()
    if has_quant():
        assert code == 0, captured.err
        assert captured.out.endswith("\n") and len(captured.out) > 1
        assert "quantized int8" in captured.err and "linear layers quantized" in captured.err
    else:
        assert code == 2 and "needs stellarbyte.infer.quant" in captured.err and "--quantize none" in captured.err
    empty = model_dir.parent / "no_tokenizer"
    empty.mkdir(exist_ok=True)
    (empty / "config.json").write_text((model_dir / "config.json").read_text())
    assert main(["chat", str(empty)]) == 2
    err = capsys.readouterr().err
    assert "no tokenizer.json" in err and "--tokenizer DIR" in err
    assert main(["chat", str(model_dir), "--temperature", "-1"]) == 2
    assert "temperature" in capsys.readouterr().err
    assert main(["chat", str(model_dir), "--threads", "0"]) == 2
    assert "--threads 0 must be >= 1" in capsys.readouterr().err
