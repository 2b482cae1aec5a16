"""The classic text notebook's knobs: a fixed crop box that travels with the run, and its two networks."""

from __future__ import annotations

import dataclasses
import json
import random
from pathlib import Path

import pytest
import torch
from PIL import Image
from torch import nn

from hardsight.config import InputSpec, TrainConfig
from hardsight.data.io import load_image
from hardsight.data.synthetic import make_text_captchas
from hardsight.errors import ConfigError
from hardsight.models import build_model
from hardsight.transforms import text_preprocess
from tests.cli_runner import run_cli

CROP = (20, 15, 204, 60)  # where the 204x60 CAPTCHA sits on each 240x90 canvas
TOO_SMALL = "2345a.png"  # 100x40: does not hold the crop box


def noisy_canvas(captcha: Image.Image, seed: int) -> Image.Image:
    """The CAPTCHA at the crop box's corner, on random noise that a reader without the crop would see."""
    rng = random.Random(seed)
    canvas = Image.frombytes("L", (240, 90), bytes(rng.randrange(256) for _ in range(240 * 90))).convert("RGB")
    canvas.paste(captcha, CROP[:2])
    return canvas


@pytest.fixture(scope="module")
def boxed(tmp_path_factory) -> Path:
    """30 five-character CAPTCHAs inside noise, and one image smaller than the crop box."""
    src, data = tmp_path_factory.mktemp("plain"), tmp_path_factory.mktemp("boxed")
    for i, path in enumerate(make_text_captchas(src, 30, lengths=(5, 5), seed=4)):
        noisy_canvas(Image.open(path).convert("RGB"), seed=i).save(data / path.name)
    assert not (data / TOO_SMALL).exists()
    Image.new("RGB", (100, 40), "white").save(data / TOO_SMALL)
    return data


def cropped_then_resized(path: Path, spec: InputSpec) -> torch.Tensor:
    x, y, w, h = CROP
    return text_preprocess(load_image(path, "L").crop((x, y, x + w, y + h)), dataclasses.replace(spec, crop=None))


def test_crop_is_what_training_caches_and_a_too_small_image_is_skipped(boxed):
    from hardsight.data.text.prepare import prepare_text_data

    data = prepare_text_data(TrainConfig(task="text", data=str(boxed), model="cnn", crop=CROP, workers=1))
    assert data.spec.crop == CROP and data.labels_json()["input"]["crop"] == list(CROP)
    assert data.spec.width == 112  # the median width of the 204x60 box at 32 px high, not of the 240x90 canvas
    samples = [s for part in data.samples.values() for s in part]
    assert len(samples) == 30
    for sample in samples[:5]:
        assert torch.equal(sample.image, cropped_then_resized(sample.path, data.spec))
    [(file, why)] = data.skipped.unreadable
    assert Path(file).name == TOO_SMALL and "smaller than the crop box 20,15,204,60" in why


@pytest.fixture(scope="module")
def cropped_run(boxed, tmp_path_factory) -> Path:
    run = tmp_path_factory.mktemp("runs") / "cropped"
    run_cli("train", "text", boxed, "--out", run, "--epochs", "1", "--model", "cnn", "--crop", "20,15,204,60")
    return run


def test_the_run_keeps_the_crop_and_reports_the_too_small_image(cropped_run):
    assert json.loads((cropped_run / "labels.json").read_text())["input"]["crop"] == list(CROP)
    assert f"{TOO_SMALL}`: 100x40 pixels is smaller than the crop box" in (cropped_run / "report.md").read_text()


def test_predict_and_onnx_read_only_the_crop_box(cropped_run, boxed, tmp_path):
    from hardsight import Predictor

    original = sorted(p for p in boxed.glob("*.png") if p.name != TOO_SMALL)[0]
    box = load_image(original, "RGB").crop((CROP[0], CROP[1], CROP[0] + CROP[2], CROP[1] + CROP[3]))
    renoised = tmp_path / original.name
    noisy_canvas(box, seed=99).save(renoised)  # the same box, other noise around it

    assert load_image(original, "L").tobytes() != load_image(renoised, "L").tobytes()

    run_cli("export", cropped_run, "--samples", "8")
    for engine in ("torch", "onnx"):  # the ONNX engine takes the crop from model.onnx's metadata
        reader = Predictor(cropped_run, engine=engine)
        assert reader.engine == engine and reader.reader.spec.crop == CROP
        seen = [reader.prepare(p, lambda path: load_image(path, "L"))[0] for p in (original, renoised)]
        assert torch.equal(seen[0], cropped_then_resized(original, reader.reader.spec)) and torch.equal(*seen)
        first, second, small = reader.predict([original, renoised, boxed / TOO_SMALL])
        assert first.error is None and first.text == second.text
        assert small.text == "" and "smaller than the crop box" in small.error


def test_the_server_reads_the_crop_box_and_refuses_a_too_small_image(cropped_run, boxed):
    from fastapi.testclient import TestClient

    from hardsight.serve import ServeSettings, create_app

    original = sorted(p for p in boxed.glob("*.png") if p.name != TOO_SMALL)[0]
    with TestClient(create_app(ServeSettings(runs=(cropped_run,), engine="torch")), base_url="http://127.0.0.1") as c:
        assert c.get("/v1/models").json()["models"][0]["input"]["crop"] == list(CROP)
        assert c.post("/v1/read", files={"file": (original.name, original.read_bytes())}).status_code == 200
        refused = c.post("/v1/read", files={"file": (TOO_SMALL, (boxed / TOO_SMALL).read_bytes())})
        assert refused.status_code == 422 and "smaller than the crop box" in refused.json()["detail"]


def test_evaluate_skips_the_too_small_image(cropped_run, boxed):
    ev = json.loads(run_cli("evaluate", cropped_run, boxed, "--json").stdout)
    assert (ev["n"], ev["skipped"]) == (30, 1)


def test_crop_is_a_text_setting():
    with pytest.raises(ConfigError, match="crop .* is for the text task"):
        TrainConfig(task="image", data=".", model="compact", crop=CROP)
    proc = run_cli("train", "text", ".", "--crop", "20,15,204", check=False)
    assert proc.returncode == 2 and "x,y,w,h" in proc.stderr


def linear_widths(module: nn.Module) -> list[int]:
    return [m.out_features for m in module.modules() if isinstance(m, nn.Linear)]


def test_notebook_networks_are_the_notebooks():
    spec = InputSpec(50, 200)
    crnn = build_model("crnn_notebook", "text", num_classes=19, spec=spec, max_length=0).eval()
    assert linear_widths(crnn) == [64, 20]
    assert [(m.hidden_size, m.bidirectional) for m in crnn.modules() if isinstance(m, nn.LSTM)] == [(128, True),
                                                                                                     (64, True)]
    assert sorted(m.p for m in crnn.modules() if isinstance(m, nn.Dropout)) == [0.2, 0.25]
    cnn = build_model("cnn_notebook", "text", num_classes=19, spec=InputSpec(32, 96, keep_aspect=False), max_length=6)
    assert linear_widths(cnn) == [256, 64, 20]


@pytest.mark.parametrize("name, width, steps", [("crnn_notebook", 200, 50), ("crnn_notebook", 128, 32),
                                                ("cnn_notebook", 96, 6)])
def test_notebook_networks_give_log_probs_per_step(name, width, steps):
    spec = InputSpec(32, width, keep_aspect=name.startswith("crnn"))
    model = build_model(name, "text", num_classes=19, spec=spec, max_length=6).eval()
    with torch.inference_mode():
        assert model(torch.rand(3, 1, 32, width)).shape == (3, steps, 20)  # crnn: 1 step per 4 px; cnn: per position


@pytest.mark.parametrize("model, ctc", [("crnn_notebook", True), ("cnn_notebook", False)])
def test_notebook_networks_train_and_read_through_the_cli(captchas, tmp_path, model, ctc):
    from hardsight import Predictor

    run = tmp_path / model
    run_cli("train", "text", captchas, "--out", run, "--epochs", "1", "--model", model)
    reader = Predictor(run)
    assert reader.config.model == model and reader.reader.decode.ctc == ctc
    reads = reader.predict(sorted(captchas.glob("*.png"))[:4])
    assert all(r.error is None and 0.0 <= r.confidence <= 1.0 for r in reads)
