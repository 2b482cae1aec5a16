"""AffectNet as it comes (images/ + annotations/<n>_exp.npy, _lnd.npy): read, its landmarks used by the face stage,
and the occlusion study tested on a given folder (AffectNet's val_set/) with DATA split into train and val only."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from hardsight.data.image.labels import load_image_dataset, read_labelled_files
from hardsight.errors import DataError, RunError
from tests.faces.helpers import draw_face, face_landmarks

MOUTHS = {0: 0.3, 1: 1.0, 3: 3.0}  # AffectNet's neutral, happy and surprise, told apart by the mouth
# the forms an _exp.npy takes: AffectNet's own (digits in a 0-d string array), a number, a one-element array
LABEL_FORMS = (lambda i: np.array(str(i)), lambda i: np.array(i), lambda i: np.array([i], dtype=np.int64))


def affectnet_folder(root: Path, per_class: int = 6, seed: int = 0) -> Path:
    """root/images/<n>.jpg (64 px faces) and root/annotations/<n>_exp.npy, _lnd.npy (136 floats), _val, _aro."""
    rng = np.random.default_rng(seed)
    (root / "images").mkdir(parents=True)
    (root / "annotations").mkdir()
    n = 0
    for index, mouth in MOUTHS.items():
        for _ in range(per_class):
            lm = face_landmarks((32 + rng.uniform(-2, 2), 27 + rng.uniform(-2, 2)), rng.uniform(34, 40),
                                rng.uniform(-8, 8))
            draw_face((64, 64), lm, mouth).save(root / "images" / f"{n}.jpg", quality=95)
            np.save(root / "annotations" / f"{n}_exp.npy", LABEL_FORMS[n % 3](index))
            np.save(root / "annotations" / f"{n}_lnd.npy", lm.astype(np.float32).reshape(-1))
            np.save(root / "annotations" / f"{n}_val.npy", np.array(str(rng.uniform(-1, 1))))
            np.save(root / "annotations" / f"{n}_aro.npy", np.array(str(rng.uniform(-1, 1))))
            n += 1
    return root


@pytest.fixture(scope="module")
def affectnet(tmp_path_factory) -> tuple[Path, Path]:
    """AffectNet's train_set/ and val_set/; their files are numbered alike (0.jpg in both, other faces)."""
    root = tmp_path_factory.mktemp("affectnet")
    return affectnet_folder(root / "train_set", 6, seed=0), affectnet_folder(root / "val_set", 3, seed=1)


def test_affectnet_labels_are_read_by_index_and_bad_ones_are_skipped(tmp_path):
    root = affectnet_folder(tmp_path / "train_set", per_class=4)
    np.save(root / "annotations" / "0_exp.npy", np.array("9"))  # no such class
    (root / "annotations" / "5_exp.npy").write_bytes(b"not a numpy file")
    (root / "annotations" / "9_exp.npy").unlink()  # an image without a label
    np.save(root / "annotations" / "1_exp.npy", np.array(["1", "2"]))  # two values

    ds = load_image_dataset(root, 32, workers=2)
    assert ds.classes == ["happy", "neutral", "surprise"]
    by_file = {it.path.name: it.labels for it in ds.items}
    assert len(by_file) == 12 - 4
    assert by_file["6.jpg"] == ["happy"] and by_file["2.jpg"] == ["neutral"]  # digits (AffectNet's own form)
    assert by_file["4.jpg"] == ["happy"] and by_file["8.jpg"] == ["surprise"]  # a number, a one-element array
    why = {Path(f).name: reason for f, reason in ds.skipped.bad_label}
    assert set(why) == {"0.jpg", "1.jpg", "5.jpg", "9.jpg"} and not ds.skipped.unreadable
    assert "0_exp.npy" in why["0.jpg"] and "'9' is not one of 0..7" in why["0.jpg"]
    assert "5_exp.npy: not a readable .npy file" in why["5.jpg"]
    assert why["9.jpg"] == f"no label file {root / 'annotations' / '9_exp.npy'}"
    assert "expected one class index" in why["1.jpg"]


def test_every_affectnet_class_by_its_index(tmp_path):
    from hardsight.data.image.affectnet import read_expression

    names = [read_expression(_saved(tmp_path / f"{i}_exp.npy", np.array(str(i)))) for i in range(8)]
    assert names == ["neutral", "happy", "sad", "surprise", "fear", "disgust", "anger", "contempt"]
    for bad in (np.array("-1"), np.array(8), np.array("x"), np.array(True), np.array(1.5)):
        with pytest.raises(DataError, match="is not one of 0..7"):
            read_expression(_saved(tmp_path / "bad_exp.npy", bad))


def _saved(path: Path, value: np.ndarray) -> Path:
    np.save(path, value)
    return path


def test_a_folder_with_affectnet_labels_and_another_layout_is_refused(tmp_path):
    root = affectnet_folder(tmp_path / "mixed", per_class=2)
    (root / "happy").mkdir()
    shutil.copy(root / "images" / "0.jpg", root / "happy" / "extra.jpg")
    with pytest.raises(DataError, match=r"holds both AffectNet labels \(annotations/\*_exp.npy\) and happy/"):
        read_labelled_files(root)
    shutil.rmtree(root / "happy")
    (root / "labels.csv").write_text("file,label\n0.jpg,happy\n")
    with pytest.raises(DataError, match="holds both AffectNet labels .* and labels.csv"):
        read_labelled_files(root)


def test_the_face_stage_reads_each_affectnet_image_its_own_landmarks(affectnet):
    from hardsight.config import TrainConfig
    from hardsight.data.io import load_image
    from hardsight.faces.stage import FaceStage

    train_set, val_set = affectnet
    stage = FaceStage.for_config(TrainConfig(task="image", data=str(train_set), model="compact", faces=True))
    for folder in (train_set, val_set):  # DATA's and a --test-dir's alike, though both hold a 0.jpg
        image = folder / "images" / "0.jpg"
        expected = np.load(folder / "annotations" / "0_lnd.npy").reshape(68, 2)
        assert np.array_equal(stage.find(image, load_image(image)), expected)


def _study(train_set: Path, out: Path, **kw):
    from hardsight.faces.study import StudyConfig

    return StudyConfig(str(train_set), str(out), "eyes-bar", image_size=32, epochs=1, batch_size=8,
                       conditions=("clean",), **kw)


def test_the_study_tests_on_a_given_folder_and_splits_data_into_train_and_val(affectnet, tmp_path):
    from hardsight.faces.study import TEST_CONDITIONS, occlusion_study

    train_set, val_set = affectnet
    out = tmp_path / "study"
    result = occlusion_study(_study(train_set, out, test_dir=str(val_set), split=(0.5, 0.25, 0.25)), progress=False)
    split = json.loads((out / "split.json").read_text())
    test_files = sorted(p for item in split["test"] for p in item)
    assert test_files == sorted(str(p) for p in (val_set / "images").glob("*.jpg"))  # that folder, all of it
    assert all(not Path(p).is_absolute() for s in ("train", "val") for item in split[s] for p in item)
    assert result.split == {"train": 12, "val": 6, "test": 9}  # DATA's 18 faces at 0.5 : 0.25, renormalised
    assert [c.images for c in result.cells] == [9, 9, 9, 18] and [c.test for c in result.cells] == list(TEST_CONDITIONS)
    assert len(list((out / "landmarks").glob("*.npy"))) == 0  # every face, the test folder's too, came with its own
    assert json.loads((out / "study.json").read_text())["test_dir"] == str(val_set)
    assert f"test faces from `{val_set}`" in (out / "study.md").read_text()

    again = occlusion_study(_study(train_set, out, test_dir=str(val_set), split=(0.5, 0.25, 0.25)), progress=False)
    assert again.reused == ["clean"] and again.split == result.split
    with pytest.raises(RunError, match=r"test_dir was '.*val_set', now None"):
        occlusion_study(_study(train_set, out, split=(0.5, 0.25, 0.25)), progress=False)


def test_the_study_takes_test_dir_and_limit_per_class_as_options(affectnet, tmp_path):
    from hardsight.errors import ConfigError
    from tests.test_cli_text import run_cli

    train_set, val_set = affectnet
    with pytest.raises(ConfigError, match=r"\['test_dir'\] are the study's own"):
        _study(train_set, tmp_path / "s", settings={"test_dir": str(val_set)})
    with pytest.raises(ConfigError, match="limit_per_class must be at least 1, got 0"):
        _study(train_set, tmp_path / "s", limit_per_class=0)
    out = tmp_path / "cli"
    done = run_cli("study", "occlusion", train_set, "--out", out, "--occluder", "eyes-bar", "--image-size", "32",
                   "--epochs", "1", "--batch-size", "8", "--conditions", "clean", "--test-dir", val_set,
                   "--limit-per-class", "4", "--seed", "3", "--json")
    result = json.loads(done.stdout)
    assert result["split"]["test"] == 9 and result["split"]["train"] + result["split"]["val"] == 12
    saved = json.loads((out / "study.json").read_text())
    assert (saved["limit_per_class"], saved["training"]["limit_per_class"], saved["training"]["test_dir"]) == (
        4, 4, str(val_set))
