"""Distributed training on 2 CPU processes (gloo, launched by torchrun) against one process with the same global
batch: DDP, FSDP2 and tensor parallel reach the same per-step losses and weights (fp32, float tolerance); each rank
reads disjoint data; DCP checkpoints resume on another world size and layout (2 -> 1, 1 -> 2, FSDP -> DDP); a signal
on one rank stops both at the same step; the exported HF checkpoint loads in transformers with our logits.

Reference run: one process, batch_size 4. Distributed data-parallel runs: 2 ranks x batch_size 1 x grad_accum 2
(DDP no_sync / FSDP2 set_requires_gradient_sync on the first micro-step) or 2 ranks x batch_size 2: the same global
batch and the same samples per step (the loader gives rank r positions r, r+2, ... of the epoch's permutation).
Tensor-parallel runs: dp = 1, so batch_size 4 on both ranks.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from stellarbyte import ByteModel
from stellarbyte.train.checkpoint import CheckpointManager

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]
sys.path.insert(0, str(HERE))  # the worker module (also the in-process reference runner) and conftest
from conftest import write_packed  # noqa: E402
from test_distributed_worker import run as run_in_process  # noqa: E402

BASE = dict(seq_len=16, batch_size=4, grad_accum=1, max_steps=6, warmup_steps=2, lr=3e-3, precision="fp32",
            device="cpu", eval_every=3, eval_batches=2, save_every=3, keep_last=5, log_every=1, progress=False,
            weight_decay=0.1, loggers=[])


def launch(tmp: Path, name: str, data: str, nproc: int = 2, timeout: int = 240, expect_failure: bool = False,
           **spec) -> list[dict] | subprocess.CompletedProcess:
    """torchrun the worker on `nproc` gloo processes; returns each rank's record (or the failed process)."""
    run_dir = tmp / name
    spec = {"data": data, "out": str(run_dir / "out"), **spec}
    spec["cfg"] = {**BASE, "run_dir": str(run_dir), **spec.get("cfg", {})}
    path = tmp / f"{name}.json"
    path.write_text(json.dumps(spec))
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT), str(ROOT / "tests"), str(HERE)]),
           "OMP_NUM_THREADS": "1"}
    proc = subprocess.run([sys.executable, "-m", "torch.distributed.run", "--standalone", f"--nproc_per_node={nproc}",
                           str(HERE / "test_distributed_worker.py"), str(path)], env=env, capture_output=True,
                          text=True, timeout=timeout)
    if expect_failure:
        assert proc.returncode != 0
        return proc
    assert proc.returncode == 0, proc.stderr[-4000:]
    return [json.loads((run_dir / "out" / f"rank{r}.json").read_text()) for r in range(nproc)]


def losses(record: dict) -> dict[int, float]:
    return {int(k): v for k, v in record["losses"].items()}


def assert_same_losses(got: dict, want: dict, steps) -> None:
    for step in steps:
        assert got[step] == pytest.approx(want[step], rel=1e-5, abs=1e-6), f"step {step}: {got[step]} vs {want[step]}"


def assert_same_weights(model_dir: Path, reference: torch.nn.Module) -> None:
    got = ByteModel.from_pretrained(model_dir)
    for (name, p), q in zip(reference.named_parameters(), got.parameters()):
        torch.testing.assert_close(q, p, rtol=1e-4, atol=2e-5, msg=name)


@pytest.fixture(scope="module")
def tmp(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("dist")


@pytest.fixture(scope="module")
def data(tmp) -> str:
    return write_packed(tmp / "data")


@pytest.fixture(scope="module")
def reference(tmp, data):
    """One process, batch 4, 6 steps, state.pt checkpoints at 3 and 6."""
    trainer, record = run_in_process({"cfg": {**BASE, "run_dir": str(tmp / "ref")}, "data": data})
    return trainer, record


@pytest.fixture(scope="module")
def fsdp(tmp, data):
    return launch(tmp, "fsdp", data, cfg={"parallel": "fsdp", "batch_size": 2}, save_model=True)


def test_ddp_matches_one_process_and_ranks_read_disjoint_data(tmp, data, reference):
    ref_trainer, ref = reference
    ranks = launch(tmp, "ddp", data, cfg={"parallel": "ddp", "batch_size": 1, "grad_accum": 2}, save_model=True)
    for rec in ranks:  # every rank logs the global mean loss (validation: see the FSDP test, batch 1 x 2 != 4)
        assert_same_losses(losses(rec), losses(ref), range(1, 7))
    assert_same_weights(tmp / "ddp" / "model", ref_trainer.model)
    for step, want in enumerate(ref["inputs"]):
        seen0, seen1 = ranks[0]["inputs"], ranks[1]["inputs"]
        rows0, rows1 = seen0[2 * step] + seen0[2 * step + 1], seen1[2 * step] + seen1[2 * step + 1]  # 2 micro-steps
        assert len(rows0) == len(rows1) == 2
        assert not {tuple(r) for r in rows0} & {tuple(r) for r in rows1}  # disjoint
        assert sorted(rows0 + rows1) == sorted(want)  # together: the one-process global batch


def test_fsdp_matches_one_process_with_sharded_checkpoints(tmp, reference, fsdp):
    ref_trainer, ref = reference
    for rec in fsdp:
        assert_same_losses(losses(rec), losses(ref), range(1, 7))
        assert rec["val"]["6"] == pytest.approx(ref["val"][6], rel=1e-5)
    assert_same_weights(tmp / "fsdp" / "model", ref_trainer.model)
    ckpt = CheckpointManager(tmp / "fsdp").latest()
    assert ckpt.name == "step_00000006"
    names = sorted(p.name for p in (ckpt / "dcp").iterdir())
    assert names == [".metadata", "__0_0.distcp", "__1_0.distcp"]  # one shard file per rank
    state = torch.load(ckpt / "train_state.pt", weights_only=True)
    assert state["world"] == {"world_size": 2, "dp_size": 2, "tp_size": 1, "parallel": "fsdp"}
    assert [d["rank"] for d in state["data"]] == [0, 1] and len(state["rng"]) == 2


def test_fsdp_checkpoint_resumes_on_one_process(tmp, data, reference, fsdp):
    """2 ranks x batch 2 -> 1 process x batch 4: the loader position translates through the global sample offset."""
    _, ref = reference
    step3 = tmp / "fsdp" / "checkpoints" / "step_00000003"
    _, rec = run_in_process({"cfg": {**BASE, "run_dir": str(tmp / "fsdp_to_1")}, "data": data, "resume": str(step3),
                             "model_seed": 7})
    assert sorted(losses(rec)) == [4, 5, 6]
    assert_same_losses(losses(rec), losses(ref), range(4, 7))
    assert rec["inputs"] == ref["inputs"][3:]  # exactly the samples the uninterrupted run read


def test_a_checkpoint_of_another_architecture_is_a_clear_error(tmp, data, fsdp):
    step3 = tmp / "fsdp" / "checkpoints" / "step_00000003"
    with pytest.raises(ValueError, match="does not fit the current model and optimizer"):
        run_in_process({"cfg": {**BASE, "run_dir": str(tmp / "wrong")}, "data": data, "resume": str(step3),
                        "model": {"hidden_size": 32, "intermediate_size": 64}})


def test_export_of_fsdp_checkpoint_loads_in_transformers(tmp, fsdp):
    from transformers import AutoModelForCausalLM

    from stellarbyte.train.export import export

    out = export(tmp / "fsdp", tmp / "fsdp_hf")
    assert (out / "config.json").is_file() and (out / "model.safetensors").is_file()
    hf = AutoModelForCausalLM.from_pretrained(out).eval()
    ours = ByteModel.from_pretrained(tmp / "fsdp" / "model").eval()  # gathered by rank 0 at the end of the run
    ids = torch.randint(0, 128, (2, 12), generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        torch.testing.assert_close(hf(ids).logits, ours(ids).logits, rtol=1e-5, atol=1e-5)


@pytest.mark.slow
@pytest.mark.parametrize("parallel", ["none", "fsdp"])
def test_tensor_parallel_matches_one_process(tmp, data, reference, parallel):
    """tp = 2 on 2 ranks (dp = 1): pure TP, and TP composed with FSDP2 on the (dp, tp) mesh."""
    ref_trainer, ref = reference
    name = f"tp_{parallel}"
    ranks = launch(tmp, name, data, cfg={"parallel": parallel, "tensor_parallel": 2, "telemetry_every": 2},
                   save_model=True)
    for rec in ranks:
        assert_same_losses(losses(rec), losses(ref), range(1, 7))
        assert rec["inputs"] == ref["inputs"]  # both tp ranks read the whole batch
    assert_same_weights(tmp / name / "model", ref_trainer.model)
    # per-layer gradient norms of sharded gradients (two meshes under FSDP + TP) recombine to the global norm
    records = [json.loads(line) for line in (tmp / name / "metrics.jsonl").read_text().splitlines()]
    telemetry = [r for r in records if "grad_norm_layers" in r]
    assert [r["step"] for r in telemetry] == [2, 4, 6]
    for r in telemetry:
        total = sum(v * v for v in r["grad_norm_layers"].values()) ** 0.5
        assert total == pytest.approx(r["grad_norm"], rel=1e-5)
        assert set(r["act_rms"]) == {"layer.0", "layer.1"}
    from stellarbyte.train.export import export

    # the column / row shards of the DCP checkpoint stitch back into the full matrices
    gathered = ByteModel.from_pretrained(tmp / name / "model").state_dict()
    exported = ByteModel.from_pretrained(export(tmp / name, tmp / f"{name}_hf")).state_dict()
    assert gathered.keys() == exported.keys()
    for key in gathered:
        assert torch.equal(gathered[key], exported[key]), key


@pytest.mark.slow
def test_one_process_checkpoint_resumes_on_two_fsdp_ranks(tmp, data, reference):
    """A single-process state.pt (1 x batch 4) -> FSDP on 2 ranks x batch 1 x grad_accum 2 (FSDP2's
    set_requires_gradient_sync(False) on the first micro-step)."""
    _, ref = reference
    step3 = tmp / "ref" / "checkpoints" / "step_00000003"
    assert (step3 / "state.pt").is_file()
    ranks = launch(tmp, "one_to_fsdp", data, cfg={"parallel": "fsdp", "batch_size": 1, "grad_accum": 2},
                   resume=str(step3),
                   model_seed=5)
    for rec in ranks:
        assert sorted(losses(rec)) == [4, 5, 6]
        assert_same_losses(losses(rec), losses(ref), range(4, 7))


@pytest.mark.slow
def test_fsdp_checkpoint_resumes_under_ddp_and_a_signal_stops_every_rank(tmp, data, reference, fsdp):
    """FSDP step 3 -> DDP; SIGTERM reaches rank 1 only, at step 5: both ranks stop after step 5 with a checkpoint."""
    _, ref = reference
    step3 = tmp / "fsdp" / "checkpoints" / "step_00000003"
    ranks = launch(tmp, "fsdp_to_ddp", data, cfg={"parallel": "ddp", "batch_size": 2}, resume=str(step3),
                   kill_rank_at=[1, 5])
    for rec in ranks:
        assert rec["status"] == "interrupted" and rec["step"] == 5
        assert_same_losses(losses(rec), losses(ref), range(4, 6))
    assert CheckpointManager(tmp / "fsdp_to_ddp").latest().name == "step_00000005"


@pytest.mark.slow
def test_torchrun_pretrain_cli_with_fsdp_bf16(tmp, data):
    """The documented launch: torchrun ... -m stellarbyte.cli pretrain --parallel fsdp (bf16 mixed precision)."""
    run_dir = tmp / "cli"
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT), str(ROOT / "tests")]), "OMP_NUM_THREADS": "1"}
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2", "-m", "stellarbyte.cli",
           "pretrain", "--config", str(ROOT / "configs" / "tiny-cpu.yaml"), "--parallel", "fsdp", "--precision", "bf16",
           "--data-dir", data, "--set", "model.vocab_size=128", "--max-steps", "3", "--warmup-steps", "1",
           "--seq-len", "16", "--batch-size", "2", "--eval-every", "0", "--save-every", "0", "--progress", "false",
           "--loggers", "[]", "--run-dir", str(run_dir)]
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=240, cwd=tmp)
    assert proc.returncode == 0, proc.stderr[-4000:]
    assert proc.stdout.count("pretrain: finished at step 3/3") == 1  # rank 0 reports, once
    log = (run_dir / "train.log").read_text()
    assert "2 ranks (fsdp, dp 2 x tp 1)" in log and "(bf16)" in log
    assert (CheckpointManager(run_dir).latest() / "dcp" / ".metadata").is_file()
    model = ByteModel.from_pretrained(run_dir / "model")  # gathered full weights, float32 masters
    assert model.lm_head.weight.dtype == torch.float32 and model.config.vocab_size == 128


@pytest.mark.slow
def test_a_failed_distributed_save_stops_every_rank_and_keeps_the_last_checkpoint(tmp, data):
    """Rank 0 cannot finish step 6's checkpoint (disk full): both ranks raise (none hangs at a barrier), the staging
    directory is removed and `latest` still names the intact step 3 checkpoint, which resumes."""
    proc = launch(tmp, "disk_full", data, timeout=120, expect_failure=True, cfg={"parallel": "fsdp", "batch_size": 2},
                  disk_full_at=6)
    assert "could not write checkpoint step_00000006" in proc.stderr and "previous checkpoint is intact" in proc.stderr
    ckpts = tmp / "disk_full" / "checkpoints"
    assert CheckpointManager(tmp / "disk_full").latest().name == "step_00000003"
    assert not [p for p in ckpts.iterdir() if p.name.startswith(".tmp-")]
    assert not (ckpts / "step_00000006").exists()


@pytest.mark.slow
def test_sft_batches_with_unequal_targets_match_one_process(tmp, data):
    """Per-rank target counts differ (1 to 15 labelled tokens per row): dividing by the all-reduced global count and
    scaling by dp gives the one-process update, where a per-rank mean would weight short rows up."""
    sft = {"sft": True, "cfg": {"eval_every": 0, "save_every": 0, "batch_size": 1}}
    _, one = run_in_process({**sft, "data": data, "sft_group": 2,
                             "cfg": {**BASE, **sft["cfg"], "run_dir": str(tmp / "sft_one")}})
    ranks = launch(tmp, "sft_ddp", data, sft=True, cfg={**sft["cfg"], "parallel": "fsdp"})
    for rec in ranks:
        assert_same_losses(losses(rec), losses(one), range(1, 7))


@pytest.mark.slow
def test_one_process_dcp_checkpoint_resumes_on_two_ranks(tmp, data, reference):
    """DCP 1 -> 2: FSDP on a one-process group (batch 4) writes step 3; DDP on 2 ranks x batch 2 continues."""
    _, ref = reference
    launch(tmp, "fsdp_one", data, nproc=1, cfg={"parallel": "fsdp"})  # checkpoints at steps 3 and 6
    step3 = tmp / "fsdp_one" / "checkpoints" / "step_00000003"
    assert sorted(p.name for p in (step3 / "dcp").iterdir()) == [".metadata", "__0_0.distcp"]
    ranks = launch(tmp, "one_dcp_to_ddp", data, cfg={"parallel": "ddp", "batch_size": 2}, resume=str(step3))
    for rec in ranks:
        assert_same_losses(losses(rec), losses(ref), range(4, 7))


@pytest.mark.slow
def test_fsdp_times_tensor_parallel_on_a_two_by_two_mesh(tmp, data, reference):
    """4 processes, mesh (dp 2, tp 2): tp ranks of one dp group read the same batch, the dp groups disjoint halves;
    losses equal one process; the 4-shard DCP checkpoint exports to the gathered weights."""
    from stellarbyte.train.export import export

    ref_trainer, ref = reference
    ranks = launch(tmp, "mesh2x2", data, nproc=4, cfg={"parallel": "fsdp", "tensor_parallel": 2, "batch_size": 2},
                   save_model=True)
    assert [(r["dp_rank"], r["tp_rank"]) for r in ranks] == [(0, 0), (0, 1), (1, 0), (1, 1)]
    assert ranks[0]["inputs"] == ranks[1]["inputs"] and ranks[2]["inputs"] == ranks[3]["inputs"]
    for step, want in enumerate(ref["inputs"]):
        assert sorted(ranks[0]["inputs"][step] + ranks[2]["inputs"][step]) == sorted(want)
    for rec in ranks:
        assert_same_losses(losses(rec), losses(ref), range(1, 7))
    assert_same_weights(tmp / "mesh2x2" / "model", ref_trainer.model)
    assert len(list((tmp / "mesh2x2" / "checkpoints" / "step_00000006" / "dcp").glob("*.distcp"))) == 4
    exported = ByteModel.from_pretrained(export(tmp / "mesh2x2", tmp / "mesh2x2_hf")).state_dict()
    for key, value in ByteModel.from_pretrained(tmp / "mesh2x2" / "model").state_dict().items():
        assert torch.equal(value, exported[key]), key
