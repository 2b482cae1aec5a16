"""Same data, same seed, same machine: the same run, number for number (model init included)."""

from __future__ import annotations

import csv


def test_same_seed_same_metrics(captchas, tmp_path):
    from hardsight import TrainConfig, train

    rows = []
    for name in ("a", "b"):
        train(TrainConfig(task="text", data=str(captchas), out=str(tmp_path / name), epochs=2, seed=7), progress=False)
        rows.append([{k: v for k, v in r.items() if k != "elapsed_s"} for r in csv.DictReader((tmp_path / name / "metrics.csv").open())])
    assert rows[0] == rows[1]
    assert float(rows[0][0]["train/loss"]) > 0
