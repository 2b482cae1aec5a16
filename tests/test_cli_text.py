"""The CLI as a user runs it: train, evaluate, predict, resume, inspect, and errors without tracebacks."""

from __future__ import annotations

import csv
import json
import shutil
from pathlib import Path

import pytest
from PIL import Image

from hardsight.data.synthetic import make_text_captchas

from tests.cli_runner import run_cli  # noqa: F401  (other test modules import it from here too)


def test_run_folder_holds_everything_the_design_promises(trained_run):
    for name in ("config.yaml", "labels.json", "split.json", "metrics.csv", "report.md", "env.json",
                 "checkpoints/best.ckpt", "checkpoints/last.ckpt", "plots/curves.png", "plots/test_samples.png"):
        assert (trained_run / name).is_file(), name
    split = json.loads((trained_run / "split.json").read_text())
    assert len(split["train"]) + len(split["val"]) + len(split["test"]) == 80
    assert not set(split["train"]) & set(split["test"])
    labels = json.loads((trained_run / "labels.json").read_text())
    assert labels["charset"] == "".join(sorted(labels["charset"]))
    rows = list(csv.DictReader((trained_run / "metrics.csv").open()))
    assert [r["epoch"] for r in rows] == ["1", "2"]
    assert {"train/loss", "val/loss", "val/cer", "val/exact_match"} <= set(rows[0])


def test_evaluate_and_predict_json(trained_run, captchas, tmp_path):
    ev = json.loads(run_cli("evaluate", trained_run, captchas, "--json").stdout)
    assert ev["n"] == 80
    assert 0.0 <= ev["exact_match"] <= ev["char_accuracy"] + 1e-9 <= 1.0 + 1e-9
    assert ev["cer"] >= 0.0  # CER can pass 1 (insertions), never go below 0
    files = sorted(captchas.glob("*.png"))[:3]
    (tmp_path / "broken.png").write_bytes(b"not an image")
    out = json.loads(run_cli("predict", trained_run, *files, tmp_path / "broken.png", "--json").stdout)
    assert [Path(r["file"]).name for r in out] == [f.name for f in files] + ["broken.png"]
    assert all(set(r) >= {"file", "text", "confidence"} for r in out)
    assert all(0.0 <= r["confidence"] <= 1.0 for r in out)
    assert "error" in out[-1] and out[-1]["text"] == ""


def test_predict_takes_folders_and_globs(trained_run, captchas):
    by_folder = json.loads(run_cli("predict", trained_run, captchas, "--json").stdout)
    by_glob = json.loads(run_cli("predict", trained_run, f"{captchas}/*.png", "--json").stdout)
    assert len(by_folder) == len(by_glob) == 80


def test_python_api_matches_cli(trained_run, captchas):
    import hardsight

    files = sorted(captchas.glob("*.png"))[:4]
    from hardsight.engine.predictor import TextPredictor

    reader = hardsight.Predictor(trained_run)
    assert isinstance(reader, TextPredictor) and isinstance(reader, hardsight.Predictor)
    api = [r.to_json() for r in reader.predict(files)]
    cli = json.loads(run_cli("predict", trained_run, *files, "--json").stdout)
    assert [r["text"] for r in api] == [r["text"] for r in cli]


def test_train_resume_and_budget(captchas, tmp_path):
    run = tmp_path / "run"
    run_cli("train", "text", captchas, "--out", run, "--epochs", "1", "--model", "cnn", "--seed", "3")
    proc = run_cli("train", "text", captchas, "--out", run, "--epochs", "1", check=False)
    assert proc.returncode == 2 and "--resume" in proc.stderr  # never overwrites
    run_cli("train", "text", captchas, "--out", run, "--epochs", "2", "--resume")
    rows = list(csv.DictReader((run / "metrics.csv").open()))
    assert [r["epoch"] for r in rows] == ["1", "2"]  # continued from epoch 1, old row kept
    assert "model: cnn" in (run / "config.yaml").read_text()

    capped = tmp_path / "capped"
    proc = run_cli("train", "text", captchas, "--out", capped, "--epochs", "500", "--max-minutes", "0.05")
    assert "time budget" in proc.stderr
    assert (capped / "checkpoints" / "best.ckpt").is_file() and (capped / "report.md").is_file()


def test_labels_from_pattern_are_reused_by_evaluate(tmp_path):
    src = tmp_path / "src"
    make_text_captchas(src, 30, seed=5)
    data = tmp_path / "named"
    data.mkdir()
    for i, p in enumerate(sorted(src.glob("*.png"))):
        shutil.copy(p, data / f"{p.stem.upper()}-{i}.png")
    run = tmp_path / "run"
    run_cli("train", "text", data, "--out", run, "--epochs", "1", "--label-pattern", r"(.+)-\d+$", "--lowercase")
    labels = json.loads((run / "labels.json").read_text())
    assert labels["charset"] == labels["charset"].lower()
    ev = json.loads(run_cli("evaluate", run, data, "--json").stdout)
    assert ev["n"] == 30 and ev["skipped"] == 0


def test_inspect_prints_and_saves_plots(captchas, tmp_path):
    out = tmp_path / "inspect"
    (tmp_path / "extra").mkdir()
    proc = run_cli("inspect", captchas, "--out", out)
    assert "images used" in proc.stderr and "80" in proc.stderr
    for name in ("label_lengths.png", "char_frequency.png", "samples.png", "image_sizes.png"):
        assert Image.open(out / name).size[0] > 100


def test_errors_are_one_line_without_traceback(tmp_path):
    proc = run_cli("train", "text", tmp_path / "missing", "--epochs", "1", check=False, subprocess_=True)
    assert proc.returncode == 2
    assert "no such file or folder" in proc.stderr and "Traceback" not in proc.stderr
    proc = run_cli("evaluate", tmp_path, tmp_path, check=False)
    assert proc.returncode == 2 and "not a run folder" in proc.stderr
    proc = run_cli("train", "text", tmp_path, "--model", "crnnn", check=False)
    assert proc.returncode == 2 and "no images found" in proc.stderr


@pytest.mark.parametrize("model", ["crnn", "cnn"])
def test_models_train_on_variable_lengths(tmp_path, model, captchas):
    run = tmp_path / model
    run_cli("train", "text", captchas, "--out", run, "--epochs", "1", "--model", model)
    assert json.loads((run / "labels.json").read_text())["max_length"] == 5
