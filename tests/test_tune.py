"""`hardsight tune`: search spaces, the Optuna search end to end, resuming, pruning; and the settings it searches
(optimizer, loss, model_args) each training on their own."""

from __future__ import annotations

import csv
import shutil

import numpy as np
import pytest
import torch
import yaml
from PIL import Image

from hardsight import TrainConfig
from hardsight.errors import ConfigError
from hardsight.engine.tuner import SearchSpace, tune
from tests.cli_runner import run_cli

COLOURS = {"red": (200, 40, 40), "green": (40, 180, 60), "blue": (40, 60, 200)}
SMALL_SPACE = {  # quick networks: 16 px tiles, narrow stages
    "lr": {"low": "1e-3", "high": 1.0e-2, "log": True},
    "optimizer": {"choices": ["adamw", "sgd"]},
    "model_args.activation": {"choices": ["relu", "gelu"]},
    "model_args.blocks": {"low": 1, "high": 3},
    "model_args.filters": 8,
}


@pytest.fixture(scope="module")
def tiles(tmp_path_factory):
    """3 colour classes x 10 small tiles."""
    root = tmp_path_factory.mktemp("tune_tiles")
    for k, (name, colour) in enumerate(COLOURS.items()):
        (root / name).mkdir()
        for i in range(10):
            rng = np.random.default_rng(100 * k + i)
            a = np.clip(np.array(colour) + rng.normal(0, 25, (24, 24, 3)), 0, 255).astype(np.uint8)
            Image.fromarray(a).save(root / name / f"{name}{i}.png")
    return root


@pytest.fixture(scope="module")
def small_space(tmp_path_factory):
    path = tmp_path_factory.mktemp("space") / "space.yaml"
    path.write_text(yaml.safe_dump(SMALL_SPACE))
    return path


def _tune_args(tiles, space, out, trials=3, *extra):
    return ("tune", "image", tiles, "--out", out, "--space", space, "--trials", trials, "--epochs", 2,
            "--split", "0.6,0.2,0.2", "--set", "image_size=16", "--set", "batch_size=8", *extra)


@pytest.fixture(scope="module")
def search(tiles, small_space, tmp_path_factory):
    """A finished 3-trial search through the CLI (never pruned: 3 startup trials)."""
    out = tmp_path_factory.mktemp("tune") / "search"
    result = run_cli(*_tune_args(tiles, small_space, out))
    return out, result


def _rows(out):
    return list(csv.DictReader((out / "trials.csv").open()))


def test_search_writes_trials_report_plots_and_a_best_run_folder(search):
    from hardsight.runs.folder import RunFolder

    out, result = search
    rows = _rows(out)
    assert [r["number"] for r in rows] == ["0", "1", "2"] and {r["state"] for r in rows} == {"COMPLETE"}
    assert {"value", "minutes", "run", "lr", "optimizer", "model_args.blocks"} <= set(rows[0])
    assert result.stderr.count("] trial ") == 3  # one progress line per trial
    best = min(rows, key=lambda r: float(r["value"]))
    run = RunFolder.open(best["run"])  # a normal run folder: config, checkpoint, its own report
    assert run.checkpoint("best").is_file() and run.report.is_file()
    assert run.load_config().model_args["filters"] == 8  # fixed in the space
    report = (out / "report.md").read_text()
    assert f"Best trial: #{best['number']}" in report and "Parameter importances" in report
    assert (out / "plots" / "optimization_history.png").stat().st_size > 0
    assert (out / "plots" / "parallel_coordinate.png").stat().st_size > 0
    saved = TrainConfig.from_dict(yaml.safe_load((out / "best.yaml").read_text()))
    assert saved.out is None and saved.lr == pytest.approx(float(best["lr"]))
    assert (out / "study.db").is_file()


def test_best_config_trains_again_with_train_config(search, tiles, tmp_path):
    """The image command's own defaults (batch 64, ...) sit under --config: the tuned values win, flags win over both."""
    out, _ = search
    best = yaml.safe_load((out / "best.yaml").read_text())
    run_cli("train", "image", tiles, "--config", out / "best.yaml", "--out", tmp_path / "again", "--epochs", 1,
            "--model-arg", "dropout=0.1", "--optimizer", "rmsprop")
    again = yaml.safe_load((tmp_path / "again" / "config.yaml").read_text())
    for key in ("lr", "batch_size", "weight_decay", "image_size", "split", "seed"):
        assert again[key] == best[key], key
    assert again["model_args"] == {**best["model_args"], "dropout": 0.1} and again["optimizer"] == "rmsprop"


def test_rerunning_resumes_the_study(search, tiles, small_space, tmp_path):
    src, _ = search
    out = tmp_path / "copy"
    shutil.copytree(src, out)
    again = run_cli(*_tune_args(tiles, small_space, out))  # 3 wanted, 3 finished: nothing to train
    assert "3 of 3 trials finished" in again.stderr and "] trial " not in again.stderr
    more = run_cli(*_tune_args(tiles, small_space, out, 4))
    rows = _rows(out)
    assert [r["number"] for r in rows] == ["0", "1", "2", "3"] and more.stderr.count("] trial ") == 1
    assert (out / "trials" / "trial-003" / "config.yaml").is_file()
    changed = run_cli(*_tune_args(tiles, small_space, out, 4, "--seed", 1), check=False)
    assert changed.returncode == 2 and "seed was 0, now 1" in changed.stderr


def test_a_trial_left_running_is_marked_failed_and_the_budget_stops_new_ones(tiles, small_space, tmp_path):
    import optuna

    from hardsight.engine.tuner import STUDY_NAME

    out = tmp_path / "t"
    out.mkdir()
    optuna.create_study(study_name=STUDY_NAME, storage=f"sqlite:///{out / 'study.db'}").ask()  # a killed search's
    base = TrainConfig(task="image", model="compact", data=str(tiles), epochs=1, image_size=16, batch_size=8, split=(0.6, 0.2, 0.2))
    result = tune(base, out, small_space, trials=2, max_minutes=1e-4)  # spent before any trial starts
    assert (result.failed, result.complete) == (1, 0) and [r["state"] for r in _rows(out)] == ["FAIL"]
    result = tune(base, out, small_space, trials=1)
    assert (result.failed, result.complete) == (1, 1) and result.best_run == out / "trials" / "trial-001"


def test_bad_space_file_is_a_clear_error(tiles, tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("lr: {low: 1.0e-4, high: 1.0e-2}\nlearning_rat: {low: 1, high: 2}\n")
    result = run_cli("tune", "image", tiles, "--out", tmp_path / "t", "--space", bad, check=False)
    assert result.returncode == 2 and str(bad) in result.stderr and "learning_rat" in result.stderr
    assert not (tmp_path / "t").exists()
    for text, says in [("lr: {low: 1.0e-2, high: 1.0e-4}", "below"), ("lr: {low: 0, high: 1, log: true}", "log"),
                       ("optimizer: {choices: [adamw, nadam]}", "nadam"), ("seed: {choices: [0, 1]}", "unknown"),
                       ("lr: {lo: 1, high: 2}", "unknown field"), ("batch_size: {choices: []}", "non-empty")]:
        bad.write_text(text + "\n")
        with pytest.raises(ConfigError, match=says) as e:
            SearchSpace.load(bad).check(TrainConfig(task="image", data=str(tiles)))
        assert str(bad) in str(e.value)


def test_default_spaces_load_and_fit_their_task(tiles, captchas):
    for task, data in (("image", tiles), ("text", captchas)):
        space = SearchSpace.default(task)
        space.check(TrainConfig(task=task, data=str(data)))
        assert {"lr", "optimizer", "batch_size", "model_args.activation"} <= {d.name for d in space.dimensions}
    names = {d.name for d in SearchSpace.default("image").dimensions}
    assert {"loss", "label_smoothing", "model_args.blocks", "model_args.dense_units", "augment"} <= names


def test_pruned_trials_are_recorded_as_pruned(tiles, small_space, tmp_path):
    import optuna

    class AlwaysPrune(optuna.pruners.BasePruner):
        def prune(self, study, trial) -> bool:
            return True

    base = TrainConfig(task="image", model="compact", data=str(tiles), epochs=3, image_size=16, batch_size=8, split=(0.6, 0.2, 0.2))
    result = tune(base, tmp_path / "t", small_space, trials=2, pruner=AlwaysPrune())
    assert (result.pruned, result.complete, result.best_run) == (2, 0, None)
    rows = _rows(tmp_path / "t")
    assert [(r["state"], r["epochs"]) for r in rows] == [("PRUNED", "1"), ("PRUNED", "1")]
    assert "No trial has completed yet" in (tmp_path / "t" / "report.md").read_text()


@pytest.mark.parametrize("settings", [
    {"optimizer": "adam", "loss": "focal", "model_args": {"activation": "gelu", "blocks": 2, "filters": 8,
                                                          "dense_layers": 1, "dense_units": 16}},
    {"optimizer": "sgd", "model_args": {"activation": "relu", "blocks": 3, "filters": 8, "convs_per_block": 1}},
    {"optimizer": "rmsprop", "loss": "focal", "multi_label": True, "model_args": {"filters": 8, "blocks": 2}},
])
def test_new_image_settings_train_and_reload(tiles, tmp_path, settings):
    from hardsight import train
    from hardsight.tasks import ImageClassifier

    cfg = TrainConfig(task="image", model="compact", data=str(tiles), out=str(tmp_path / "run"), epochs=1, image_size=16,
                      batch_size=8, split=(0.6, 0.2, 0.2), **settings)
    result = train(cfg, progress=False)
    module = ImageClassifier.load_from_checkpoint(result.run.checkpoint("best"), map_location="cpu")
    assert module.hparams.optimizer == settings["optimizer"] and module.hparams.model_args == settings["model_args"]
    assert module(torch.rand(2, 3, 16, 16)).shape == (2, 3)
    assert result.run.load_config().model_args == settings["model_args"]


def test_new_text_settings_train(captchas, tmp_path):
    from hardsight import train

    cfg = TrainConfig(task="text", data=str(captchas), out=str(tmp_path / "run"), epochs=1, optimizer="sgd",
                      model_args={"activation": "leaky_relu", "dropout": 0.2, "rnn_hidden": 32})
    result = train(cfg, progress=False)
    hp = torch.load(result.run.checkpoint("best"), map_location="cpu", weights_only=False)["hyper_parameters"]
    assert hp["optimizer"] == "sgd" and hp["model_args"]["rnn_hidden"] == 32


def test_focal_loss_with_gamma_zero_is_cross_entropy():
    import torch.nn.functional as F

    from hardsight.tasks.image import softmax_focal_loss

    logits, soft, w = torch.randn(6, 4), torch.eye(4)[[0, 1, 2, 3, 0, 1]], torch.tensor([1.0, 2.0, 0.5, 1.0])
    expected = F.cross_entropy(logits, soft, weight=w, label_smoothing=0.1)
    assert torch.allclose(softmax_focal_loss(logits, soft, w, 0.1, gamma=0.0), expected, atol=1e-6)
    assert softmax_focal_loss(logits, soft, w, 0.1) < expected  # gamma 2 down-weights every example


def test_bad_settings_are_config_errors(tiles):
    from hardsight.models.image_classifiers import build_image_model

    with pytest.raises(ConfigError, match="optimizer must be one of"):
        TrainConfig(task="image", data="x", optimizer="nadam")
    with pytest.raises(ConfigError, match="image task"):
        TrainConfig(task="text", data="x", loss="focal")
    with pytest.raises(ConfigError, match="model_args.widht"):
        build_image_model("compact", 3, model_args={"widht": 3})
    with pytest.raises(ConfigError, match="activation"):
        build_image_model("compact", 3, model_args={"activation": "swish"})


def test_grid_sampler_tries_each_combination_of_the_space_once(tiles, tmp_path):
    space = tmp_path / "grid.yaml"
    space.write_text(yaml.safe_dump({"optimizer": {"choices": ["adamw", "sgd"]},
                                     "lr": {"low": 1.0e-3, "high": 2.0e-3, "step": 1.0e-3}, "model_args.filters": 8}))
    out = tmp_path / "grid"
    args = ("tune", "image", tiles, "--out", out, "--space", space, "--epochs", 1, "--split", "0.6,0.2,0.2",
            "--set", "image_size=16", "--set", "batch_size=8", "--pruner", "none")
    result = run_cli(*args, "--sampler", "grid", "--trials", 10)  # more wanted than the grid holds: 4 run
    rows = _rows(out)
    assert sorted((r["optimizer"], float(r["lr"])) for r in rows) == [
        ("adamw", 1e-3), ("adamw", 2e-3), ("sgd", 1e-3), ("sgd", 2e-3)]
    assert {r["state"] for r in rows} == {"COMPLETE"} and result.stderr.count("] trial ") == 4
    assert "4 trials (grid sampler)" in (out / "report.md").read_text() and (out / "best.yaml").is_file()
    again = run_cli(*args, "--sampler", "grid", "--trials", 10)
    assert "4 of 4 trials finished" in again.stderr and len(_rows(out)) == 4
    other = run_cli(*args, check=False)  # the default sampler, TPE, on the grid's study
    assert other.returncode == 2 and "sampler was 'grid', now 'tpe'" in other.stderr


def test_a_grid_over_a_range_without_a_step_is_a_clear_error(tiles, tmp_path):
    space = tmp_path / "space.yaml"
    space.write_text("lr: {low: 1.0e-4, high: 1.0e-2, log: true}\noptimizer: {choices: [adamw, sgd]}\n")
    result = run_cli("tune", "image", tiles, "--out", tmp_path / "t", "--space", space, "--sampler", "grid",
                     check=False)
    assert result.returncode == 2 and "lr: a grid search needs listed values" in result.stderr
    assert not (tmp_path / "t").exists()
    space.write_text("model_args.blocks: {low: 1, high: 3}\n")  # integer ends step by 1
    assert SearchSpace.load(space).grid() == {"model_args.blocks": [1, 2, 3]}
    with pytest.raises(ConfigError, match="choose from"):
        tune(TrainConfig(task="image", data=str(tiles)), tmp_path / "t", space, sampler="random")
