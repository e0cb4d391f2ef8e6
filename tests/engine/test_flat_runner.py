"""The flattened runner (one row of all scheduled tokens + paged attention): metadata, logits vs the padded torch
reference runner (PagedStepCache), exactness vs generate() across architectures, backend selection, graph padding."""

import numpy as np
import pytest
import torch
from tiny_models import VARIANTS, tiny_model

from stellarbyte.infer.engine import LLM, SamplingParams
from stellarbyte.infer.engine.block_manager import BlockManager
from stellarbyte.infer.engine.config import EngineConfig
from stellarbyte.infer.engine.cuda_graphs import capture_sizes
from stellarbyte.infer.engine.flat_batch import FlatBatchBuilder
from stellarbyte.infer.engine.flat_runner import FlatModelRunner
from stellarbyte.infer.engine.kv_cache import PagedKVCache
from stellarbyte.infer.engine.model_runner import ModelRunner
from stellarbyte.infer.engine.scheduler import ScheduledBatch
from stellarbyte.infer.engine.sequence import Sequence


def prompts(lengths=(3, 17, 1, 30, 9, 12), seed=0):
    g = torch.Generator().manual_seed(seed)
    return [torch.randint(0, 128, (n,), generator=g).tolist() for n in lengths]


def greedy_check(model, llm, ps, max_tokens=10):
    outs = llm.generate(ps, SamplingParams(temperature=0, max_tokens=max_tokens, ignore_eos=True))
    for p, o in zip(ps, outs):
        ref = model.generate(torch.tensor([p]), max_new_tokens=max_tokens, eos_token_id=[])[0, len(p):].tolist()
        assert o.outputs[0].token_ids == ref, f"prompt of length {len(p)}"
    stats = llm.engine.get_stats()
    assert stats.num_free_blocks == stats.num_blocks
    return stats


def mixed_step():
    """A second prefill chunk of `a` (tokens 6..10) beside `b`'s decode, blocks scattered."""
    bm = BlockManager(16, 4)
    bm.free.move_to_end(0)
    a, b = (Sequence(r, p, SamplingParams()) for r, p in (("a", list(range(3, 14))), ("b", [5, 9, 2, 7, 1])))
    first = ScheduledBatch([a, b], [bm.admit(a, 6), bm.admit(b, 100)])
    return bm, a, b, first


def test_metadata_of_a_mixed_step():
    bm, a, b, first = mixed_step()
    a.num_computed_tokens, b.num_computed_tokens = 6, 5
    b.append_token(42)
    assert bm.allocate_slots(a, 5) and bm.allocate_slots(b, 1)
    builder = FlatBatchBuilder(32, 4, 8, 4, "cpu")
    meta = builder.build(ScheduledBatch([a, b], [5, 1]))
    assert meta.input_ids.tolist() == a.token_ids[6:11] + [42]
    assert meta.positions.tolist() == [6, 7, 8, 9, 10, 5]
    assert meta.cu_seqlens_q.tolist() == [0, 5, 6] and meta.seq_lens.tolist() == [11, 6]
    assert meta.logits_indices.tolist() == [4, 5] and meta.max_query_len == 5
    expected = [a.block_table[p // 4] * 4 + p % 4 for p in range(6, 11)] + [b.block_table[1] * 4 + 1]
    assert meta.slot_mapping.tolist() == expected
    assert meta.block_tables[0, :3].tolist() == a.block_table and meta.block_tables.shape == (2, 8)
    # a decode step padded for a graph of 4: pad sequences own one token, seq_len 0, no cache write
    padded = builder.build(ScheduledBatch([a, b], [1, 1]), pad_seqs_to=4)
    assert padded.num_tokens == 4 and padded.cu_seqlens_q.tolist() == [0, 1, 2, 3, 4]
    assert padded.seq_lens.tolist()[2:] == [0, 0] and padded.slot_mapping.tolist()[2:] == [-1, -1]
    assert padded.input_ids.tolist()[2:] == [0, 0]
    assert np.all(builder.host_np[builder.offsets[builder.TABLES] + 16:][:8] == 0)


def _flat_vs_padded(model, backend, dtype, atol):
    c = model.config
    caches = [PagedKVCache(c.num_hidden_layers, 16, 4, c.num_key_value_heads, c.head_dim, dtype, model.device)
              for _ in range(2)]
    bm, a, b, first = mixed_step()
    ref_runner = ModelRunner(model, caches[0])
    flat = FlatModelRunner(model, caches[1], backend, max_num_seqs=4, max_num_batched_tokens=32, cuda_graphs=False)
    torch.testing.assert_close(flat.run(first).float(), ref_runner.run(first), rtol=0, atol=atol)
    a.num_computed_tokens, b.num_computed_tokens = 6, 5
    b.append_token(42)
    assert bm.allocate_slots(a, 5) and bm.allocate_slots(b, 1)
    step = ScheduledBatch([a, b], [5, 1])
    torch.testing.assert_close(flat.run(step).float(), ref_runner.run(step), rtol=0, atol=atol)
    for layer in range(c.num_hidden_layers):  # the same K/V landed in the same slots
        torch.testing.assert_close(caches[1].keys[layer], caches[0].keys[layer], rtol=0, atol=atol)
        torch.testing.assert_close(caches[1].values[layer], caches[0].values[layer], rtol=0, atol=atol)


def test_flat_logits_equal_padded_reference_runner():
    # both runners return float32 logits; eager attention takes its softmax in float32: hence 1e-6 in float64
    _flat_vs_padded(tiny_model().double(), "flat", torch.float64, atol=1e-6)


def test_triton_logits_equal_padded_reference_runner(triton_device):
    """The Triton kernels (interpreter on CPU) inside the runner vs the PagedStepCache path, float32."""
    _flat_vs_padded(tiny_model().float().to(triton_device), "triton", torch.float32, atol=1e-4)


@pytest.mark.parametrize("variant", ["llama", "mqa", "qk_norm_bias", "window", "xpos", "learned",
                                     "offset_parallel_gelu"])
def test_flat_backend_greedy_matches_generate(variant):
    model = tiny_model(**VARIANTS[variant]).double()
    llm = LLM(model, block_size=4, num_blocks=64, max_num_batched_tokens=16, attention_backend="flat")
    assert isinstance(llm.engine.runner, FlatModelRunner)
    greedy_check(model, llm, prompts())


def test_flat_backend_with_preemption_and_prefix_cache():
    model = tiny_model().double()
    system = prompts((20,), seed=4)[0]
    ps = [system + p for p in prompts((3, 9, 1, 14), seed=5)]
    llm = LLM(model, block_size=4, num_blocks=14, max_num_batched_tokens=16, attention_backend="flat")
    stats = greedy_check(model, llm, ps, max_tokens=12)
    assert stats.num_preemptions > 0 and stats.prefix_cache_hit_rate > 0


@pytest.mark.slow
def test_triton_backend_greedy_matches_generate(triton_device):
    """The Triton kernels inside the engine (interpreter on CPU: float32, few tokens)."""
    model = tiny_model().float().to(triton_device)
    llm = LLM(model, block_size=4, num_blocks=32, max_num_batched_tokens=8, attention_backend="triton",
              cuda_graphs=False)
    ps = prompts((3, 11, 1), seed=2)
    outs = llm.generate(ps, SamplingParams(temperature=0, max_tokens=4, ignore_eos=True))
    for p, o in zip(ps, outs):
        ref = model.generate(torch.tensor([p], device=triton_device), max_new_tokens=4, eos_token_id=[])
        assert o.outputs[0].token_ids == ref[0, len(p):].tolist()


def test_backend_selection_and_errors():
    model = tiny_model()
    assert LLM(model).engine.attention_backend == "torch"  # auto on CPU: the reference path
    alibi = tiny_model(**VARIANTS["alibi"])
    with pytest.raises(ValueError, match="ALiBi"):
        LLM(alibi, attention_backend="flat")
    assert LLM(alibi, attention_backend="auto").engine.attention_backend == "torch"
    ntk = tiny_model(rope_config=dict(rope_type="dynamic", factor=2.0))
    with pytest.raises(ValueError, match="dynamic-NTK"):
        LLM(ntk, attention_backend="flat")
    with pytest.raises(ValueError, match="attention_backend"):
        EngineConfig(attention_backend="flash")
    with pytest.raises(ValueError, match="cuda_graphs"):
        EngineConfig(cuda_graphs="yes")
    assert capture_sizes(256) == [1, 2, 4, 8, 16, 32, 64, 128, 256]
    assert capture_sizes(48) == [1, 2, 4, 8, 16, 32, 48] and capture_sizes(1) == [1]
