"""quantize_model on ByteModel: logits, greedy tokens, perplexity of a briefly trained model, the engine, the
bytes report and every user error."""

import copy

import pytest
import torch
from tiny_models import tiny_model
from torch import nn

from stellarbyte.infer.engine import LLM, SamplingParams
from stellarbyte.infer.quant import Int8DynamicLinear, QuantizedLinear, WeightOnlyLinear, quantize_model, resolve_mode
from stellarbyte.infer.quant.evaluate import perplexity

WIDE = dict(hidden_size=128, intermediate_size=256, vocab_size=256)  # K divisible by every group size


def rel(a, b):
    return float((a - b).norm() / b.norm())


@pytest.mark.parametrize("mode,kw,bound", [
    ("int8", dict(backend="ours"), 0.02),
    ("int8", dict(backend="ao"), 0.06),
    ("int8-weight", dict(allow_reference=True), 0.02),
    ("int4", dict(group_size=32, allow_reference=True), 0.15),
    ("int4", dict(group_size=128, symmetric=False, allow_reference=True), 0.2),
])
def test_logits_close_and_report(mode, kw, bound):
    model = tiny_model(**WIDE)
    ids = torch.randint(0, 256, (2, 24), generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        ref = model(ids).logits
    q = copy.deepcopy(model)
    report = quantize_model(q, mode, **kw)
    with torch.no_grad():
        got = q(ids).logits
    assert rel(got, ref) < bound
    assert report.skipped == ["lm_head"] and isinstance(q.lm_head, nn.Linear)
    assert len(report.quantized) == 2 * 7  # q, k, v, o, gate, up, down per layer
    assert not any(type(m) is nn.Linear for n, m in q.named_modules() if n != "lm_head")
    assert report.linear_bytes_after < report.linear_bytes_before / 3
    assert report.model_bytes_after < report.model_bytes_before
    assert q.model.embed_tokens.weight.dtype == torch.float32  # embeddings are never quantized


def test_int8_report_counts_exact_bytes():
    model = tiny_model(**WIDE)
    report = quantize_model(model, "int8", backend="ours")
    linears = [(128, 128)] + [(64, 128)] * 2 + [(128, 128)]  # q, k, v, o: 4 heads x 32, 2 kv heads x 32
    linears += [(256, 128)] * 2 + [(128, 256)]  # gate, up, down
    per_layer = sum(n * k + 4 * n for n, k in linears)
    assert report.linear_bytes_after == 2 * per_layer
    assert report.linear_bytes_before == 2 * sum(4 * n * k for n, k in linears)
    assert "int8-dynamic: 14 linear layers quantized" in report.summary()


def test_greedy_tokens_mostly_equal():
    model = tiny_model(**WIDE)
    prompt = torch.randint(0, 256, (1, 8), generator=torch.Generator().manual_seed(1))
    ref = model.generate(prompt, max_new_tokens=16, eos_token_id=[])
    q = copy.deepcopy(model)
    quantize_model(q, "int8", backend="ours")
    got = q.generate(prompt, max_new_tokens=16, eos_token_id=[])
    assert (got == ref).float().mean() >= 0.9


def test_lm_head_can_be_quantized_even_when_tied():
    model = tiny_model(tie_word_embeddings=True, **WIDE)
    report = quantize_model(model, "int8-weight", skip=(), allow_reference=True)
    assert isinstance(model.lm_head, WeightOnlyLinear) and report.skipped == []
    assert model.device == torch.device("cpu") and model.dtype == torch.float32  # via the empty .weight placeholder
    assert model.model.embed_tokens.weight.numel() == 256 * 128  # the embedding keeps its float table
    assert model(torch.tensor([[1, 2, 3]])).logits.shape == (1, 3, 256)


def test_kernel_choice_reaches_every_layer():
    model = tiny_model(**WIDE)
    quantize_model(model, "int4", group_size=64, kernel="torch", allow_reference=True)
    kernels = {m.kernel for m in model.modules() if isinstance(m, WeightOnlyLinear)}
    assert kernels == {"torch"}


def test_skip_by_name():
    model = tiny_model(**WIDE)
    report = quantize_model(model, "int8", backend="ours", skip=("lm_head", "down_proj"))
    assert sorted(report.skipped) == ["lm_head", "model.layers.0.mlp.down_proj", "model.layers.1.mlp.down_proj"]
    assert isinstance(model.model.layers[0].mlp.up_proj, Int8DynamicLinear)


def test_modes_and_errors():
    assert resolve_mode("int8", "cpu") == "int8-dynamic"
    assert resolve_mode("INT8", "cuda") == "int8-weight"
    assert resolve_mode("int4", "cuda") == "int4"
    with pytest.raises(ValueError, match="unknown quantization mode 'fp4'.*int8-dynamic"):
        resolve_mode("fp4", "cpu")
    with pytest.raises(ValueError, match="CPU scheme; on CUDA use 'int8'"):
        resolve_mode("int8-dynamic", "cuda")
    model = tiny_model(**WIDE)
    with pytest.raises(ValueError, match="int4 weight-only.*Use 'int8' \\(dynamic int8\\) for CPU"):
        quantize_model(model, "int4")
    with pytest.raises(ValueError, match="group_size=16"):
        quantize_model(model, "int4", group_size=16, allow_reference=True)
    with pytest.raises(ValueError, match="backend 'fbgemm'"):
        quantize_model(model, "int8", backend="fbgemm")
    with pytest.raises(ValueError, match="weight-only kernel 'cutlass'"):
        quantize_model(model, "int4", kernel="cutlass", allow_reference=True)
    assert not any(isinstance(m, QuantizedLinear) for m in model.modules())  # failed calls changed nothing
    quantize_model(model, "int8")
    with pytest.raises(ValueError, match="already quantized"):
        quantize_model(model, "int8")
    narrow = tiny_model()  # hidden 64: group 128 cannot divide K
    with pytest.raises(ValueError, match="not a multiple of group_size=128"):
        quantize_model(narrow, "int4", group_size=128, allow_reference=True)


def test_engine_matches_quantized_generate():
    """Per-token activation scales make int8-dynamic independent of batch composition, so the engine (batched,
    padded, chunked) reproduces the quantized model's own generate() token for token."""
    model = tiny_model(**WIDE)
    quantize_model(model, "int8", backend="ours")
    g = torch.Generator().manual_seed(2)
    prompts = [torch.randint(0, 256, (n,), generator=g).tolist() for n in (3, 11, 6)]
    llm = LLM(model, num_blocks=32, block_size=4, max_num_batched_tokens=8)
    outs = llm.generate(prompts, SamplingParams(temperature=0, max_tokens=8, ignore_eos=True))
    for p, o in zip(prompts, outs):
        ref = model.generate(torch.tensor([p]), max_new_tokens=8, eos_token_id=[])[0, len(p):].tolist()
        assert o.outputs[0].token_ids == ref


def test_llm_quantization_option():
    model = tiny_model(**WIDE)
    llm = LLM(model, quantization="int8", num_blocks=16)
    assert llm.quantization.mode == "int8-dynamic" and len(llm.quantization.quantized) == 14
    out = llm.generate([[1, 2, 3]], SamplingParams(temperature=0, max_tokens=4, ignore_eos=True))
    assert len(out[0].outputs[0].token_ids) == 4
    with pytest.raises(ValueError, match="unknown quantization mode"):
        LLM(tiny_model(**WIDE), quantization="int3")


def _markov_stream(n: int, vocab: int = 64, seed: int = 0) -> torch.Tensor:
    """A learnable stream over 64 of the 256 ids: each token picks one of 4 successors of the previous one."""
    g = torch.Generator().manual_seed(seed)
    table = torch.randint(0, vocab, (vocab, 4), generator=g)
    out = [0]
    choice = torch.randint(0, 4, (n,), generator=g)
    for i in range(n - 1):
        out.append(int(table[out[-1], choice[i]]))
    return torch.tensor(out)


@pytest.mark.slow
def test_perplexity_change_small_on_trained_model():
    torch.manual_seed(0)
    model = tiny_model(**WIDE).train()
    stream = _markov_stream(12000)
    opt = torch.optim.AdamW(model.parameters(), lr=1e-2)
    for _ in range(80):
        starts = torch.randint(0, stream.numel() - 65, (8,))
        batch = torch.stack([stream[s:s + 64] for s in starts])
        loss = model(batch, labels=batch).loss
        opt.zero_grad()
        loss.backward()
        opt.step()
    model.eval()
    held_out = _markov_stream(4096, seed=0)[-1024:]
    base = perplexity(model, held_out, 64)
    assert base < 8  # it learned the chain (uniform over the vocab would be 256; the chain's floor is 4)
    deltas = {}
    for name, mode, kw in [("int8", "int8", dict(backend="ours")), ("int8-weight", "int8-weight", {}),
                           ("int4-g32", "int4", dict(group_size=32))]:
        q = copy.deepcopy(model)
        quantize_model(q, mode, allow_reference=True, **kw)
        deltas[name] = perplexity(q, held_out, 64) / base - 1
    print(f"perplexity {base:.3f}, relative change {deltas}")
    assert abs(deltas["int8"]) < 0.01 and abs(deltas["int8-weight"]) < 0.01
    assert abs(deltas["int4-g32"]) < 0.05
