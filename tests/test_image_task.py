"""The image task: reading class folders / CSVs, duplicate-aware splits, models, metrics, and the CLI."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest
from PIL import Image

from hardsight.data.image.labels import load_image_dataset, read_labelled_files, stratified_split
from hardsight.errors import ConfigError, DataError
from hardsight.engine.metrics import classification_metrics, tune_thresholds
from hardsight.intervals import wilson
from tests.test_cli_text import run_cli

COLOURS = {"red": (200, 40, 40), "green": (40, 180, 60), "blue": (40, 60, 200)}


def _tile(path, colour, seed):
    rng = np.random.default_rng(seed)
    a = np.clip(np.array(colour) + rng.normal(0, 25, (40, 40, 3)), 0, 255).astype(np.uint8)
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(a).save(path)
    return path


@pytest.fixture(scope="module")
def tiles(tmp_path_factory):
    """3 colour classes x 14 tiles, one picture filed under two classes, one corrupt file."""
    root = tmp_path_factory.mktemp("tiles")
    for k, (name, colour) in enumerate(COLOURS.items()):
        for i in range(14):
            _tile(root / name / f"{name}{i}.png", colour, seed=100 * k + i)
    shutil.copy(root / "red" / "red0.png", root / "green" / "also_red0.png")
    (root / "blue" / "broken.png").write_bytes(b"\x89PNG not really")
    return root


def test_identical_pictures_merge_into_one_multi_label_item(tiles):
    ds = load_image_dataset(tiles, 32, workers=2)
    assert ds.classes == ["blue", "green", "red"]
    assert ds.duplicates == 1 and len(ds.items) == 42
    merged = [it for it in ds.items if len(it.paths) == 2]
    assert len(merged) == 1 and sorted(merged[0].labels) == ["green", "red"]
    assert [p for p, _ in ds.skipped.unreadable] == [str(tiles / "blue" / "broken.png")]
    assert ds.items[0].image.shape == (3, 32, 32)


def test_split_is_seeded_stratified_and_keeps_duplicates_together(tiles):
    ds = load_image_dataset(tiles, 16, workers=2)
    a = stratified_split(ds.items, (0.6, 0.2, 0.2), seed=3)
    b = stratified_split(ds.items, (0.6, 0.2, 0.2), seed=3)
    assert [it.path for it in a["test"]] == [it.path for it in b["test"]]
    sides = {str(p): s for s in a for it in a[s] for p in it.paths}
    assert sides[str(tiles / "red" / "red0.png")] == sides[str(tiles / "green" / "also_red0.png")]
    for part in ("val", "test"):
        assert {lab for it in a[part] for lab in it.labels} == {"red", "green", "blue"}


def test_group_column_keeps_groups_on_one_side(tmp_path):
    rows = ["file,label,person"]
    for i in range(30):
        _tile(tmp_path / "images" / f"f{i}.png", list(COLOURS.values())[i % 3], seed=i)
        rows.append(f"f{i}.png,{list(COLOURS)[i % 3]},p{i // 3}")
    (tmp_path / "labels.csv").write_text("\n".join(rows) + "\n")
    ds = load_image_dataset(tmp_path, 16, group_col="person", workers=2)  # folder with labels.csv + images/
    parts = stratified_split(ds.items, (0.6, 0.2, 0.2), seed=0, grouped=True)
    groups = {s: {it.group for it in parts[s]} for s in parts}
    assert not groups["train"] & groups["test"] and not groups["train"] & groups["val"]
    assert sum(len(v) for v in parts.values()) == 30


def test_csv_multi_label_and_extra_labels(tmp_path):
    for i in range(3):
        _tile(tmp_path / f"t{i}.png", (100, 100, 100), seed=i)
    (tmp_path / "m.csv").write_text("file,label\nt0.png,car;traffic light\nt1.png,car\nt2.png,bus\nt2.png,car\n")
    (tmp_path / "fix.csv").write_text("file,label\nt1.png,bus\n")
    rows, _ = read_labelled_files(tmp_path / "m.csv", extra_labels=tmp_path / "fix.csv")
    labels = {p.name: sorted(labs) for p, labs, _ in rows}
    assert labels == {"t0.png": ["car", "traffic light"], "t1.png": ["bus", "car"], "t2.png": ["bus", "car"]}
    (tmp_path / "bad.csv").write_text("file,label\nnope.png,bus\n")
    with pytest.raises(DataError, match="not a file of the dataset"):
        read_labelled_files(tmp_path / "m.csv", extra_labels=tmp_path / "bad.csv")


def test_missing_columns_and_folders_are_clear_errors(tmp_path):
    (tmp_path / "m.csv").write_text("path,cls\na.png,x\n")
    with pytest.raises(DataError, match="no column 'file'"):
        read_labelled_files(tmp_path / "m.csv")
    with pytest.raises(DataError, match="one folder per class"):
        read_labelled_files(_empty(tmp_path))


def _empty(tmp_path):
    d = tmp_path / "empty"
    d.mkdir()
    return d


def test_models_by_name_and_offline_pretrained_is_a_clear_error(monkeypatch):
    import torch

    from hardsight.models.image_classifiers import build_image_model

    for name in ("compact", "compact_wide", "resnet18"):
        assert build_image_model(name, 5)(torch.rand(2, 3, 64, 64)).shape == (2, 5)
    with pytest.raises(ConfigError, match="unknown image model"):
        build_image_model("resnett18", 5)
    import huggingface_hub.constants

    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", True)  # read at import, so patch it too
    from hardsight.models.weights import resolve_weights

    monkeypatch.setattr("hardsight.models.weights._hub_cache_file", lambda model: None)  # whatever this machine has
    with pytest.raises(ConfigError, match="Offline: --weights FILE") as e:
        resolve_weights("resnet18")
    assert "HF_HUB_OFFLINE is set" in str(e.value) and "hub cache" in str(e.value)


def test_classification_metrics_by_hand():
    classes = ["a", "b", "c"]
    probs = [[0.8, 0.1, 0.1], [0.2, 0.7, 0.1], [0.6, 0.3, 0.1], [0.1, 0.2, 0.7]]
    m = classification_metrics([[0], [1], [1], [2, 0]], probs, classes)
    assert m.accuracy == 0.75  # image 3 is a "b" called "a"; image 4 is "c" and "a", called "c"
    assert m.per_class["b"]["recall"] == 0.5 and m.per_class["a"]["precision"] == 0.5
    assert m.confusion == [[1, 0, 0], [1, 1, 0], [0, 0, 1]]
    assert m.top_k["top1"] == 0.75
    ml = classification_metrics([[0], [1], [1], [2, 0]], probs, classes, multi_label=True)
    assert 0 < ml.mean_average_precision <= 1


def test_thresholds_maximise_f1_and_sit_between_the_classes():
    probs = np.array([[0.9], [0.7], [0.4], [0.2]])
    # every cut-off in (0.4, 0.7] separates them: the middle one, not the lowest (a grid would pick doubtful cells)
    assert tune_thresholds([[0], [0], [], []], probs, 1) == [0.55]
    probs = np.array([[0.9], [0.5], [0.45], [0.1]])  # only 0.5 separates them
    assert tune_thresholds([[0], [0], [], []], probs, 1) == [0.5]


def test_cli_train_evaluate_predict_image(tiles, tmp_path):
    run = tmp_path / "run"
    run_cli("train", "image", tiles, "--model", "compact", "--out", run, "--epochs", "2", "--image-size", "32", "--batch-size", "8",
            "--split", "0.6,0.2,0.2", "--mixup", "0.2", "--sampler", "balanced")
    for name in ("config.yaml", "labels.json", "split.json", "metrics.csv", "report.md", "checkpoints/best.ckpt",
                 "plots/confusion.png"):
        assert (run / name).is_file(), name
    labels = json.loads((run / "labels.json").read_text())
    assert labels["classes"] == ["blue", "green", "red"] and len(labels["thresholds"]) == 3
    assert len(labels["grid_thresholds"]) == 3  # tuned for the solve rate of validation grids
    import torch

    last = torch.load(run / "checkpoints" / "last.ckpt", map_location="cpu", weights_only=True)
    assert last["epoch"] == 1  # what --resume continues from: the last epoch, improved or not
    ev = json.loads(run_cli("evaluate", run, tiles, "--json").stdout)
    assert ev["n"] == 42 and {"accuracy", "balanced_accuracy", "macro_f1", "per_class"} <= set(ev)
    assert set(ev["per_class"]) == {"blue", "green", "red"}
    assert ev["accuracy_interval"] == pytest.approx(list(wilson(round(ev["accuracy"] * 42), 42)))  # its 95% interval

    other = tmp_path / "other"
    shutil.copytree(tiles, other)
    _tile(other / "purple" / "p0.png", (150, 40, 150), seed=9)
    ev = json.loads(run_cli("evaluate", run, other, "--json").stdout)
    assert ev["unknown_classes"] == {"purple": 1}

    out = json.loads(run_cli("predict", run, tiles / "red" / "red1.png", tiles / "blue", "--json").stdout)
    assert len(out) == 16 and out[0]["label"] in labels["classes"]
    assert abs(sum(out[0]["probabilities"].values()) - 1) < 1e-3
    assert "error" in next(r for r in out if r["file"].endswith("broken.png"))


def test_cli_multi_label_from_csv(tmp_path):
    rows = ["file,label"]
    for i in range(24):
        tags = ["car"] if i % 3 else ["car", "light"]
        if i % 2:
            tags.append("bus")
        _tile(tmp_path / f"t{i}.png", (40 * (i % 5), 90, 200 - 30 * (i % 4)), seed=i)
        rows.append(f"t{i}.png,{';'.join(tags)}")
    (tmp_path / "m.csv").write_text("\n".join(rows) + "\n")
    run = tmp_path / "run"
    run_cli("train", "image", tmp_path / "m.csv", "--model", "compact", "--out", run, "--epochs", "1", "--multi-label",
            "--image-size", "32", "--batch-size", "8", "--split", "0.6,0.2,0.2")
    ev = json.loads(run_cli("evaluate", run, tmp_path / "m.csv", "--json").stdout)
    assert ev["mean_average_precision"] is not None and ev["n"] == 24


def test_inspect_image_classes_and_lr_find(tiles, tmp_path):
    proc = run_cli("inspect", tiles, "--out", tmp_path / "ins")
    assert "duplicates found" in proc.stderr and "1 files repeat" in proc.stderr
    assert (tmp_path / "ins" / "class_counts.png").is_file() and (tmp_path / "ins" / "samples_per_class.png").is_file()
    proc = run_cli("lr-find", "image", tiles, "--model", "compact", "--out", tmp_path / "lr", "--image-size", "32", "--batch-size", "4")
    assert float(proc.stdout.strip()) > 0 and (tmp_path / "lr" / "lr_find.png").is_file()


def test_exported_classifier_gives_the_same_answers_on_both_engines(tiles, tmp_path):
    import onnx

    from hardsight import TrainConfig, train
    from hardsight.engine.runtimes import META_PREFIX
    from hardsight.engine.predictor import Predictor

    run = tmp_path / "run"
    train(TrainConfig(task="image", model="compact", data=str(tiles), out=str(run), epochs=1, image_size=32, batch_size=8,
                      split=(0.6, 0.2, 0.2)), progress=False)
    from hardsight.engine.image_predictor import ImagePredictor

    predictor = Predictor(run)  # the run's task picks the subclass, which is a Predictor like any other
    assert isinstance(predictor, ImagePredictor) and isinstance(predictor, Predictor) and predictor.task == "image"
    assert predictor.engine == "torch"  # nothing exported yet
    result = json.loads(run_cli("export", run, "--json").stdout)
    assert result["path"] == str(run / "model.onnx") and result["dynamic_axes"] == ["batch"]
    assert result["max_prob_diff"] < 1e-4 and result["images_checked"] >= 3
    assert not list(run.glob("model.onnx.*"))
    meta = {p.key: p.value for p in onnx.load(str(run / "model.onnx")).metadata_props}
    assert meta[META_PREFIX + "task"] == "image"
    assert json.loads(meta[META_PREFIX + "classes"]) == ["blue", "green", "red"]

    files = sorted(str(f) for f in tiles.rglob("*.png"))
    by_onnx = Predictor(run, engine="onnx", threads=1)
    assert by_onnx.engine == "onnx" and Predictor(run).engine == "onnx"  # auto takes the current export
    onnx_out = by_onnx.predict(files, batch_size=5)
    torch_out = Predictor(run, engine="torch").predict(files, batch_size=64)
    assert [r.label for r in onnx_out] == [r.label for r in torch_out]
    assert [r.error is None for r in onnx_out] == [r.error is None for r in torch_out]
    worst = max(abs(a.probabilities[c] - b.probabilities[c]) for a, b in zip(onnx_out, torch_out) if a.error is None
                for c in a.probabilities)
    assert worst < 1e-4
    evals = [json.loads(run_cli("evaluate", run, tiles, "--json", "--engine", e).stdout) for e in ("onnx", "torch")]
    assert evals[0]["accuracy"] == evals[1]["accuracy"] and evals[0]["per_class"] == evals[1]["per_class"]


def test_onnx_engine_without_an_export_is_a_clear_error(tiles, tmp_path):
    from hardsight import TrainConfig, train

    run = tmp_path / "run"
    train(TrainConfig(task="image", model="compact", data=str(tiles), out=str(run), epochs=1, image_size=32, batch_size=8,
                      split=(0.6, 0.2, 0.2)), progress=False)
    proc = run_cli("predict", run, tiles / "red" / "red1.png", "--engine", "onnx", check=False)
    assert proc.returncode == 2 and "hardsight export" in proc.stderr
