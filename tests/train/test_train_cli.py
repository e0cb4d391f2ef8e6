"""`stellarbyte pretrain` / `sft` end to end on a tiny corpus: tokenizer -> pack -> pretrain -> resume -> SFT;
plus the one-line errors of bad input."""

from __future__ import annotations

import json

import pytest
import yaml

from stellarbyte import ByteModel
from stellarbyte.cli import main
from stellarbyte.data.pack import PackConfig, pack_documents
from stellarbyte.tokenizer import train_tokenizer

MODEL = dict(vocab_size=512, hidden_size=32, intermediate_size=64, num_hidden_layers=1, num_attention_heads=2,
             num_key_value_heads=1, max_position_embeddings=64, tie_word_embeddings=True, pad_token_id=0,
             attention_implementation="eager")


def _facts(n: int) -> list[str]:
    names = ["Ada", "Bo", "Cy", "Dee", "Eli", "Fay", "Gus", "Hal"]
    towns = ["Oakford", "Pinebrook", "Riverton", "Stonehill"]
    return [f"{names[i % 8]} lives in {towns[(i * 3) % 4]} and is {20 + i % 50} years old." for i in range(n)]


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    root = tmp_path_factory.mktemp("world")
    tok = train_tokenizer(iter(_facts(400)), 512, root / "tok")
    pack_documents(_facts(3000), tok, root / "packed", PackConfig(val_fraction=0.1))
    convs = [{"messages": [{"role": "user", "content": f"Where does {t.split()[0]} live?"},
                           {"role": "assistant", "content": t.split()[3]}]} for t in _facts(64)]
    (root / "sft.jsonl").write_text("\n".join(json.dumps(c) for c in convs))
    cfg = {"model": MODEL, "seq_len": 32, "batch_size": 4, "max_steps": 6, "warmup_steps": 1, "lr": 3e-3,
           "precision": "fp32", "device": "cpu", "eval_every": 3, "eval_batches": 2, "save_every": 3,
           "log_every": 1, "progress": False}
    (root / "tiny.yaml").write_text(yaml.safe_dump(cfg))
    return root


def test_pretrain_resume_then_sft(world, tmp_path, capsys):
    run = tmp_path / "pre"
    # a constant schedule: the lr of a step does not depend on max_steps, so 3 + 3 steps can equal 6 straight
    common = ["--config", str(world / "tiny.yaml"), "--data-dir", str(world / "packed"), "--run-dir", str(run),
              "--lr-schedule", "constant"]
    assert main(["pretrain", *common, "--max-steps", "3"]) == 0
    assert "finished at step 3/3" in capsys.readouterr().out
    assert main(["pretrain", *common, "--resume"]) == 0  # max_steps 6 from the YAML: continues from step 3
    out = capsys.readouterr().out
    assert "finished at step 6/6" in out and "val loss" in out
    saved = yaml.safe_load((run / "config.yaml").read_text())
    assert saved["max_steps"] == 6 and saved["data_dir"] == str(world / "packed")
    steps = [json.loads(line)["step"] for line in (run / "metrics.jsonl").read_text().splitlines()
             if "loss" in json.loads(line)]
    assert steps == [1, 2, 3, 4, 5, 6]
    straight = tmp_path / "straight"
    assert main(["pretrain", *common[:-4], "--run-dir", str(straight), "--lr-schedule", "constant"]) == 0
    capsys.readouterr()

    def losses(run_dir):
        records = [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]
        return {(r["step"], "loss" in r): r.get("loss", r.get("val_loss")) for r in records}

    assert losses(run) == losses(straight)  # 3 steps + resume for 3 == 6 straight, bitwise (CPU fp32)
    assert ByteModel.from_pretrained(run / "model").config.hidden_size == 32

    sft_run = tmp_path / "sft"
    assert main(["sft", "--config", str(world / "tiny.yaml"), "--init-from", str(run / "model"),
                 "--sft-train", str(world / "sft.jsonl"), "--sft-val", str(world / "sft.jsonl"),
                 "--tokenizer", str(world / "tok"), "--run-dir", str(sft_run), "--set", "lr=1e-3",
                 "--seq-len", "64"]) == 0
    assert "sft: finished at step 6/6" in capsys.readouterr().out
    assert (sft_run / "model" / "config.json").is_file()
    # too short a max length leaves no assistant token: one clear error naming the reason and the fix
    assert main(["sft", "--config", str(world / "tiny.yaml"), "--init-from", str(run / "model"),
                 "--sft-train", str(world / "sft.jsonl"), "--tokenizer", str(world / "tok"),
                 "--run-dir", str(tmp_path / "sft2")]) == 2
    assert "no_labels_after_truncation" in capsys.readouterr().err


@pytest.mark.parametrize("extra,message", [
    (["--set", "warmup_step=3"], "did you mean 'warmup_steps'"),
    (["--data-dir", "/no/such/dir"], "stellarbyte data pack"),
    (["--set", "model.hidden_size=33"], "hidden_size"),
    (["--precision", "fp8"], "precision must be one of"),
])
def test_bad_input_is_one_line_error(world, tmp_path, capsys, extra, message):
    args = ["pretrain", "--config", str(world / "tiny.yaml"), "--data-dir", str(world / "packed"),
            "--run-dir", str(tmp_path / "r"), *extra]
    assert main(args) == 2
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err and err.count("\n") == 1


def test_init_from_other_architecture_is_refused(world, tmp_path, capsys):
    other = ByteModel(__import__("stellarbyte").ByteConfig(**{**MODEL, "hidden_size": 64}))
    other.save_pretrained(tmp_path / "other")
    assert main(["pretrain", "--config", str(world / "tiny.yaml"), "--data-dir", str(world / "packed"),
                 "--init-from", str(tmp_path / "other"), "--run-dir", str(tmp_path / "r")]) == 2
    assert "another architecture" in capsys.readouterr().err


def test_help_explains_every_field(capsys):
    with pytest.raises(SystemExit):
        main(["pretrain", "--help"])
    out = capsys.readouterr().out
    for flag in ("--grad-accum", "--lr-schedule", "--resume", "--init-from", "--precision", "--set"):
        assert flag in out
