"""Distributed pieces that need no second process: the loader-position translation rule, config and launch
validation, the mesh-aware gradient clipping against torch's, export of a single-process checkpoint (transformers
logits) and the tensor-parallel plan checks. The 2-process equality tests are in test_distributed.py."""

from __future__ import annotations

import json

import pytest
import torch
from tiny_models import tiny_config, tiny_model

from stellarbyte import ByteModel
from stellarbyte.train.batches import pretrain_batches
from stellarbyte.train.config import TrainConfig
from stellarbyte.train.dist_checkpoint import translate_data_state
from stellarbyte.train.distributed import clip_grad_norm, init_distributed
from stellarbyte.train.export import export
from stellarbyte.train.tensor_parallel import block_plan, check_tensor_parallel
from stellarbyte.train.trainer import Trainer


def _loader_state(packed, batch_size, rank, world, batches_taken):
    src = pretrain_batches(packed, batch_size, 16, seed=0, rank=rank, world_size=world)
    for _ in range(batches_taken):
        next(src)
    return src


def test_loader_position_translates_through_the_global_sample_offset(packed):
    """2 ranks x batch 2 after 3 batches = 12 samples of the epoch = 3 batches of 4 on one process, and the next
    batch there is exactly the union of what the two ranks would read next."""
    ranks = [_loader_state(packed, 2, r, 2, 3) for r in range(2)]
    saved = [r.state_dict() for r in ranks]
    one = pretrain_batches(packed, 4, 16, seed=0)
    state = translate_data_state(saved, {**one.state_dict(), "_dp_size": 1}, 0)
    assert state["batch"] == 3 and state["world_size"] == 1 and state["batch_size"] == 4
    one.load_state_dict(state)
    got = next(one)["input_ids"].tolist()
    want = next(ranks[0])["input_ids"].tolist() + next(ranks[1])["input_ids"].tolist()
    assert sorted(got) == sorted(want)
    # and back: 1 process x batch 4 after 3 batches -> rank 1 of 2 x batch 2 continues at its batch 6
    two = pretrain_batches(packed, 2, 16, seed=0, rank=1, world_size=2)
    back = translate_data_state([one.state_dict()], {**two.state_dict(), "_dp_size": 2}, 1)
    assert back["batch"] == 4 and back["rank"] == 1  # 4 batches of 4 = 16 samples = 4 steps of 2 ranks x 2
    # same world size: the saved state of this rank, untouched
    assert translate_data_state(saved, {**ranks[1].state_dict(), "_dp_size": 2}, 1) == saved[1]


def test_loader_translation_refuses_a_global_batch_that_does_not_divide(packed):
    saved = [_loader_state(packed, 3, 0, 1, 1).state_dict()]  # 3 samples consumed
    current = pretrain_batches(packed, 2, 16, seed=0, rank=0, world_size=2).state_dict()
    with pytest.raises(ValueError, match="keep the global batch"):
        translate_data_state(saved, {**current, "_dp_size": 2}, 0)


def test_sft_position_translates_by_world_size():
    saved = [{"position": 6, "num_batches": 10}, {"position": 6, "num_batches": 10}]  # 2 ranks, 12 batches used
    assert translate_data_state(saved, {"position": 0, "num_batches": 20, "_dp_size": 1}, 0)["position"] == 12
    with pytest.raises(ValueError, match="not a multiple"):
        translate_data_state([{"position": 3, "num_batches": 9}], {"position": 0, "num_batches": 4, "_dp_size": 2}, 0)


@pytest.mark.parametrize("kw, match", [
    (dict(parallel="zero3"), "parallel must be one of none, ddp, fsdp"),
    (dict(tensor_parallel=0), "tensor_parallel must be an integer >= 1"),
    (dict(tensor_parallel=3, model={"num_attention_heads": 4, "intermediate_size": 96}),
     "tensor_parallel 3 must divide model.num_attention_heads"),
    (dict(tensor_parallel=2, model={"num_attention_heads": 4, "num_key_value_heads": 1}),
     "must divide model.num_key_value_heads"),
    (dict(parallel="fsdp", optimizer="muon"), "optimizer muon needs whole matrices"),
    (dict(parallel="fsdp", precision="fp16"), "fp16 .* not supported"),
])
def test_config_rejects_unsupported_layouts(kw, match):
    with pytest.raises(ValueError, match=match):
        TrainConfig(**kw)


def test_a_multi_process_launch_needs_a_parallel_mode(monkeypatch):
    monkeypatch.setenv("WORLD_SIZE", "2")
    with pytest.raises(ValueError, match="pass --parallel ddp or --parallel fsdp"):
        init_distributed(TrainConfig())
    monkeypatch.setenv("WORLD_SIZE", "1")
    assert not init_distributed(TrainConfig()).enabled  # the one-process path: no group, no mesh


def test_tensor_parallel_plan_and_checks():
    model = tiny_model()
    plan = block_plan(model.model.layers[0])
    assert {k: type(v).__name__ for k, v in plan.items()} == {
        "self_attn.q_proj": "ColwiseParallel", "self_attn.k_proj": "ColwiseParallel",
        "self_attn.v_proj": "ColwiseParallel", "self_attn.o_proj": "RowwiseParallel",
        "mlp.gate_proj": "ColwiseParallel", "mlp.up_proj": "ColwiseParallel", "mlp.down_proj": "RowwiseParallel"}
    plain = block_plan(tiny_model(mlp_type="gelu").model.layers[0])
    assert set(plain) == {"self_attn.q_proj", "self_attn.k_proj", "self_attn.v_proj", "self_attn.o_proj",
                          "mlp.up_proj", "mlp.down_proj"}
    check_tensor_parallel(tiny_config(), 2)
    with pytest.raises(ValueError, match="must divide model.num_key_value_heads"):
        check_tensor_parallel(tiny_config(), 4)


def test_clip_grad_norm_equals_torch_on_plain_tensors():
    torch.manual_seed(0)
    a, b = tiny_model(), tiny_model()
    b.load_state_dict(a.state_dict())
    x = torch.randint(0, 128, (2, 12))
    for m in (a, b):
        m(x, labels=x).loss.backward()
    want = torch.nn.utils.clip_grad_norm_(a.parameters(), 0.5)
    got = clip_grad_norm(b.parameters(), 0.5)
    assert float(got) == float(want)
    for p, q in zip(a.parameters(), b.parameters()):
        assert torch.equal(p.grad, q.grad)


def test_export_of_a_single_process_run_loads_in_transformers(tmp_path, packed):
    from transformers import AutoModelForCausalLM

    cfg = TrainConfig(seq_len=16, batch_size=4, max_steps=2, warmup_steps=0, precision="fp32", device="cpu",
                      eval_every=0, save_every=0, progress=False, loggers=[], run_dir=str(tmp_path / "run"),
                      tokenizer=str(tmp_path / "tok"))
    (tmp_path / "tok").mkdir()
    (tmp_path / "tok" / "tokenizer.json").write_text(json.dumps({"version": "1.0"}))
    trainer = Trainer(tiny_model(), cfg, pretrain_batches(packed, 4, 16))
    trainer.train()
    out = export(tmp_path / "run", tmp_path / "hf")
    assert (out / "tokenizer.json").read_text() == json.dumps({"version": "1.0"})  # the run's tokenizer came along
    hf = AutoModelForCausalLM.from_pretrained(out).eval()
    ids = torch.randint(0, 128, (2, 10), generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        torch.testing.assert_close(hf(ids).logits, trainer.model.eval()(ids).logits, rtol=1e-5, atol=1e-5)
    assert torch.equal(ByteModel.from_pretrained(out).lm_head.weight, trainer.model.lm_head.weight)


def test_export_bad_input_is_clear(tmp_path):
    with pytest.raises(FileNotFoundError, match="no such run or checkpoint"):
        export(tmp_path / "nope", tmp_path / "out")
    (tmp_path / "empty").mkdir()
    with pytest.raises(FileNotFoundError, match="not a checkpoint directory"):
        export(tmp_path / "empty", tmp_path / "out")


def test_export_verb_parser(tmp_path, packed):
    import argparse

    from stellarbyte.train import export as export_module

    cfg = TrainConfig(seq_len=16, batch_size=4, max_steps=1, warmup_steps=0, precision="fp32", device="cpu",
                      eval_every=0, save_every=0, progress=False, loggers=[], run_dir=str(tmp_path / "run"))
    Trainer(tiny_model(), cfg, pretrain_batches(packed, 4, 16)).train()
    parser = argparse.ArgumentParser()
    export_module.add_parser(parser.add_subparsers(), "export")
    args = parser.parse_args(["export", str(tmp_path / "run" / "checkpoints" / "step_00000001"), str(tmp_path / "o")])
    assert args.func(args) == 0 and (tmp_path / "o" / "model.safetensors").is_file()
