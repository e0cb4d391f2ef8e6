"""`stellarbyte quickstart --fast` end to end: the run directory, summary.json, and a loadable RUN/model.

The fast setting trains a 0.1M-parameter model for 20 + 10 steps, so accuracies pin the plumbing (scored by
check_answer, in [0, 1], chance from the toy world's manifest), not learning; docs/quickstart.md has the measured
default run.
"""

from __future__ import annotations

import json
import math

import pytest
import torch

from stellarbyte.cli import main as cli_main
from stellarbyte.quickstart import FAST, run_quickstart

SUMMARY_KEYS = {"out_dir", "size", "seed", "fast", "vocab_size", "parameters", "model_dir", "pretrain_steps",
                "sft_steps", "pretrain_tokens", "packed_train_tokens", "val_ppl_pretrain", "val_ppl", "accuracy",
                "overall_accuracy", "overall_chance", "heldout_questions", "kinds_above_chance", "samples", "times_s",
                "wall_s", "best_pretrain_step", "best_pretrain_val_loss", "pretrain_model_dir", "best_sft_step",
                "best_sft_val_loss", "sft_model_dir"}


@pytest.fixture(scope="module")
def fast_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("qs") / "run"
    code = cli_main(["quickstart", "--fast", "--out", str(out), "--no-progress"])
    assert code == 0
    return out


def test_run_directory_contents(fast_run):
    for rel in ("toyworld/manifest.json", "toyworld/eval/heldout.jsonl", "tokenizer/tokenizer.json",
                "packed/index.json", "pretrain/config.yaml", "pretrain/model/config.json", "sft/config.yaml",
                "sft/train.log", "model/config.json", "model/model.safetensors", "model/generation_config.json",
                "model/tokenizer.json", "model/tokenizer_config.json", "summary.json"):
        assert (fast_run / rel).is_file(), rel
    # no temporary folders left behind by the atomic model swap
    assert not [p.name for p in fast_run.iterdir() if p.name.startswith(".")]


def test_summary_values(fast_run):
    s = json.loads((fast_run / "summary.json").read_text())
    assert set(s) >= SUMMARY_KEYS
    assert s["fast"] is True and s["pretrain_steps"] == FAST["pretrain_steps"] and s["sft_steps"] == FAST["sft_steps"]
    assert math.isfinite(s["val_ppl"]) and math.isfinite(s["val_ppl_pretrain"])
    # an untrained model over V tokens sits near perplexity V; 20 steps already move below it
    assert 1.0 < s["val_ppl"] < s["vocab_size"] and 1.0 < s["val_ppl_pretrain"] < s["vocab_size"]
    manifest = json.loads((fast_run / "toyworld" / "manifest.json").read_text())
    kinds = manifest["heldout"]["kinds"]
    assert set(s["accuracy"]) == set(kinds)  # every held-out kind is scored
    records = [json.loads(line) for line in (fast_run / "toyworld" / "eval" / "heldout.jsonl").open()]
    for kind, r in s["accuracy"].items():
        assert 0.0 <= r["accuracy"] <= 1.0 and r["correct"] <= r["n"] <= FAST["eval_per_kind"]
        assert r["accuracy"] == pytest.approx(r["correct"] / r["n"])
        # chance = mean of the scored items' own chance (the first n of the kind, in file order)
        scored = [x for x in records if x["kind"] == kind][:r["n"]]
        assert r["chance"] == pytest.approx(sum(x["task"]["chance"] for x in scored) / r["n"])
        assert 0.0 < r["chance"] < 1.0
    assert set(s["kinds_above_chance"]) == {k for k, r in s["accuracy"].items() if r["accuracy"] > r["chance"]}
    # overall figures: every scored item counts once (not a mean of the kinds' means)
    n = sum(r["n"] for r in s["accuracy"].values())
    assert s["heldout_questions"] == n
    assert s["overall_accuracy"] == pytest.approx(sum(r["correct"] for r in s["accuracy"].values()) / n)
    assert s["overall_chance"] == pytest.approx(sum(r["chance"] * r["n"] for r in s["accuracy"].values()) / n)
    assert s["samples"] and all({"question", "reply", "expected", "correct"} <= set(x) for x in s["samples"])
    # the trainer config recorded the tokenizer's vocabulary as the model's
    config = json.loads((fast_run / "model" / "config.json").read_text())
    assert config["vocab_size"] == s["vocab_size"]


def test_best_checkpoints_are_chosen_by_validation_loss(fast_run):
    """Each stage's chosen model is its checkpoint with the lowest validation loss (meta.json of every checkpoint
    the trainer evaluated, read back from metrics.jsonl)."""
    s = json.loads((fast_run / "summary.json").read_text())
    for stage in ("pretrain", "sft"):
        evals = [json.loads(line) for line in (fast_run / stage / "metrics.jsonl").open()]
        val = {r["step"]: r["val_loss"] for r in evals if "val_loss" in r}
        assert len(val) > 1, stage  # several evaluations, each with a checkpoint
        best = min(val, key=lambda k: (val[k], k))
        assert s[f"best_{stage}_step"] == best and s[f"best_{stage}_val_loss"] == pytest.approx(val[best])
        last = max(val)
        expected_dir = fast_run / stage / ("model" if best == last else "best_model")
        assert s[f"{stage}_model_dir"] == str(expected_dir)


def test_model_loads_and_matches_sft_weights(fast_run):
    from stellarbyte import ByteModel
    from stellarbyte.tokenizer import ByteTokenizer

    s = json.loads((fast_run / "summary.json").read_text())
    model = ByteModel.from_pretrained(fast_run / "model").eval()
    sft = ByteModel.from_pretrained(s["sft_model_dir"]).eval()
    tok = ByteTokenizer.from_pretrained(fast_run / "model")
    ids = torch.tensor([tok.encode("Where does Mia Stone live?", add_special_tokens=True)])
    with torch.no_grad():
        assert torch.equal(model(ids).logits, sft(ids).logits)
    assert model.config.vocab_size == tok.vocab_size


def test_generate_cli_opens_run_model(fast_run, capsys):
    code = cli_main(["generate", str(fast_run / "model"), "--prompt", "Once upon a time", "--max-new-tokens", "4"])
    assert code == 0
    assert "Once upon a time" in capsys.readouterr().out


def test_eval_verb_reproduces_the_summary(fast_run, tmp_path, capsys):
    """One implementation: `stellarbyte eval` on the run directory gives the summary's perplexity and table."""
    s = json.loads((fast_run / "summary.json").read_text())
    out = tmp_path / "eval.json"
    code = cli_main(["eval", str(fast_run / "model"), "--data", str(fast_run / "packed"), "--seq-len",
                     str(FAST["seq_len"]), "--world", str(fast_run / "toyworld"), "--per-kind",
                     str(FAST["eval_per_kind"]), "--json", str(out), "--no-progress"])
    assert code == 0
    capsys.readouterr()
    res = json.loads(out.read_text())
    assert res["perplexity"]["perplexity"] == pytest.approx(s["val_ppl"], rel=1e-6)
    assert {k: v["correct"] for k, v in res["tasks"]["kinds"].items()} == \
        {k: v["correct"] for k, v in s["accuracy"].items()}
    assert res["tasks"]["chance"] == pytest.approx(s["overall_chance"])


def test_bad_arguments(tmp_path):
    with pytest.raises(ValueError, match="pretrain_steps must be a positive integer"):
        run_quickstart(tmp_path / "x", pretrain_steps=0)
    with pytest.raises(FileNotFoundError, match="no such training config"):
        run_quickstart(tmp_path / "x", config=tmp_path / "missing.yaml")
    (tmp_path / "file").write_text("")
    with pytest.raises(NotADirectoryError, match="is a file"):
        run_quickstart(tmp_path / "file")


def test_thread_choice(monkeypatch):
    """As many threads as idle cores (at least 1); an explicit --threads or OMP_NUM_THREADS wins."""
    import os

    import stellarbyte.quickstart as qs

    monkeypatch.delenv("OMP_NUM_THREADS", raising=False)
    monkeypatch.setattr(os, "sched_getaffinity", lambda pid: {0, 1}, raising=False)
    monkeypatch.setattr(qs, "idle_cores", lambda: 1.9)
    assert qs.choose_threads() == (2, "1.9 of 2 cores idle")
    monkeypatch.setattr(qs, "idle_cores", lambda: 0.3)
    assert qs.choose_threads() == (1, "0.3 of 2 cores idle")
    monkeypatch.setattr(qs, "idle_cores", lambda: 1.4)
    assert qs.choose_threads()[0] == 1
    assert qs.choose_threads(2) == (2, "--threads")
    monkeypatch.setenv("OMP_NUM_THREADS", "1")
    assert qs.choose_threads()[1] == "OMP_NUM_THREADS"
    with pytest.raises(ValueError, match="threads must be a positive integer"):
        qs.choose_threads(0)


def test_idle_cores_reads_proc_stat():
    import os

    from stellarbyte.quickstart import idle_cores

    free = idle_cores(0.2)
    if not os.path.exists("/proc/stat"):
        assert free is None
    else:
        assert 0.0 <= free <= (os.cpu_count() or 1) + 1e-6
