"""Image runs with a part given as a folder (--test-dir, --val-dir), and a seeded subset of DATA (--limit-per-class)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
import yaml

from hardsight.config import TrainConfig
from hardsight.errors import ConfigError, DataError
from tests.test_cli_text import run_cli
from tests.test_image_task import COLOURS, _tile


def _tiles(root: Path, per_class: int, seed: int) -> Path:
    for k, (name, colour) in enumerate(COLOURS.items()):
        for i in range(per_class):
            _tile(root / name / f"{name}{i}.png", colour, seed=seed + 100 * k + i)
    return root


@pytest.fixture(scope="module")
def sets(tmp_path_factory) -> tuple[Path, Path]:
    """DATA (3 colours x 10 tiles) and a test folder beside it (3 x 3 other tiles, named as some of DATA's)."""
    root = tmp_path_factory.mktemp("parts")
    return _tiles(root / "data", 10, seed=0), _tiles(root / "test", 3, seed=5000)


def _cfg(data: Path, **kw) -> TrainConfig:
    return TrainConfig(task="image", data=str(data), model="compact", image_size=16, epochs=1, **kw)


def _files(items) -> list[str]:
    return sorted(str(p) for it in items for p in it.paths)


def test_a_test_dir_is_the_test_part_and_data_fills_train_and_val(sets):
    from hardsight.data.image.prepare import prepare_image_data

    data, test = sets
    parts = prepare_image_data(_cfg(data, test_dir=str(test), split=(0.6, 0.2, 0.2))).items
    assert _files(parts["test"]) == sorted(str(p) for p in test.rglob("*.png"))
    assert len(parts["train"]) + len(parts["val"]) == 30
    assert len(parts["val"]) == 8  # 0.2 / (0.6 + 0.2) of DATA's 30 (ceil 7.5), not 0.2 of them
    parts = prepare_image_data(_cfg(data, val_dir=str(test), split=(0.6, 0.2, 0.2))).items
    assert _files(parts["val"]) == sorted(str(p) for p in test.rglob("*.png")) and len(parts["test"]) == 8
    both = prepare_image_data(_cfg(data, val_dir=str(test), test_dir=str(test))).items
    assert len(both["train"]) == 30


def test_a_picture_of_the_test_dir_is_never_trained_on(sets, tmp_path):
    from hardsight.data.image.prepare import prepare_image_data

    data, test = sets
    copy = shutil.copytree(data, tmp_path / "data")
    shutil.copy(test / "red" / "red0.png", copy / "red" / "copied.png")
    parts = prepare_image_data(_cfg(copy, test_dir=str(test))).items
    assert len(parts["train"]) + len(parts["val"]) == 30
    assert all(p.name != "copied.png" for s in ("train", "val") for it in parts[s] for p in it.paths)


def test_a_test_dir_with_a_class_data_lacks_or_inside_data_is_refused(sets, tmp_path):
    from hardsight.data.image.prepare import prepare_image_data

    data, test = sets
    other = shutil.copytree(test, tmp_path / "other")
    _tile(other / "purple" / "p0.png", (150, 40, 150), seed=9)
    with pytest.raises(DataError, match=rf"{other}: --test-dir class\(es\) \['purple'\] are not classes of DATA"):
        prepare_image_data(_cfg(data, test_dir=str(other)))
    with pytest.raises(DataError, match="--test-dir overlaps DATA"):
        prepare_image_data(_cfg(data, test_dir=str(data / "red")))
    with pytest.raises(DataError, match="no such file or folder"):
        prepare_image_data(_cfg(data, test_dir=str(tmp_path / "missing")))


def test_train_with_a_test_dir_then_resume_keeps_the_split(sets, tmp_path):
    from hardsight.data.image.prepare import prepare_image_data
    from hardsight.runs.folder import RunFolder

    data, test = sets
    run = tmp_path / "run"
    flags = ("--model", "compact", "--image-size", "16", "--batch-size", "8", "--test-dir", test, "--out", run)
    run_cli("train", "image", data, "--epochs", "1", *flags)
    split = json.loads((run / "split.json").read_text())
    assert sorted(p for item in split["test"] for p in item) == sorted(str(p) for p in test.rglob("*.png"))
    assert sorted(Path(p).parent.name for item in split["train"] + split["val"] for p in item) == sorted(
        [c for c in COLOURS for _ in range(10)])  # DATA's files, stored relative to it

    run_cli("train", "image", data, "--epochs", "2", "--resume", *flags)
    folder = RunFolder.open(run)
    assert folder.load_split() == split and folder.load_config().test_dir == str(test)
    again = prepare_image_data(folder.load_config(), folder.load_split(), folder.load_labels()).items
    assert {s: [[str(p) for p in it.paths] for it in again[s]] for s in ("test",)} == {"test": split["test"]}
    assert sorted(str(p.relative_to(data)) for s in ("train", "val") for it in again[s] for p in it.paths) == sorted(
        p for s in ("train", "val") for item in split[s] for p in item)


def test_limit_per_class_is_a_seeded_subset_of_data_only(sets):
    from hardsight.data.image.prepare import prepare_image_data

    data, test = sets

    def files(seed):
        prepared = prepare_image_data(_cfg(data, limit_per_class=4, seed=seed, test_dir=str(test)))
        assert len(prepared.items["test"]) == 9  # a given folder is never limited
        assert prepared.limited == (4, 12, 30)
        return _files(prepared.items["train"] + prepared.items["val"])

    first = files(0)
    assert len(first) == 12 and all(sum(Path(f).parent.name == c for f in first) == 4 for c in COLOURS)
    assert files(0) == first and files(1) != first
    with pytest.raises(ConfigError, match="limit_per_class must be at least 1, got 0"):
        _cfg(data, limit_per_class=0)
    with pytest.raises(ConfigError, match="limit_per_class 5 is for the image task"):
        TrainConfig(task="text", data=str(data), limit_per_class=5)


def test_limit_per_class_is_recorded_in_the_run_and_reported(sets, tmp_path):
    data, _ = sets
    run = tmp_path / "run"
    done = run_cli("train", "image", data, "--model", "compact", "--image-size", "16", "--epochs", "1",
                   "--batch-size", "8", "--limit-per-class", "3", "--seed", "2", "--split", "0.34,0.33,0.33",
                   "--out", run)
    assert "at most 3 per class (9 of DATA's 30 files)" in " ".join((done.stdout + done.stderr).split())
    assert yaml.safe_load((run / "config.yaml").read_text())["limit_per_class"] == 3
    split = json.loads((run / "split.json").read_text())
    assert sum(len(split[s]) for s in ("train", "val", "test")) == 9
