"""bench quant: the CPU section end to end on a tiny random model, and the capturable decode cache it uses on GPUs."""

import argparse
import csv

import torch
from tiny_models import tiny_model

from stellarbyte.bench import quant


def test_cpu_section_writes_every_mode(tmp_path):
    parser = argparse.ArgumentParser()
    quant.add_arguments(parser)
    out = tmp_path / "quant.csv"
    args = parser.parse_args(["--config", "tiny", "--eval-tokens", "256", "--seq-len", "64", "--decode-tokens", "4",
                              "--rounds", "1", "--csv", str(out)])
    assert quant.run(args) == 0
    rows = list(csv.DictReader(out.open()))
    assert [r["mode"] for r in rows] == [label for label, _ in quant.CPU_MODES]
    by_mode = {r["mode"]: r for r in rows}
    assert float(by_mode["fp32"]["ppl_delta_%"]) == 0.0
    assert abs(float(by_mode["int8-dynamic (ours)"]["ppl_delta_%"])) < 1.0  # random weights: near-uniform ppl
    assert float(by_mode["int4 g32 sym"]["MiB"]) < float(by_mode["int8 weight-only"]["MiB"]) < \
        float(by_mode["fp32"]["MiB"])
    # the tiny shape's MLP width (352) takes group 32 only: larger groups are reported, not crashed on
    assert "not a multiple of group_size=128" in by_mode["int4 g128 sym"]["note"]
    for mode in quant.SPEED_MODES:
        assert float(by_mode[mode]["generate_tok/s"]) > 0 and float(by_mode[mode]["engine_tok/s"]) > 0
    assert float(by_mode["fp32"]["greedy_agree"]) == 1.0


def test_capturable_cache_decodes_like_a_full_forward():
    model = tiny_model(tie_word_embeddings=True)
    ids = torch.randint(0, 128, (2, 12), generator=torch.Generator().manual_seed(0))
    tok = torch.randint(0, 128, (2, 1), generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        full = model(torch.cat([ids, tok], 1)).logits[:, -1]
        cache = quant._capturable_cache(model.config, 2, 20, "cpu")
        cache.keys = [k.float() for k in cache.keys]
        cache.values = [v.float() for v in cache.values]
        model(ids, past_key_values=cache)  # prefill
        for _ in range(2):  # the bench replays the same step: resetting `seen` must give the same logits
            cache.seen = 12
            step = model(tok, past_key_values=cache, position_ids=torch.full((2, 1), 12), logits_to_keep=1)
            torch.testing.assert_close(step.logits[:, -1], full, rtol=1e-5, atol=1e-5)
