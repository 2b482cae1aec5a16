"""The face stage inside the image task: aligned crops with landmarks, online occlusion, predict crops alike."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from hardsight.config import TrainConfig
from hardsight.errors import ConfigError
from hardsight.faces.occluders import vr_headset_box
from tests.faces.helpers import synthetic_faces
from tests.test_cli_text import run_cli


@pytest.fixture(scope="module")
def faces(tmp_path_factory):
    return synthetic_faces(tmp_path_factory.mktemp("faces"), performers=4)


def test_online_occlusion_draws_on_the_cached_crop(faces):
    from hardsight.data.image.labels import load_image_dataset
    from hardsight.data.image.prepare import ImageItemDataset
    from hardsight.faces.stage import FaceStage

    root, lmk = faces
    cfg = TrainConfig(task="image", model="compact", data=str(root), label_col="expression", image_size=48, faces=True, landmarks=str(lmk))
    ds = load_image_dataset(root, 48, "expression", preprocess=FaceStage.for_config(cfg))
    item = ds.items[0]
    eyes = item.landmarks[36:48].mean(0)
    assert item.image.shape == (3, 48, 48) and abs(item.landmarks[36:42, 1].mean() - item.landmarks[42:48, 1].mean()) < 1e-3
    always = ImageItemDataset([item], ds.classes, 48, occluder="vr-headset", occlusion_prob=1.0)
    never = ImageItemDataset([item], ds.classes, 48, occluder="vr-headset", occlusion_prob=0.0)
    x, _ = always[0]
    cx, cy = np.round(vr_headset_box(item.landmarks).centre).astype(int)
    assert x[:, cy, cx].max() == 0 and x[:, int(eyes[1]), int(eyes[0])].max() == 0  # black over the eyes
    assert torch.allclose(never[0][0], item.image.float() / 255)
    assert not torch.equal(item.image, (x * 255).round().to(torch.uint8))  # the cached crop itself is untouched


def test_occlusion_settings_are_checked():
    with pytest.raises(ConfigError, match="needs an occluder"):
        TrainConfig(task="image", data="x", faces=True, occlusion_prob=0.5)
    with pytest.raises(ConfigError, match="add --faces"):
        TrainConfig(task="image", data="x", occluder="vr-headset", occlusion_prob=0.5)
    with pytest.raises(ConfigError, match="unknown occluder"):
        TrainConfig(task="image", data="x", faces=True, occluder="helmet", occlusion_prob=0.5)
    TrainConfig(task="image", data="x", occluder="random-patch", occlusion_prob=0.5)  # needs no face


def test_cli_face_run_predicts_with_the_same_crop(faces, tmp_path):
    root, lmk = faces
    run = tmp_path / "run"
    run_cli("train", "image", root, "--model", "compact", "--out", run, "--label-col", "expression", "--group-col", "performer",
            "--faces", "--landmarks", lmk, "--occluder", "vr-headset", "--occlusion-prob", "0.5", "--face-margin", "0.1",
            "--epochs", "1", "--image-size", "32", "--batch-size", "4", "--split", "0.5,0.25,0.25")
    cfg = (run / "config.yaml").read_text()
    assert "faces: true" in cfg and "occluder: vr-headset" in cfg
    assert len(list((run / "landmarks").glob("*.npy"))) == 12  # kept for predict and --resume
    from hardsight.engine.image_predictor import ImagePredictor

    p = ImagePredictor(run)
    assert p.preprocess is not None and p.preprocess.known == {}
    out = p.predict([root / "images" / "p00hap.png"])
    assert out[0].label in {"happy", "neutral", "surprise"} and out[0].error is None
    lm = np.load(lmk / "images" / "p00hap_lnd.npy")
    assert any(np.allclose(v, lm) for v in p.preprocess.known.values())  # cropped from the same landmarks
    assert p.preprocess.margin == 0.1  # and the same margin
