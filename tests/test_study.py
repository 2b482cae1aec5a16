"""The occlusion study end to end on hand-made faces with given landmarks (no dlib needed), and its resume."""

from __future__ import annotations

import math

import csv
import json
from pathlib import Path

import pytest
import torch

from hardsight.errors import ConfigError, RunError
from hardsight.faces.study import (TEST_CONDITIONS, TRAIN_CONDITIONS, StudyConfig, _check_settings, _conditions,
                                   occlusion_study, relative_changes)
from tests.faces.helpers import synthetic_faces
from tests.test_cli_text import run_cli


@pytest.fixture(scope="module")
def faces(tmp_path_factory):
    return synthetic_faces(tmp_path_factory.mktemp("faces"), performers=8)


def _config(root, lmk, out, **kw) -> StudyConfig:
    return StudyConfig(str(root), str(out), "vr-headset", label_col="expression", group_col="performer",
                       landmarks=str(lmk), image_size=32, epochs=1, batch_size=8, split=(0.5, 0.25, 0.25), **kw)


def test_conditions_double_mix_and_half_occlude(faces, tmp_path):
    from hardsight.data.image.prepare import prepare_image_data
    from hardsight.faces.stage import FaceStage

    cfg = _config(*faces, tmp_path / "s")
    data = prepare_image_data(cfg.train_config(), preprocess=FaceStage.for_config(cfg.train_config()))
    assert all(it.landmarks is not None and it.landmarks.shape == (68, 2) for it in data.items["train"])
    v = _conditions(data.items, cfg)
    for part in ("train", "test"):  # mixed-unique trains the study's fourth model and is its mixed test set
        items = data.items[part]
        assert len(v[part]["mixed"]) == 2 * len(items) and len(v[part]["mixed-unique"]) == len(items)
        occluded = [not torch.equal(a.picture(), b.picture()) for a, b in zip(items, v[part]["mixed-unique"])]
        assert sum(occluded) == len(items) // 2
        for cls in {it.labels[0] for it in items}:  # half of each class (odd counts round either way)
            mine = [o for o, it in zip(occluded, items) if it.labels[0] == cls]
            assert abs(2 * sum(mine) - len(mine)) <= 1
        assert all(not torch.equal(a.picture(), b.picture()) for a, b in zip(items, v[part]["occluded"]))
        assert all(torch.equal(a.picture(), b.picture()) for a, b in zip(items, v[part]["clean"]))
        assert all(b.image is a.image for a, b in zip(items, v[part]["occluded"]))  # drawn on read, never a copy


def test_relative_changes_against_clean_test_and_against_the_models_own_test():
    """The study's tables compare each model with its own test (occluded-trained with occluded test, ...);
    hardsight's first tables compared with clean test: both are given."""
    table = {("clean", "clean"): 0.80, ("clean", "occluded"): 0.40, ("clean", "mixed-unique"): 0.60,
             ("occluded", "clean"): 0.30, ("occluded", "occluded"): 0.60, ("occluded", "mixed-unique"): 0.45,
             ("mixed-unique", "clean"): 0.50, ("mixed-unique", "occluded"): 0.50, ("mixed-unique", "mixed-unique"): 0.40}
    changes = relative_changes(table)
    assert changes[("clean", "occluded")] == pytest.approx((-0.5, -0.5))  # clean is its own test
    assert changes[("occluded", "clean")] == pytest.approx((0.0, -0.5))
    assert changes[("occluded", "mixed-unique")] == pytest.approx((0.5, -0.25))
    assert changes[("mixed-unique", "clean")] == pytest.approx((0.0, 0.25))
    assert changes[("mixed-unique", "mixed-unique")] == pytest.approx((-0.2, 0.0))
    mixed = relative_changes({("mixed", "clean"): 0.5, ("mixed", "mixed"): 0.45, ("mixed", "mixed-unique"): 0.4})
    assert mixed[("mixed", "clean")] == pytest.approx((0.0, 0.25))  # the mixed model's own: the study's mixed test
    assert math.isnan(relative_changes({("occluded", "occluded"): 0.6})[("occluded", "occluded")][0])  # no clean
    assert relative_changes({("occluded", "clean"): 0.5, ("occluded", "occluded"): 0.0}) == {
        ("occluded", "clean"): (0.0, 0.0), ("occluded", "occluded"): (-1.0, 0.0)}  # no change against nothing


def test_a_study_scores_the_best_and_last_checkpoints_only(faces, tmp_path):
    root, lmk = faces
    assert _config(root, lmk, tmp_path / "s", checkpoints=("best", "last")).checkpoints == ("best", "last")
    with pytest.raises(ConfigError, match=r"checkpoints \['epoch-3'\]: choose from \['best', 'last'\]"):
        _config(root, lmk, tmp_path / "s", checkpoints=("epoch-3",))


def test_tiny_study_end_to_end_then_resumes_without_training(faces, tmp_path):
    root, lmk = faces
    out = tmp_path / "study"
    result = occlusion_study(_config(root, lmk, out), progress=False)
    assert result.trained == list(TRAIN_CONDITIONS) and result.reused == []
    rows = list(csv.DictReader((out / "study.csv").open()))
    assert [(r["train"], r["test"], r["checkpoint"]) for r in rows] == [
        (a, b, "best") for a in TRAIN_CONDITIONS for b in TEST_CONDITIONS]
    assert {"accuracy", "macro_f1", "accuracy_vs_clean", "accuracy_vs_own", "checkpoint_epoch", "val_loss",
            "val_accuracy", "best_val_loss", "f1_happy", "f1_neutral", "f1_surprise"} <= set(rows[0])
    clean, mixed = result.cell("clean", "clean"), result.cell("clean", "mixed")
    assert mixed.images == 2 * clean.images and clean.accuracy_vs_clean == 0.0
    occ = result.cell("clean", "occluded")
    assert occ.accuracy_vs_clean == pytest.approx((occ.accuracy - clean.accuracy) / clean.accuracy if clean.accuracy else 0)
    epoch = next(csv.DictReader((out / "runs" / "clean" / "metrics.csv").open()))  # one epoch: best and last alike
    assert (clean.checkpoint_epoch, clean.val_loss, clean.val_accuracy) == (
        1, pytest.approx(float(epoch["val/loss"]), abs=1e-4), pytest.approx(float(epoch["val/accuracy"]), abs=1e-4))
    split = json.loads((out / "split.json").read_text())
    # the study's mixed test set: every test face once, a half of each class occluded
    mixed_unique = json.loads((out / "mixed-unique.json").read_text())["test"]
    test_faces = [item[0] for item in split["test"]]
    assert sorted(mixed_unique["occluded"] + mixed_unique["clean"]) == sorted(test_faces)
    assert result.cell("clean", "mixed-unique").images == len(test_faces) == clean.images
    expression = {r["file"]: r["expression"] for r in csv.DictReader((root / "labels.csv").open())}
    for cls in set(expression.values()):
        mine = [f for f in test_faces if expression[Path(f).name] == cls]
        assert abs(2 * len(set(mine) & set(mixed_unique["occluded"])) - len(mine)) <= 1
    performers = {s: {p.split("/")[-1][:3] for item in split[s] for p in item} for s in ("train", "val", "test")}
    assert not performers["train"] & performers["test"] and not performers["train"] & performers["val"]
    md = (out / "study.md").read_text()
    for cond in TRAIN_CONDITIONS:
        assert f"## Trained on {cond} faces" in md and (out / "runs" / cond / "report.md").is_file()
    assert (out / "study.png").is_file() and (out / "samples.png").is_file()
    assert len(list((out / "landmarks").glob("*.npy"))) == 0  # every face came with its landmarks file

    again = json.loads(run_cli("study", "occlusion", root, "--out", out, "--label-col", "expression",
                               "--group-col", "performer", "--landmarks", lmk, "--image-size", "32", "--epochs", "1",
                               "--batch-size", "8", "--split", "0.5,0.25,0.25", "--json").stdout)
    assert again["trained"] == [] and again["reused"] == list(TRAIN_CONDITIONS) and len(again["cells"]) == 16
    last_ckpts = {c: (out / "runs" / c / "checkpoints" / "last.ckpt").stat().st_mtime_ns for c in TRAIN_CONDITIONS}
    both = json.loads(run_cli("study", "occlusion", root, "--out", out, "--label-col", "expression",
                              "--group-col", "performer", "--landmarks", lmk, "--image-size", "32", "--epochs", "1",
                              "--batch-size", "8", "--split", "0.5,0.25,0.25", "--checkpoints", "best,last",
                              "--json").stdout)
    assert both["trained"] == [] and both["reused"] == list(TRAIN_CONDITIONS)  # last is scored, nothing retrained
    assert last_ckpts == {c: (out / "runs" / c / "checkpoints" / "last.ckpt").stat().st_mtime_ns for c in TRAIN_CONDITIONS}
    rows = list(csv.DictReader((out / "study.csv").open()))
    assert [(r["train"], r["checkpoint"], r["test"]) for r in rows] == [
        (a, k, b) for a in TRAIN_CONDITIONS for k in ("best", "last") for b in TEST_CONDITIONS]
    assert len(both["cells"]) == 32 and "| clean | last |" in (out / "study.md").read_text()
    with pytest.raises(RunError, match="other settings"):
        occlusion_study(_config(root, lmk, out, seed=1), progress=False)


def test_study_takes_a_training_recipe_but_keeps_its_own_split(faces, tmp_path):
    """--config (e.g. a tune search's best.yaml) sets every condition's training; data, split and seed stay the study's."""
    import yaml

    root, lmk = faces
    recipe = tmp_path / "best.yaml"
    recipe.write_text(yaml.safe_dump({"optimizer": "sgd", "augment": 0.0, "model_args": {"filters": 8},
                                      "precision": "bf16-mixed", "epochs": 1, "split": [0.8, 0.1, 0.1], "seed": 5}))
    out = tmp_path / "study"
    done = run_cli("study", "occlusion", root, "--out", out, "--label-col", "expression", "--group-col", "performer",
                   "--landmarks", lmk, "--image-size", "32", "--batch-size", "8", "--split", "0.5,0.25,0.25",
                   "--conditions", "clean", "--config", recipe, "--json")
    assert "the study sets seed, split itself" in " ".join(done.stderr.split())
    result = json.loads(done.stdout)
    assert result["trained"] == ["clean"] and len(result["cells"]) == len(TEST_CONDITIONS)
    run = yaml.safe_load((out / "runs" / "clean" / "config.yaml").read_text())
    assert (run["optimizer"], run["augment"], run["model_args"], run["precision"]) == ("sgd", 0.0, {"filters": 8}, "bf16-mixed")
    assert (run["split"], run["seed"], run["epochs"]) == ([0.5, 0.25, 0.25], 0, 1)
    with pytest.raises(ConfigError, match=r"\['seed'\] are the study's own"):
        _config(root, lmk, tmp_path / "other", settings={"seed": 1})


def test_a_study_keeps_its_training_recipe_and_refuses_another(faces, tmp_path):
    """study.json records what every condition trained with; a rerun whose recipe differs (a newer version's
    augmentation or face crop, a --config) is refused rather than mixed into one table."""
    root, lmk = faces
    out = tmp_path / "s"
    _check_settings(out, _config(root, lmk, out))
    saved = json.loads((out / "study.json").read_text())
    assert saved["training"]["face_margin"] == 0.0 and saved["training"]["augment"] == 0.5
    _check_settings(out, _config(root, lmk, out, max_minutes=3.0))  # the budget may change
    with pytest.raises(RunError, match="training.augment was 0.5, now 0.9"):
        _check_settings(out, _config(root, lmk, out, settings={"augment": 0.9}))
    del saved["training"]
    (out / "study.json").write_text(json.dumps(saved))  # as a version before the record wrote it
    with pytest.raises(RunError, match="not recorded by the version that started it"):
        _check_settings(out, _config(root, lmk, out))
