"""Bad input to `stellarbyte pretrain` / `sft` (issue 4): one clear line on stderr and exit status 2, no traceback,
and no earlier checkpoint damaged. Each case goes through the CLI (stellarbyte.cli.main, or a subprocess where the
process itself must be constrained: an address-space limit for out-of-memory)."""

from __future__ import annotations

import errno
import json
import os
import subprocess
import sys
import uuid

import pytest
import torch
import yaml

from stellarbyte import ByteConfig, ByteModel
from stellarbyte.cli import main
from stellarbyte.train.checkpoint import CheckpointManager

MODEL = dict(vocab_size=384, hidden_size=32, intermediate_size=64, num_hidden_layers=1, num_attention_heads=2,
             num_key_value_heads=1, max_position_embeddings=64, tie_word_embeddings=True, pad_token_id=0)


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    from stellarbyte.data.pack import PackConfig, pack_documents
    from stellarbyte.tokenizer import train_tokenizer

    root = tmp_path_factory.mktemp("bad")
    facts = [f"P{i % 13} lives in T{(i * 7) % 5} and is {20 + i % 40} years old." for i in range(1500)]
    tok = train_tokenizer(iter(facts), 384, root / "tok")
    pack_documents(facts, tok, root / "packed", PackConfig(val_fraction=0.1))
    convs = [{"messages": [{"role": "user", "content": f"Where does P{i} live?"},
                           {"role": "assistant", "content": f"T{i % 5}."}]} for i in range(16)]
    (root / "sft.jsonl").write_text("\n".join(json.dumps(c) for c in convs))
    cfg = {"model": MODEL, "seq_len": 32, "batch_size": 4, "max_steps": 3, "warmup_steps": 1, "lr": 1e-3,
           "precision": "fp32", "device": "cpu", "eval_every": 0, "save_every": 3, "log_every": 1,
           "progress": False, "loggers": []}
    (root / "tiny.yaml").write_text(yaml.safe_dump(cfg, sort_keys=False))
    return root


def _fails(capsys, argv: list[str], *needles: str) -> str:
    """The command exits 2 with exactly one line on stderr holding every needle, and no traceback."""
    code = main(argv)
    err = capsys.readouterr().err
    assert code == 2, err
    assert err.count("\n") == 1 and "Traceback" not in err, err
    for needle in needles:
        assert needle in err, (needle, err)
    return err


def _pretrain(world, run_dir, *extra: str) -> list[str]:
    return ["pretrain", "--config", str(world / "tiny.yaml"), "--data-dir", str(world / "packed"),
            "--run-dir", str(run_dir), *extra]


def test_invalid_yaml_names_line_and_column(world, tmp_path, capsys):
    bad = tmp_path / "bad.yaml"
    bad.write_text("model:\n  hidden_size: 32\nlr: [0.1, 0.2\nbatch_size: 4\n")
    err = _fails(capsys, ["pretrain", "--config", str(bad)], "invalid YAML", f"{bad}:4:")
    assert "line 4" in err
    tabs = tmp_path / "tabs.yaml"
    tabs.write_text("seq_len: 32\nmodel:\n\thidden_size: 32\n")
    _fails(capsys, ["pretrain", "--config", str(tabs)], "invalid YAML", f"{tabs}:3:1")


def test_unknown_keys_suggest_the_nearest_name(world, tmp_path, capsys):
    cfg = yaml.safe_load((world / "tiny.yaml").read_text())
    cfg["warmup_step"] = cfg.pop("warmup_steps")
    path = tmp_path / "typo.yaml"
    path.write_text(yaml.safe_dump(cfg))
    _fails(capsys, ["pretrain", "--config", str(path), "--data-dir", str(world / "packed")],
           "unknown train config key 'warmup_step'", "did you mean 'warmup_steps'")
    _fails(capsys, _pretrain(world, tmp_path / "r", "--set", "model.hiden_size=64"), "hiden_size", "hidden_size")
    _fails(capsys, _pretrain(world, tmp_path / "r", "--set", "gradaccum=2"), "did you mean 'grad_accum'")


def test_missing_paths(world, tmp_path, capsys):
    _fails(capsys, ["pretrain", "--config", str(tmp_path / "none.yaml")], "no such config file")
    _fails(capsys, _pretrain(world, tmp_path / "r", "--data-dir", str(tmp_path / "nodata")),
           str(tmp_path / "nodata"), "stellarbyte data pack")
    def sft(tok, data):
        return ["sft", "--config", str(world / "tiny.yaml"), "--tokenizer", str(tok), "--sft-train", str(data),
                "--run-dir", str(tmp_path / "s"), "--seq-len", "64"]

    _fails(capsys, sft(world / "tok", tmp_path / "none.jsonl"), "none.jsonl", "no such conversations file")
    _fails(capsys, sft(tmp_path / "notok", world / "sft.jsonl"), "notok", "not a tokenizer directory")
    _fails(capsys, _pretrain(world, tmp_path / "r", "--init-from", str(tmp_path / "nomodel")),
           "--init-from must be a model directory")


def test_init_from_another_architecture_names_fields_and_shapes(world, tmp_path, capsys):
    torch.manual_seed(0)
    ByteModel(ByteConfig(**{**MODEL, "hidden_size": 48, "num_hidden_layers": 2})).save_pretrained(tmp_path / "m")
    err = _fails(capsys, _pretrain(world, tmp_path / "r", "--init-from", str(tmp_path / "m")),
                 "another architecture", "hidden_size 48 vs 32", "num_hidden_layers 2 vs 1",
                 "model.embed_tokens.weight [384, 48] vs [384, 32]", "exist in only one of them")
    assert not (tmp_path / "r" / "checkpoints").exists()  # refused before anything was written
    # SFT with a tokenizer larger than the model's vocabulary
    small = ByteModel(ByteConfig(**{**MODEL, "vocab_size": 256}))
    small.save_pretrained(tmp_path / "small")
    path = tmp_path / "nomodel.yaml"
    cfg = yaml.safe_load((world / "tiny.yaml").read_text())
    cfg.pop("model")
    path.write_text(yaml.safe_dump(cfg))
    _fails(capsys, ["sft", "--config", str(path), "--init-from", str(tmp_path / "small"), "--tokenizer",
                    str(world / "tok"), "--sft-train", str(world / "sft.jsonl"), "--run-dir", str(tmp_path / "s")],
           f"has {_vocab(world / 'tok')} tokens but the model only 256")
    assert err


def _vocab(tok_dir) -> int:
    from stellarbyte.tokenizer import ByteTokenizer

    return ByteTokenizer.from_pretrained(tok_dir).vocab_size


OOM_CHILD = r"""
import re, resource, sys
import torch  # noqa: F401  (mapped before the limit is set)
from stellarbyte.cli import main
size = int(re.search(r"VmSize:\s+(\d+) kB", open("/proc/self/status").read()).group(1)) * 1024
limit = size + (1536 << 20)  # 1.5 GiB of address space beyond what the imports took
resource.setrlimit(resource.RLIMIT_AS, (limit, limit))
sys.exit(main(sys.argv[1:]))
"""


@pytest.mark.slow  # a fresh interpreter importing torch: ~5 s
@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="needs /proc and RLIMIT_AS")
def test_batch_that_does_not_fit_in_memory(world, tmp_path):
    """A real allocation failure: 500 x 32 tokens with a 65,536-entry vocabulary need 4.2 GB of logits; the child
    process may map only 1.5 GiB more than its imports. One line, a suggestion, exit 2, no checkpoint."""
    run = tmp_path / "oom"
    argv = _pretrain(world, run, "--batch-size", "500", "--set", "model.vocab_size=65536")
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    proc = subprocess.run([sys.executable, "-c", OOM_CHILD, *argv], capture_output=True, text=True, env=env,
                          timeout=300)
    assert proc.returncode == 2, proc.stderr[-2000:]
    err = proc.stderr.strip().splitlines()
    assert len(err) == 1 and "Traceback" not in proc.stderr, proc.stderr[-2000:]
    for needle in ("out of memory in training step 1", "batch_size 500", "--grad-accum", "--batch-size",
                   "no checkpoint was written"):
        assert needle in err[0], err[0]
    assert CheckpointManager(run).latest() is None


def test_disk_full_during_checkpoint_keeps_the_previous_one(world, tmp_path, capsys, monkeypatch):
    """The second checkpoint's torch.save writes part of the file, then fails with ENOSPC (as a full disk does):
    one line, exit 2, `latest` still names the intact step-3 checkpoint, no temporary left; a resume then works."""
    import stellarbyte.train.checkpoint as checkpoint

    run = tmp_path / "run"
    argv = _pretrain(world, run, "--lr-schedule", "constant")
    assert main(argv) == 0
    capsys.readouterr()
    before = CheckpointManager(run).load("latest")
    real_save = checkpoint.torch.save

    def full_disk(obj, f, *args, **kwargs):
        f.write(b"\0" * 4096)  # a partial file, as a write cut short by a full disk leaves
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(checkpoint.torch, "save", full_disk)
    _fails(capsys, [*argv, "--resume", "--max-steps", "6"], "disk full", "No space left on device",
           "step_00000003", "intact", "--resume")
    monkeypatch.setattr(checkpoint.torch, "save", real_save)
    manager = CheckpointManager(run)
    assert manager.latest().name == "step_00000003"
    assert not [p.name for p in manager.dir.iterdir() if ".tmp-" in p.name]
    after = manager.load("latest")
    assert after["step"] == 3 and all(torch.equal(before["model"][k], after["model"][k]) for k in before["model"])
    assert main([*argv, "--resume", "--max-steps", "6"]) == 0  # space freed: the run continues
    assert "finished at step 6/6" in capsys.readouterr().out


def _mount_tmpfs(path, size: str) -> bool:
    path.mkdir()
    if os.geteuid() != 0:
        return False
    proc = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", f"sb-{uuid.uuid4().hex[:8]}", str(path)],
                          capture_output=True)
    return proc.returncode == 0


def test_real_full_filesystem(world, tmp_path, capsys):
    """The same on a real 2 MiB tmpfs filled up after the first checkpoint (needs root to mount; skipped
    elsewhere, the monkeypatched test above covers the logic everywhere)."""
    mnt = tmp_path / "small_fs"
    if not _mount_tmpfs(mnt, "2m"):
        pytest.skip("cannot mount a tmpfs here (needs root)")
    try:
        run = mnt / "run"
        argv = _pretrain(world, run, "--lr-schedule", "constant")
        assert main(argv) == 0
        capsys.readouterr()
        st = os.statvfs(mnt)
        free = st.f_bavail * st.f_frsize
        (mnt / "filler").write_bytes(b"\0" * max(free - 48 * 1024, 0))  # leave room for logs, not a checkpoint
        _fails(capsys, [*argv, "--resume", "--max-steps", "6"], "disk full", "step_00000003", "intact")
        manager = CheckpointManager(run)
        assert manager.latest().name == "step_00000003" and manager.load("latest")["step"] == 3
        assert not [p.name for p in manager.dir.iterdir() if ".tmp-" in p.name]
        (mnt / "filler").unlink()
        assert main([*argv, "--resume", "--max-steps", "6"]) == 0
    finally:
        subprocess.run(["umount", "-l", str(mnt)], capture_output=True)
