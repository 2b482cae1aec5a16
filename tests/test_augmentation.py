"""Image augmentation beyond `augment` (vflip, rotate, shear, zoom_out with fill, brightness, contrast), what
`inspect --augment` shows of it, and `normalize: data`."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
import yaml
from PIL import Image

from hardsight import TrainConfig
from hardsight.errors import ConfigError
from hardsight.transforms import image_augmentation
from tests.cli_runner import run_cli
from tests.test_tune import tiles  # noqa: F401  (the fixture: 3 colour classes x 10 tiles)



def _draws(transform, image, n=12):
    torch.manual_seed(0)
    return [transform(image) for _ in range(n)]


def _uniform(value, size=32):
    return torch.full((3, size, size), value, dtype=torch.uint8)


def _asymmetric(size=32):
    """A bright top-left block on black: every flip, turn or skew moves it."""
    image = torch.zeros(3, size, size, dtype=torch.uint8)
    image[:, 2:12, 4:20] = 250
    return image


@pytest.mark.parametrize("name, bad", [("vflip", 1.5), ("rotate", 200), ("shear", -5), ("zoom_out", 0.95),
                                       ("fill", 2), ("brightness", 1.5), ("contrast", -0.1)])
def test_out_of_range_settings_are_clear_errors(name, bad):
    with pytest.raises(ConfigError, match=rf"{name} must be in \[.*\].*got {bad}"):
        TrainConfig(task="image", data="x", model="compact", **{name: bad})


def test_text_runs_refuse_the_image_settings():
    for name, value in (("rotate", 36), ("vflip", 0.5), ("zoom_out", 0.3), ("normalize", "data")):
        with pytest.raises(ConfigError, match=f"{name} .* is for the image task"):
            TrainConfig(task="text", data="x", **{name: value})
    with pytest.raises(ConfigError, match="normalize must be one of"):
        TrainConfig(task="image", data="x", model="compact", normalize="batch")


def test_the_defaults_keep_augments_recipe():
    """Runs that never name the new settings train with exactly the transforms they always had."""
    from torchvision.transforms import v2

    cfg = TrainConfig(task="image", data="x", model="compact")
    settings = {name: getattr(cfg, name) for name in ("vflip", "rotate", "shear", "zoom_out", "fill", "brightness",
                                                      "contrast")}
    recipe = image_augmentation(cfg.image_size, cfg.augment, cfg.min_scale, **settings)
    assert [type(t) for t in recipe.transforms] == [v2.RandomResizedCrop, v2.RandomHorizontalFlip, v2.RandomApply,
                                                    v2.ColorJitter, v2.ToDtype]
    assert [type(t) for t in image_augmentation(cfg.image_size, 0.0, **settings).transforms] == [v2.ToDtype]
    assert cfg.normalize == "backbone"


def test_vflip_turns_images_upside_down():
    image = _asymmetric()
    for out in _draws(image_augmentation(32, 0.0, vflip=1.0), image):
        assert torch.allclose(out, image.flip(-2).float() / 255)


def test_rotate_turns_every_image_and_replaces_augments_turns():
    image = _asymmetric()
    for out in _draws(image_augmentation(32, 0.0, rotate=36), image):
        assert not torch.allclose(out, image.float() / 255, atol=0.05)
    assert "Rotation" not in repr(image_augmentation(32, 1.0, rotate=0))  # 0: augment's turns are off too


def test_zoom_out_shrinks_onto_a_fill_coloured_canvas():
    grey, white = 100 / 255, 1.0
    outs = _draws(image_augmentation(32, 0.0, zoom_out=0.5, fill=white), _uniform(100))
    for out in outs:
        assert out[:, 16, 16].allclose(torch.tensor(grey))  # the middle is still the image
        assert ((out - grey).abs() < 1e-3).logical_or(out > grey).all()  # nothing but image, fill, or between
    borders = [float((out == white).float().mean()) for out in outs]
    assert sum(b > 0 for b in borders) >= len(outs) - 2 and max(borders) > 0.3  # up to half as wide: 3/4 canvas
    assert all(torch.equal(out[:, 0, 0], torch.ones(3)) for out, b in zip(outs, borders) if b > 0.1)


def test_shear_skews_sideways():
    image = torch.zeros(3, 32, 32, dtype=torch.uint8)
    image[:, :, 14:18] = 250  # an upright bar
    for out in _draws(image_augmentation(32, 0.0, shear=30), image, n=6):
        top, bottom = out[0, 2].argmax(), out[0, 29].argmax()  # where the bar is near the top and the bottom
        assert top != bottom


def test_brightness_and_contrast_change_what_they_say():
    means = [float(out.mean()) for out in _draws(image_augmentation(32, 0.0, brightness=0.5), _uniform(128))]
    assert min(means) < 0.45 and max(means) > 0.55 and 0.25 - 1e-3 <= min(means) and max(means) <= 0.75 + 1e-3
    two_tone = _uniform(60)
    two_tone[:, 16:] = 190
    spreads = [float(out.std()) for out in _draws(image_augmentation(32, 0.0, contrast=0.5), two_tone)]
    original = float((two_tone.float() / 255).std())
    assert min(spreads) < 0.9 * original and max(spreads) > 1.1 * original


def test_training_batches_get_the_settings_and_validation_does_not(tiles):
    from hardsight.data.image.prepare import ImageDataModule, prepare_image_data

    cfg = TrainConfig(task="image", data=str(tiles), model="compact", image_size=16, augment=0.0, vflip=1.0,
                      split=(0.6, 0.2, 0.2))
    dm = ImageDataModule(prepare_image_data(cfg), cfg)
    train, val = dm.dataset("train", train=True), dm.dataset("val", train=False)
    assert torch.allclose(train[0][0], train.items[0].image.flip(-2).float() / 255)
    assert torch.allclose(val[0][0], val.items[0].image.float() / 255)


def test_inspect_augment_draws_the_training_augmentation(tiles, tmp_path, captchas):
    settings = tmp_path / "aug.yaml"
    settings.write_text(yaml.safe_dump({"model": "compact", "image_size": 16, "rotate": 36, "zoom_out": 0.3,
                                        "fill": 1.0, "vflip": 0.5}))
    out = tmp_path / "inspect"
    run_cli("inspect", tiles, "--out", out, "--augment", settings)
    picture = out / "augmented_samples.png"
    assert picture.stat().st_size > 0 and (out / "class_counts.png").is_file()
    assert Image.open(picture).width > Image.open(picture).height  # 3 rows (a class each) of 1 cached + 8 draws
    settings.write_text("rotate: 200\n")
    bad = run_cli("inspect", tiles, "--out", out, "--augment", settings, check=False)
    assert bad.returncode == 2 and "rotate must be in [0, 180]" in bad.stderr
    text = run_cli("inspect", captchas, "--out", tmp_path / "text", "--augment", settings, check=False)
    assert text.returncode == 2 and "--augment" in text.stderr and "text data" in text.stderr


def test_normalize_data_stores_the_training_splits_statistics(tiles, tmp_path):
    """Set on the command line, the statistics of the cached training images go into labels.json and the
    checkpoint, so every later stage normalises by them; the augmentation flags are saved with the run."""
    from hardsight.data.image.prepare import prepare_image_data
    from hardsight.models.image_classifiers import input_statistics
    from hardsight.runs.folder import RunFolder
    from hardsight.tasks import load_module

    out = tmp_path / "run"
    run_cli("train", "image", tiles, "--out", out, "--model", "compact", "--image-size", 16, "--epochs", 1,
            "--batch-size", 8, "--split", "0.6,0.2,0.2", "--normalize", "data", "--rotate", 36, "--zoom-out", 0.3,
            "--fill", 1, "--brightness", 0.2)
    run = RunFolder.open(out)
    cfg = run.load_config()
    assert (cfg.normalize, cfg.rotate, cfg.zoom_out, cfg.fill, cfg.brightness) == ("data", 36, 0.3, 1.0, 0.2)
    pixels = torch.stack([it.image for it in prepare_image_data(cfg).items["train"]]).double() / 255
    mean, std = pixels.mean((0, 2, 3)), pixels.std((0, 2, 3), unbiased=False)
    stored = json.loads((out / "labels.json").read_text())["input"]
    assert np.allclose(stored["mean"], mean, atol=1e-5) and np.allclose(stored["std"], std, atol=1e-5)
    loaded = load_module(run, "best").norm.statistics()
    assert np.allclose(loaded["mean"], mean, atol=1e-5) and np.allclose(loaded["std"], std, atol=1e-5)
    assert not np.allclose(stored["mean"], input_statistics("compact")[0], atol=1e-2)
