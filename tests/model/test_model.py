"""Whole-model behaviour: the issue's usage, loss, padding, outputs, checkpointing, bad input."""

import pytest
import torch
import torch.nn.functional as F
from tiny_models import VARIANTS, tiny_config, tiny_model

from stellarbyte import ByteConfig, ByteModel
from stellarbyte.infer import DynamicCache


@pytest.mark.slow
def test_issue_usage_runs_as_written():
    config = ByteConfig(vocab_size=32000, hidden_size=768, num_hidden_layers=12,
                        num_attention_heads=12, intermediate_size=3072)
    model = ByteModel(config)
    with torch.no_grad():
        out = model(torch.randint(0, 32000, (1, 512)))
    assert out.logits.shape == out["logits"].shape == (1, 512, 32000)


def test_output_access_styles():
    model = tiny_model()
    ids = torch.randint(0, 128, (2, 6))
    out = model(ids, labels=ids)
    assert out.keys() == ["loss", "logits"]
    assert out["loss"] is out.loss and out[0] is out.loss and out[1] is out.logits
    assert "past_key_values" not in out
    with pytest.raises(KeyError, match="aux_loss"):
        out["aux_loss"]


def test_loss_is_shifted_and_ignores_minus_100():
    model = tiny_model()
    ids = torch.randint(0, 128, (2, 8))
    labels = ids.clone()
    labels[0, :3] = -100
    out = model(ids, labels=labels)
    logits = out.logits[:, :-1].reshape(-1, 128)
    target = labels[:, 1:].reshape(-1)
    keep = target != -100
    expected = F.cross_entropy(logits[keep], target[keep])
    torch.testing.assert_close(out.loss, expected)


@pytest.mark.parametrize("name", sorted(VARIANTS))
def test_left_padded_batch_matches_each_sequence_alone(name):
    model = tiny_model(**VARIANTS[name])
    lengths = [9, 5, 2]
    seqs = [torch.randint(3, 128, (n,)) for n in lengths]
    width = max(lengths)
    ids = torch.zeros(len(seqs), width, dtype=torch.long)
    mask = torch.zeros_like(ids)
    for i, s in enumerate(seqs):
        ids[i, width - len(s):] = s
        mask[i, width - len(s):] = 1
    with torch.no_grad():
        batched = model(ids, attention_mask=mask).logits
        for i, s in enumerate(seqs):
            alone = model(s[None]).logits[0]
            torch.testing.assert_close(batched[i, width - len(s):], alone, rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("name", sorted(VARIANTS))
def test_every_variant_trains(name):
    model = tiny_model(**VARIANTS[name]).train()
    ids = torch.randint(0, 128, (2, 12))
    out = model(ids, labels=ids)
    out.loss.backward()
    assert torch.isfinite(out.loss)
    grads = [p.grad for p in model.parameters() if p.requires_grad]
    assert all(g is not None and torch.isfinite(g).all() for g in grads)


def test_tied_embeddings_share_storage():
    model = tiny_model(tie_word_embeddings=True)
    assert model.lm_head.weight is model.model.embed_tokens.weight
    assert model.num_parameters() == tiny_model().num_parameters() - 128 * 64


def test_gradient_checkpointing_gives_identical_gradients():
    ids = torch.randint(0, 128, (2, 10))
    grads = []
    for checkpointed in (False, True):
        model = tiny_model().train()
        if checkpointed:
            model.gradient_checkpointing_enable()
        model(ids, labels=ids).loss.backward()
        grads.append([p.grad.clone() for p in model.parameters()])
    for a, b in zip(*grads):
        torch.testing.assert_close(a, b)


def test_forward_step_and_chunked_prefill_match_full_forward():
    model = tiny_model(sliding_window=5)
    ids = torch.randint(0, 128, (2, 12))
    with torch.no_grad():
        full = model(ids).logits
        cache = DynamicCache()
        first = model(ids[:, :7], past_key_values=cache).logits  # prefill 7
        chunk = model(ids[:, 7:10], past_key_values=cache).logits  # a 3-token chunk with history
        steps = [model.forward_step(ids[:, t], cache) for t in (10, 11)]
    torch.testing.assert_close(first, full[:, :7], rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(chunk, full[:, 7:10], rtol=1e-5, atol=1e-5)
    for t, logits in zip((10, 11), steps):
        torch.testing.assert_close(logits, full[:, t], rtol=1e-5, atol=1e-5)
    assert cache.get_seq_length() == 12


def test_sliding_window_limits_what_attention_sees():
    model = tiny_model(sliding_window=4)
    ids = torch.randint(0, 128, (1, 10))
    changed = ids.clone()
    changed[0, 2] = (ids[0, 2] + 1) % 128
    with torch.no_grad():
        a, b = model(ids).logits, model(changed).logits
    # position 2 is outside the window of positions >= 6 in every layer's receptive field of 2 layers:
    # layer 2 at t sees t-3..t, each of which sees 3 more back: t-6..t. So t = 9 is unaffected.
    torch.testing.assert_close(a[0, 9], b[0, 9])
    assert not torch.allclose(a[0, 5], b[0, 5])


def test_too_long_input_gets_a_clear_error():
    model = tiny_model(max_position_embeddings=16)
    with pytest.raises(ValueError, match="context window is 16"):
        model(torch.randint(0, 128, (1, 17)))
    with pytest.raises(ValueError, match="exceeds the context window"):
        model.generate(torch.randint(0, 128, (1, 10)), max_new_tokens=10)
    with pytest.raises(ValueError, match="exactly one of"):
        model()


def test_model_rejects_non_config():
    with pytest.raises(TypeError, match="ByteConfig"):
        ByteModel({"hidden_size": 64})


def test_num_parameters_excluding_embeddings():
    cfg = tiny_config()
    model = ByteModel(cfg)
    assert model.num_parameters() - model.num_parameters(exclude_embeddings=True) == 2 * 128 * 64
