"""Choosing the weights: `--checkpoint best|last|epoch-N|PATH` on the verbs that load a run, and
`evaluate --every-epoch` over the checkpoints `train --save-every-epoch` keeps."""

from __future__ import annotations

import csv
import json
import shutil
from pathlib import Path

import pytest
import torch

from hardsight.data.synthetic import make_text_captchas
from hardsight.intervals import wilson
from hardsight.errors import RunError
from hardsight.runs.folder import RunFolder
from tests.test_cli_text import run_cli
from tests.test_image_task import tiles  # noqa: F401  (the fixture)


@pytest.fixture(scope="module")
def few_captchas(tmp_path_factory) -> Path:
    """24 CAPTCHAs: enough for a split, few enough to score many times."""
    folder = tmp_path_factory.mktemp("few_captchas")
    make_text_captchas(folder, 24, seed=2)
    return folder


@pytest.fixture(scope="module")
def epoch_run(few_captchas, tmp_path_factory) -> Path:
    """A per-position reader (quick to train and export) trained 2 epochs with --save-every-epoch."""
    out = tmp_path_factory.mktemp("epochs") / "reader"
    run_cli("train", "text", few_captchas, "--out", out, "--model", "cnn", "--epochs", 2, "--save-every-epoch",
            "--seed", 0)
    return out


@pytest.fixture
def loaded(monkeypatch) -> list[str]:
    """File names of the checkpoints models are loaded from during the test."""
    import hardsight.tasks

    names: list[str] = []
    load = hardsight.tasks.load_module

    def spy(run, which="best"):
        names.append(run.checkpoint(which).name)
        return load(run, which)

    monkeypatch.setattr(hardsight.tasks, "load_module", spy)
    return names


def _weights(name: Path) -> dict[str, torch.Tensor]:
    return torch.load(name, map_location="cpu", weights_only=True)["state_dict"]


def test_every_epoch_is_kept_under_the_number_metrics_csv_gives_it(epoch_run):
    checkpoints = epoch_run / "checkpoints"
    assert sorted(p.name for p in checkpoints.glob("epoch-*")) == ["epoch-001.ckpt", "epoch-002.ckpt"]
    assert [r["epoch"] for r in csv.DictReader((epoch_run / "metrics.csv").open())] == ["1", "2"]
    second, last, first = (_weights(checkpoints / n) for n in ("epoch-002.ckpt", "last.ckpt", "epoch-001.ckpt"))
    assert all(torch.equal(second[k], last[k]) for k in last)  # epoch 2 is the last one trained
    assert not all(torch.equal(first[k], last[k]) for k in last)


def test_evaluate_scores_the_checkpoint_named(epoch_run, few_captchas):
    for which, name in [("last", "last.ckpt"), ("epoch-1", "epoch-001.ckpt"), ("best", "best.ckpt"),
                        (epoch_run / "checkpoints" / "epoch-002.ckpt", "epoch-002.ckpt")]:
        ev = json.loads(run_cli("evaluate", epoch_run, few_captchas, "--checkpoint", which, "--json").stdout)
        assert ev["n"] == 24 and Path(ev["weights"]).name == name, which
        low, high = ev["exact_match_interval"]  # the rate's 95% Wilson interval over the 24 images scored
        assert [low, high] == pytest.approx(wilson(round(ev["exact_match"] * 24), 24))
        assert low <= ev["exact_match"] <= high and high - low > 0.1  # 24 images pin no rate down to 10 points
        figures = Path(ev["figure"]).parent  # another checkpoint's never overwrite the best one's
        assert figures.parent.name == "evaluations" if name == "best.ckpt" else figures.name == Path(name).stem


def test_predict_and_the_python_api_read_with_the_checkpoint_named(epoch_run, few_captchas, loaded):
    files = sorted(few_captchas.glob("*.png"))[:3]
    out = json.loads(run_cli("predict", epoch_run, *files, "--checkpoint", "epoch-1", "--engine", "torch",
                             "--json").stdout)
    assert len(out) == 3 and loaded == ["epoch-001.ckpt"]
    from hardsight import Predictor

    first, last = (Predictor(epoch_run, checkpoint=which, engine="torch").reader for which in ("epoch-1", "last"))
    x = torch.rand(2, first.spec.channels, first.spec.height, first.spec.width,
                   generator=torch.Generator().manual_seed(0))
    assert not torch.allclose(first(x), last(x))  # two epochs' weights, two answers


def test_a_checkpoint_the_run_lacks_is_a_one_line_error_naming_what_it_has(epoch_run, few_captchas):
    for which in ("epoch-7", "bets"):
        proc = run_cli("evaluate", epoch_run, few_captchas, "--checkpoint", which, check=False)
        said = " ".join(proc.stderr.split())  # the console wraps long lines
        assert proc.returncode == 2 and "Traceback" not in proc.stderr
        assert f"no checkpoint '{which}'" in said and "best.ckpt, epoch-001.ckpt, epoch-002.ckpt, last.ckpt" in said
    with pytest.raises(RunError) as error:
        RunFolder.open(epoch_run).checkpoint("epoch-7")
    assert "\n" not in str(error.value)
    proc = run_cli("serve", epoch_run, "--checkpoint", "epoch-7", check=False)  # refused before serving
    assert proc.returncode == 2 and "no checkpoint 'epoch-7'" in " ".join(proc.stderr.split())


def test_every_epoch_writes_one_row_per_epoch_under_the_leakage_warning(epoch_run, few_captchas, tmp_path):
    proc = run_cli("evaluate", epoch_run, few_captchas, "--every-epoch", "--json")
    rows = json.loads(proc.stdout)
    assert [r["epoch"] for r in rows] == [1, 2] and set(rows[0]) == {"epoch", "exact_match", "char_accuracy", "cer"}
    assert "leaks test information" in proc.stderr and "best-validation checkpoint" in proc.stderr
    (folder,) = (epoch_run / "evaluations").iterdir()
    table = list(csv.DictReader((folder / "every_epoch.csv").open()))
    assert [int(r["epoch"]) for r in table] == [1, 2]
    assert [float(r["cer"]) for r in table] == pytest.approx([r["cer"] for r in rows])
    assert (folder / "every_epoch.png").is_file()
    shown = run_cli("evaluate", epoch_run, few_captchas, "--every-epoch")
    assert "test-set selection analysis" in " ".join(shown.stderr.split())
    bare = tmp_path / "bare"
    shutil.copytree(epoch_run, bare, ignore=shutil.ignore_patterns("epoch-*", "evaluations"))
    proc = run_cli("evaluate", bare, few_captchas, "--every-epoch", check=False)
    assert proc.returncode == 2 and "--save-every-epoch" in proc.stderr


def test_model_onnx_of_an_epoch_serves_that_epoch_only(epoch_run, few_captchas, tmp_path):
    run = tmp_path / "exported"
    shutil.copytree(epoch_run, run, ignore=shutil.ignore_patterns("evaluations"))
    exported = json.loads(run_cli("export", run, "--checkpoint", "epoch-1", "--samples", 8, "--json").stdout)
    assert Path(exported["path"]) == run / "model.onnx"
    by_epoch = json.loads(run_cli("evaluate", run, few_captchas, "--checkpoint", "epoch-1", "--json").stdout)
    by_last = json.loads(run_cli("evaluate", run, few_captchas, "--checkpoint", "last", "--json").stdout)
    assert Path(by_epoch["weights"]).name == "model.onnx"  # auto: exported from the checkpoint asked for
    assert Path(by_last["weights"]).name == "last.ckpt"  # not from this one: PyTorch


def test_image_runs_take_checkpoints_and_every_epoch_too(tiles, tmp_path):  # noqa: F811
    run = tmp_path / "tiles"
    run_cli("train", "image", tiles, "--out", run, "--model", "compact", "--image-size", 16, "--epochs", 2,
            "--batch-size", 8, "--save-every-epoch", "--seed", 0)
    rows = json.loads(run_cli("evaluate", run, tiles, "--every-epoch", "--json").stdout)
    assert [r["epoch"] for r in rows] == [1, 2] and {"accuracy", "macro_f1"} <= set(rows[0])
    ev = json.loads(run_cli("evaluate", run, tiles, "--checkpoint", "epoch-2", "--json").stdout)
    assert Path(ev["weights"]).name == "epoch-002.ckpt"
    assert ev["accuracy"] == pytest.approx(rows[1]["accuracy"], abs=1e-6)
