"""stellarbyte.eval.perplexity against independent computations: transformers' LlamaForCausalLM on the same weights
(our HF export), the HF perplexity guide's strided loop, a hand-written window list, and the trainer's loss."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from stellarbyte import ByteConfig, ByteModel
from stellarbyte.eval.perplexity import (
    PerplexityConfig,
    Window,
    plan_windows,
    read_documents,
    stream_perplexity,
    text_stream,
)

VOCAB = 97


@pytest.fixture(scope="module")
def ours_and_hf(tmp_path_factory):
    """A random tiny Llama-shaped ByteModel and the same weights loaded by transformers from our export."""
    transformers = pytest.importorskip("transformers")
    torch.manual_seed(0)
    config = ByteConfig(vocab_size=VOCAB, hidden_size=48, intermediate_size=96, num_hidden_layers=2,
                        num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=64,
                        initializer_range=0.2)  # large init: a non-trivial distribution, perplexity far from V
    model = ByteModel(config).eval()
    path = tmp_path_factory.mktemp("hf") / "model"
    model.save_pretrained(path)
    assert json.loads((path / "config.json").read_text())["model_type"] == "llama"
    hf = transformers.LlamaForCausalLM.from_pretrained(path, attn_implementation="eager",
                                                       torch_dtype=torch.float32).eval()
    return model, hf


def _stream(n: int, seed: int = 1) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, VOCAB, size=n)


@torch.no_grad()
def _hf_token_nll(hf, ids: np.ndarray) -> torch.Tensor:
    """-log p(ids[t+1] | ids[:t+1]) for t = 0 .. len-2 from transformers, float64."""
    x = torch.as_tensor(ids, dtype=torch.long)[None]
    logp = F.log_softmax(hf(x).logits[0].double(), dim=-1)  # (L, V)
    return -logp[:-1].gather(1, x[0, 1:, None])[:, 0]  # (L - 1,)


@pytest.mark.parametrize("n", [161, 150, 17, 2])  # N - 1 a multiple of T, a ragged tail, one short window, minimum
def test_non_overlapping_equals_transformers(ours_and_hf, n):
    model, hf = ours_and_hf
    tokens, t = _stream(n), 16
    # independent: cut windows of T + 1 tokens overlapping by one, score every target once, weight by token count
    total, count, begin = 0.0, 0, 0
    while begin < n - 1:
        chunk = tokens[begin:begin + t + 1]
        nll = _hf_token_nll(hf, chunk)
        total, count = total + float(nll.sum()), count + nll.numel()
        begin += t
    assert count == n - 1
    got = stream_perplexity(model, tokens, PerplexityConfig(seq_len=t, batch_size=3))
    assert got.tokens == n - 1 and got.windows == math.ceil((n - 1) / t)
    assert got.nll == pytest.approx(total / count, rel=1e-5)
    assert got.perplexity == pytest.approx(math.exp(total / count), rel=1e-5)
    assert math.isfinite(got.perplexity) and got.perplexity > 1.0


@pytest.mark.parametrize("n,stride", [(90, 5), (150, 12), (61, 16), (20, 1)])
def test_sliding_window_equals_hf_guide_loop(ours_and_hf, n, stride):
    """The HF guide's loop (windows of max_length tokens, each scoring its last trg_len = end - prev_end tokens),
    with max_length = T + 1 and the loss weighted by the tokens it really covers."""
    model, hf = ours_and_hf
    tokens, t = _stream(n, seed=2), 16
    max_length = t + 1
    total, count, prev_end = 0.0, 0, 0
    for begin in range(0, n, stride):
        end = min(begin + max_length, n)
        trg_len = end - prev_end
        labels = torch.as_tensor(tokens[begin:end])[None].clone()
        labels[:, :-trg_len] = -100
        with torch.no_grad():
            logits = hf(torch.as_tensor(tokens[begin:end])[None]).logits.double()
        shifted = labels[:, 1:]  # the model's internal shift: position p predicts token p + 1
        nll = F.cross_entropy(logits[0, :-1], shifted[0], ignore_index=-100, reduction="sum")
        total, count = total + float(nll), count + int((shifted != -100).sum())
        prev_end = end
        if end == n:
            break
    assert count == n - 1  # every token but the first, once
    got = stream_perplexity(model, tokens, PerplexityConfig(seq_len=t, stride=stride, batch_size=4))
    assert got.tokens == count and got.stride == stride
    assert got.nll == pytest.approx(total / count, rel=1e-5)


def test_sliding_windows_match_a_hand_computation(ours_and_hf):
    """N = 10, T = 4, stride 2, written out by hand: token j is scored in the first window that holds it after
    position 0, with the context that window gives it."""
    model, hf = ours_and_hf
    assert plan_windows(10, 4, 2) == [Window(0, 5, 1), Window(2, 7, 5), Window(4, 9, 7), Window(6, 10, 9)]
    assert plan_windows(10, 4) == [Window(0, 5, 1), Window(4, 9, 5), Window(8, 10, 9)]
    tokens = _stream(10, seed=3)
    # token j -> the first context token of the window that scores it
    context_start = {1: 0, 2: 0, 3: 0, 4: 0, 5: 2, 6: 2, 7: 4, 8: 4, 9: 6}
    nll = [float(_hf_token_nll(hf, tokens[b:j + 1])[-1]) for j, b in context_start.items()]
    got = stream_perplexity(model, tokens, PerplexityConfig(seq_len=4, stride=2))
    assert got.tokens == 9 and got.windows == 4
    assert got.nll == pytest.approx(sum(nll) / 9, rel=1e-5)
    # more context helps on average: sliding NLL differs from the non-overlapping one on the same tokens
    flat = stream_perplexity(model, tokens, PerplexityConfig(seq_len=4))
    assert flat.tokens == 9 and flat.nll != pytest.approx(got.nll, rel=1e-6)


def test_windows_cover_every_target_once():
    for n in (2, 3, 17, 100, 257):
        for t, s in ((16, None), (16, 16), (16, 1), (16, 7), (1, None)):
            scored = [j for w in plan_windows(n, t, s) for j in range(w.first_scored, w.end)]
            assert scored == list(range(1, n)), (n, t, s)
            assert all(w.end - w.begin <= t + 1 and w.first_scored > w.begin for w in plan_windows(n, t, s))


def test_batch_size_max_tokens_and_bf16(ours_and_hf):
    model, _ = ours_and_hf
    tokens = _stream(300, seed=4)
    one = stream_perplexity(model, tokens, PerplexityConfig(seq_len=32, batch_size=1))
    many = stream_perplexity(model, tokens, PerplexityConfig(seq_len=32, batch_size=16))
    assert many.nll == pytest.approx(one.nll, rel=1e-6)
    head = stream_perplexity(model, tokens, PerplexityConfig(seq_len=32, max_tokens=100))
    assert head.tokens == 99
    assert head.nll == pytest.approx(stream_perplexity(model, tokens[:100], PerplexityConfig(seq_len=32)).nll)
    bf16 = stream_perplexity(model, tokens, PerplexityConfig(seq_len=32, dtype="bf16"))
    assert bf16.dtype == "bf16" and bf16.nll == pytest.approx(one.nll, rel=0.03)
    assert next(model.parameters()).dtype == torch.float32  # the caller's model is restored


def test_equals_the_trainer_validation_loss(tmp_path):
    """With N - 1 a multiple of T, the windows are exactly the packed loader's validation blocks, so the perplexity
    equals exp(sum lm_loss / targets) over all of stellarbyte.train.batches.validation_batches."""
    from stellarbyte.data.pack import FORMAT, INDEX_FILE, VERSION
    from stellarbyte.eval.perplexity import packed_stream
    from stellarbyte.train.batches import count_targets, lm_loss, validation_batches

    data = tmp_path / "packed"
    data.mkdir()
    splits = {}
    for split, n in (("train", 200), ("validation", 8 * 24 + 1)):
        _stream(n, seed=5).astype(np.uint16).tofile(data / f"{split}_00000.bin")
        splits[split] = {"num_tokens": n, "num_docs": 1, "shards": [{"file": f"{split}_00000.bin", "num_tokens": n}]}
    (data / INDEX_FILE).write_text(json.dumps({"format": FORMAT, "version": VERSION, "dtype": "uint16",
                                               "vocab_size": VOCAB, "eos_token_id": 2, "splits": splits,
                                               "content_hash": "test"}))
    torch.manual_seed(0)
    model = ByteModel(ByteConfig(vocab_size=VOCAB, hidden_size=32, intermediate_size=64, num_hidden_layers=1,
                                 num_attention_heads=2, max_position_embeddings=64)).eval()
    total, count = 0.0, 0
    with torch.no_grad():
        for batch in validation_batches(data, 4, 8, max_batches=100)():
            total, count = total + float(lm_loss(model, batch)), count + count_targets(batch)
    got = stream_perplexity(model, packed_stream(data), PerplexityConfig(seq_len=8, batch_size=5))
    assert got.tokens == count == 8 * 24
    assert got.nll == pytest.approx(total / count, rel=1e-6)


class _CharTokenizer:
    eos_token_id = 2

    def encode_batch(self, texts):
        return [[3 + (ord(c) % 90) for c in t] for t in texts]


def test_text_sources(tmp_path):
    (tmp_path / "a.txt").write_text("ab c\n\nsecond doc\n\n\n", encoding="utf-8")
    (tmp_path / "b.jsonl").write_text('{"text": "xy"}\n\n{"text": "z"}\n', encoding="utf-8")
    assert read_documents(tmp_path / "a.txt") == ["ab c", "second doc"]  # blank-only pieces dropped
    tok = _CharTokenizer()
    stream = text_stream([tmp_path / "a.txt", tmp_path / "b.jsonl"], tok).tolist()
    docs = ["ab c", "second doc", "xy", "z"]
    assert stream == [i for d in tok.encode_batch(docs) for i in (*d, 2)]
    (tmp_path / "bad.jsonl").write_text('{"text": "ok"}\n{"txt": 1}\n')
    with pytest.raises(ValueError, match=r"bad.jsonl:2: expected an object with a \"text\""):
        read_documents(tmp_path / "bad.jsonl")
    (tmp_path / "c.csv").write_text("x")
    with pytest.raises(ValueError, match="unsupported file type .csv"):
        read_documents(tmp_path / "c.csv")
    with pytest.raises(FileNotFoundError, match="no such file"):
        read_documents(tmp_path / "missing.txt")


def test_bad_settings(ours_and_hf):
    model, _ = ours_and_hf
    with pytest.raises(ValueError, match="stride must be in"):
        PerplexityConfig(seq_len=8, stride=9)
    with pytest.raises(ValueError, match="dtype must be one of"):
        PerplexityConfig(dtype="fp8")
    with pytest.raises(ValueError, match="outside the model's vocabulary"):
        stream_perplexity(model, [1, 2, VOCAB], PerplexityConfig(seq_len=8))
    with pytest.raises(ValueError, match="exceeds the model's context window 64"):
        stream_perplexity(model, [1, 2, 3], PerplexityConfig(seq_len=65))
    with pytest.raises(ValueError, match="at least 2 tokens"):
        stream_perplexity(model, [1], PerplexityConfig(seq_len=8))
