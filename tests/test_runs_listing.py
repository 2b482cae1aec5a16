"""`hardsight runs DIR`: run folders found recursively, with settings and final metrics; sorting, --json, notes."""

from __future__ import annotations

import json
import shutil

import pytest

from hardsight.errors import ConfigError, RunError
from hardsight.runs.listing import COLUMNS, list_runs
from tests.test_cli_text import run_cli
from tests.test_image_task import COLOURS, _tile


@pytest.fixture(scope="module")
def runs_dir(tmp_path_factory):
    """Two 1-epoch image runs (one nested as a study's), an old-style copy without test_metrics.json,
    an unfinished copy (metrics.csv only), a folder with a broken config.yaml, and a non-run folder."""
    from hardsight import TrainConfig, train

    data = tmp_path_factory.mktemp("tiles")
    for k, (name, colour) in enumerate(COLOURS.items()):
        for i in range(10):
            _tile(data / name / f"{name}{i}.png", colour, seed=100 * k + i)
    root = tmp_path_factory.mktemp("runs")
    results = {}
    for name, lr, seed in (("image/a", 1e-3, 0), ("study-1/runs/b", 3e-3, 1)):
        results[name] = train(TrainConfig(task="image", data=str(data), out=str(root / name), model="compact", epochs=1,
                                          image_size=32, batch_size=8, lr=lr, seed=seed), progress=False)
    shutil.copytree(root / "image/a", root / "old/a")
    (root / "old/a/test_metrics.json").unlink()
    shutil.copytree(root / "image/a", root / "unfinished")
    for f in ("test_metrics.json", "report.md"):
        (root / "unfinished" / f).unlink()
    (root / "broken/checkpoints").mkdir(parents=True)
    (root / "broken/config.yaml").write_text("task: [image\nmodel: {{")
    (root / "notes").mkdir()
    (root / "notes/config.yaml").write_text("task: image\n")  # a config, but no checkpoints/: not a run
    return root, results


def test_runs_are_found_recursively_with_settings_and_test_metrics(runs_dir):
    root, results = runs_dir
    rows = {r.path: r for r in list_runs(root, sort="path")}
    assert sorted(rows) == sorted(str(root / p) for p in ("image/a", "study-1/runs/b", "old/a", "unfinished",
                                                          "broken"))
    for name, res in results.items():
        r = rows[str(root / name)]
        assert (r.task, r.model, r.size, r.batch_size, r.epochs) == ("image", res.run.load_config().model, 32, 8, 1)
        assert (r.lr, r.seed) == ((1e-3, 0) if name == "image/a" else (3e-3, 1))
        assert r.accuracy == pytest.approx(res.test.accuracy) and r.macro_f1 == pytest.approx(res.test.macro_f1)
        assert (r.metrics_from, r.stopped_by, r.onnx, r.note) == ("test", res.stopped_by, False, "")
        assert r.minutes == pytest.approx(res.minutes, abs=1e-3) and r.created and r.exact_match is None
    old = rows[str(root / "old/a")]  # report.md is for people: without test_metrics.json the row is the val epoch
    assert old.metrics_from == "val" and old.epochs == 1 and "not finished" in old.note
    unfinished = rows[str(root / "unfinished")]
    assert unfinished.metrics_from == "val" and unfinished.accuracy is not None and "not finished" in unfinished.note
    broken = rows[str(root / "broken")]
    assert broken.task is None and "config.yaml unreadable" in broken.note and "no checkpoint" in broken.note


def test_sorting_direction_task_filter_and_errors(runs_dir, tmp_path):
    root, _ = runs_dir
    by_lr = list_runs(root, sort="lr")
    assert [r.lr for r in by_lr] == [1e-3, 1e-3, 1e-3, 3e-3, None]  # empty values last
    assert [r.lr for r in list_runs(root, sort="lr", descending=True)] == [3e-3, 1e-3, 1e-3, 1e-3, None]
    acc = [r.accuracy for r in list_runs(root, sort="accuracy") if r.accuracy is not None]
    assert acc == sorted(acc, reverse=True)  # higher is better: best first by default
    assert {r.task for r in list_runs(root, task="image")} == {"image"} and list_runs(root, task="text") == []
    with pytest.raises(ConfigError, match="did you mean 'accuracy'.*columns: path, task"):
        list_runs(root, sort="acc")
    with pytest.raises(RunError, match="no such folder"):
        list_runs(tmp_path / "nowhere")
    assert list_runs(tmp_path) == []


def test_runs_verb_prints_a_table_or_json(runs_dir, tmp_path):
    root, _ = runs_dir
    rows = json.loads(run_cli("runs", root, "--json", "--sort", "seed").stdout)
    assert len(rows) == 5 and set(rows[0]) == set(COLUMNS) and rows[-1]["seed"] is None
    table = run_cli("runs", root).stderr
    assert "study-1/runs/b" in table and "config.yaml unreadable" in table and "5 runs under" in table
    bad = run_cli("runs", root, "--sort", "speed", check=False)
    assert bad.returncode == 2 and "columns: path" in bad.stderr
    assert "no run folders under" in run_cli("runs", tmp_path).stderr
    assert json.loads(run_cli("runs", tmp_path, "--json").stdout) == []


def test_a_text_run_lists_exact_match_and_cer(trained_run):
    tm = json.loads((trained_run / "test_metrics.json").read_text())
    (row,) = list_runs(trained_run)
    assert (row.task, row.model, row.size, row.epochs, row.metrics_from) == ("text", "crnn", 32, 2, "test")
    assert (row.exact_match, row.cer) == (tm["metrics"]["exact_match"], tm["metrics"]["cer"])
    assert row.accuracy is None and tm["stopped_by"] == row.stopped_by == "max epochs"
