"""The dedup benchmark's planted set and its command run end to end on a small size."""

from __future__ import annotations

import csv

from stellarbyte.bench.dedup import make_planted_set
from stellarbyte.cli import main
from stellarbyte.data.minhash import jaccard


def test_planted_set_edit_rates_control_similarity():
    texts, planted = make_planted_set(50, 10, [0.0, 0.05, 0.3], seed=1)
    assert len(texts) == 80 and len(planted) == 30
    by_rate = {r: [jaccard(texts[o], texts[c]) for o, c, rr in planted if rr == r] for r in (0.0, 0.05, 0.3)}
    assert all(j == 1.0 for j in by_rate[0.0])
    assert sum(by_rate[0.05]) / 10 > 0.5 > sum(by_rate[0.3]) / 10


def test_bench_dedup_command(tmp_path, capsys):
    out = tmp_path / "d.csv"
    assert main(["bench", "dedup", "--originals", "200", "--copies", "20", "--thresholds", "0.8",
                 "--csv", str(out)]) == 0
    rows = list(csv.DictReader(out.open()))
    assert [r["verify"] for r in rows] == ["estimate", "exact"]
    exact = rows[1]
    assert float(exact["precision"]) == 1.0 and float(exact["recall"]) > 0.7 and int(exact["unplanted_found"]) == 0
    assert float(exact["recall_edit_0.0"]) == 1.0
    assert "precision" in capsys.readouterr().out
