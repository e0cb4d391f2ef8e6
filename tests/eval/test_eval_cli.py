"""`stellarbyte eval` through the CLI: --help, a tiny end-to-end run (model dir + packed data + toy world -> table and
JSON equal to the library calls), a run directory's checkpoint, text files, and one-line errors."""

from __future__ import annotations

import json

import pytest
import torch

from stellarbyte import ByteConfig, ByteModel
from stellarbyte.cli import main


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    from stellarbyte.data.pack import PackConfig, pack_documents
    from stellarbyte.data.toyworld import build_toyworld
    from stellarbyte.tokenizer import train_tokenizer

    root = tmp_path_factory.mktemp("evalcli")
    build_toyworld(root / "world", size="300KB", seed=0)
    tok = train_tokenizer([root / "world" / "pretrain" / "train.txt"], 300, root / "tok")
    docs = (root / "world" / "pretrain" / "val.txt").read_text().split("\n\n")
    pack_documents([d for d in docs if d.strip()][:60], tok, root / "packed", PackConfig(val_fraction=0.3))
    torch.manual_seed(0)
    config = ByteConfig(vocab_size=tok.vocab_size, hidden_size=32, intermediate_size=64, num_hidden_layers=2,
                        num_attention_heads=2, max_position_embeddings=128)
    model = ByteModel(config).eval()
    model.save_pretrained(root / "model")
    tok.save_pretrained(root / "model")
    return root, model, tok


def test_help_lists_every_option(capsys):
    with pytest.raises(SystemExit) as exc:
        main(["eval", "--help"])
    assert exc.value.code == 0
    out = capsys.readouterr().out
    for flag in ("--data", "--split", "--seq-len", "--stride", "--batch-size", "--max-tokens", "--dtype", "--world",
                 "--per-kind", "--backend", "--checkpoint", "--json", "--tokenizer"):
        assert flag in out, flag


def test_end_to_end(setup, tmp_path, capsys):
    from stellarbyte.data.toyworld import load_heldout
    from stellarbyte.eval.perplexity import PerplexityConfig, packed_stream, stream_perplexity
    from stellarbyte.eval.tasks import engine_answerer, score

    root, model, tok = setup
    out = tmp_path / "results.json"
    code = main(["eval", str(root / "model"), "--data", str(root / "packed"), "--world", str(root / "world"),
                 "--per-kind", "1", "--seq-len", "32", "--stride", "16", "--json", str(out), "--no-progress",
                 "--max-new-tokens", "6"])
    assert code == 0
    printed = capsys.readouterr().out
    assert "perplexity" in printed and "overall" in printed and "vs chance" in printed
    res = json.loads(out.read_text())
    expected = stream_perplexity(model, packed_stream(root / "packed"), PerplexityConfig(seq_len=32, stride=16))
    assert res["perplexity"]["perplexity"] == pytest.approx(expected.perplexity, rel=1e-6)
    assert res["perplexity"]["tokens"] == expected.tokens and res["perplexity"]["stride"] == 16
    records = load_heldout(root / "world")
    direct = score(records, engine_answerer(model, tok, 6), per_kind=1)
    tasks = res["tasks"]
    kinds = {r["kind"] for r in records}
    assert tasks["n"] == direct.n == sum(min(1, sum(r["kind"] == k for r in records)) for k in kinds)
    assert tasks["chance"] == pytest.approx(direct.chance)
    assert {k: v["correct"] for k, v in tasks["kinds"].items()} == {k: v.correct for k, v in direct.kinds.items()}
    assert len(tasks["replies"]) == tasks["n"]


def test_run_checkpoint_and_text_files(setup, tmp_path, capsys):
    """A run directory's checkpoint loads as the same weights; .txt files use the model's tokenizer."""
    from stellarbyte.train.checkpoint import CheckpointManager

    root, model, tok = setup
    run = tmp_path / "run"
    cfg = {"model": model.config.to_dict(), "tokenizer": str(root / "tok")}
    CheckpointManager(run).save({"model": model.state_dict()}, step=7, val_loss=1.0, config=cfg)
    text = tmp_path / "notes.txt"
    text.write_text("Mia lives in Oakford.\n\nTom is 7 years old.\n")
    a, b = tmp_path / "a.json", tmp_path / "b.json"
    assert main(["eval", str(run), "--checkpoint", "best", "--data", str(text), "--json", str(a)]) == 0
    assert main(["eval", str(root / "model"), "--data", str(text), "--json", str(b)]) == 0
    ra, rb = json.loads(a.read_text()), json.loads(b.read_text())
    assert "step 7" in ra["model"]
    assert ra["perplexity"]["nll"] == pytest.approx(rb["perplexity"]["nll"], rel=1e-6)
    ids = [i for d in ("Mia lives in Oakford.", "Tom is 7 years old.") for i in (*tok.encode(d), tok.eos_token_id)]
    assert ra["perplexity"]["tokens"] == len(ids) - 1


def test_run_without_model_section_uses_its_init_model(setup, tmp_path):
    """An SFT run started with --init-from and no model: section rebuilds the architecture from init_from."""
    from stellarbyte.eval.loading import load_for_eval
    from stellarbyte.train.checkpoint import CheckpointManager

    root, model, _ = setup
    run = tmp_path / "sft_run"
    CheckpointManager(run).save({"model": model.state_dict()}, step=2, config={"model": {},
                                                                              "init_from": str(root / "model")})
    loaded, tok_dir, described = load_for_eval(run)
    assert "step 2" in described and tok_dir is None
    ids = torch.tensor([[5, 6, 7, 8]])
    with torch.no_grad():
        assert torch.equal(loaded(ids).logits, model(ids).logits)
    with pytest.raises(ValueError, match="latest or best"):
        load_for_eval(run, which="first")


@pytest.mark.parametrize("args,message", [
    ([], "nothing to evaluate"),
    (["--data", "/no/such/data"], "no such dataset"),
    (["--world", "/no/such/world"], "not a complete toy world"),
    (["--data", "PACKED", "--stride", "300", "--seq-len", "32"], "stride must be in"),
])
def test_bad_input_is_one_line(setup, capsys, args, message):
    root, _, _ = setup
    args = [str(root / "packed") if a == "PACKED" else a for a in args]
    assert main(["eval", str(root / "model"), *args]) == 2
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err and err.count("\n") == 1


def test_missing_model_is_one_line(capsys):
    assert main(["eval", "/no/such/model", "--data", "x"]) == 2
    assert "no such model" in capsys.readouterr().err
