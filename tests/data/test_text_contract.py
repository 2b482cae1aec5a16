"""The input contract chosen from the training images: the ink's box, the height for the glyphs, colour, contrast."""

from __future__ import annotations

import json
import random
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from hardsight.data.io import load_image, read_size
from hardsight.data.text.contract import MIN_GLYPH, choose_input, ink_of, survey_ink
from hardsight.data.text.styles import TextStyle, make_styled_captchas, render_text
from hardsight.errors import DataError
from tests.cli_runner import run_cli

WIDE_PALE = TextStyle()  # 600x80, glyphs of about 18 px, pale ink, thin lines: what the fixed input reads badly
BAND = replace(WIDE_PALE, canvas=(400, 160), band=(0.45, 0.55), lines=(0, 0), ink=((30, 30, 30),), gap=(4, 10))
TINY_PALE = replace(WIDE_PALE, canvas=(600, 200), glyph_px=16, band=(0.2, 0.8))  # glyphs under 3 px at height 32


def survey_of(paths: list[Path]):
    sizes = [read_size(p) for p in paths]
    return survey_ink(paths, sizes, one_size=sizes[0] if len(set(sizes)) == 1 else None, workers=1)


def test_a_band_of_text_on_a_tall_canvas_is_cropped_to_a_box_holding_every_images_ink(tmp_path):
    paths = make_styled_captchas(tmp_path, BAND, 60, seed=1)
    choice = choose_input(survey_of(paths))
    assert choice.crop is not None
    x, y, w, h = choice.crop
    assert h < 160 / 2 and any("crop" in r for r in choice.reasons)
    for p in paths:  # no ink of any training image falls outside the box
        mask, _, _ = ink_of(np.asarray(load_image(p), dtype=np.float32) / 255)
        outside = mask.copy()
        outside[y:y + h, x:x + w] = False
        assert not outside.any(), p.name
    # dark ink on white: grey shows it, as it is
    assert choice.channels == 1 and choice.contrast is None


def test_pale_ink_is_stretched_and_small_glyphs_that_still_read_keep_the_height(tmp_path):
    paths = make_styled_captchas(tmp_path, WIDE_PALE, 60, seed=2)
    survey = survey_of(paths)
    assert 12 <= survey.glyph_px <= 25  # 25-px type: capitals about 18 px, lower case less
    choice = choose_input(survey)
    assert choice.contrast == "stretch" and any("pale ink" in r for r in choice.reasons)
    assert choice.height == 32 and survey.glyph_px * 32 / 80 >= MIN_GLYPH  # about 7 px: measured to read


def test_glyphs_too_small_to_read_get_a_taller_input(tmp_path):
    survey = survey_of(make_styled_captchas(tmp_path, TINY_PALE, 60, seed=2))
    choice = choose_input(survey)
    band = choice.crop[3] if choice.crop else 200
    assert survey.glyph_px * 32 / band < MIN_GLYPH  # what 32 px would make of them
    assert choice.height > 32 and any(r.startswith(f"height {choice.height}") for r in choice.reasons)


def test_colour_is_kept_where_it_sets_the_ink_apart_better_than_grey(tmp_path):
    yellow = replace(BAND, ink=((255, 200, 0),))  # grey 0.76 on white; the blue channel 1.0 on white
    choice = choose_input(survey_of(make_styled_captchas(tmp_path, yellow, 30, seed=3)))
    assert choice.channels == 3 and any("colour" in r for r in choice.reasons)


def test_what_the_user_gives_wins_and_is_not_explained(tmp_path):
    survey = survey_of(make_styled_captchas(tmp_path, WIDE_PALE, 30, seed=4))
    choice = choose_input(survey, height=32, crop=(0, 0, 600, 80), channels=1, contrast="none")
    assert (choice.height, choice.crop, choice.channels, choice.contrast) == (32, (0, 0, 600, 80), 1, "none")
    assert choice.reasons == ()


def test_images_of_several_sizes_get_no_crop(tmp_path):
    paths = make_styled_captchas(tmp_path / "a", BAND, 20, seed=5)
    paths += make_styled_captchas(tmp_path / "b", replace(BAND, canvas=(420, 160)), 20, seed=6)
    survey = survey_of(paths)
    assert survey.box is None and choose_input(survey).crop is None


def test_blank_images_are_counted_and_named_and_a_blank_set_is_one_line(tmp_path):
    data = tmp_path / "data"
    make_styled_captchas(data, BAND, 30, seed=7)
    for name in ("aaaa.png", "bbbb.png", "cccc.png", "dddd.png"):
        Image.new("RGB", BAND.canvas, (240, 240, 240)).save(data / name)
    result = run_cli("train", "text", data, "--out", tmp_path / "run", "--epochs", "1", "--split", "0.9,0.05,0.05")
    assert "show no ink" in (result.stdout + result.stderr) and "(blank or of one colour)" in (result.stdout + result.stderr)
    blank = tmp_path / "blank"
    blank.mkdir()
    for letter in "cdefghjkmnpq":
        Image.new("RGB", (120, 40), (255, 255, 255)).save(blank / f"ab{letter}.png")
    result = run_cli("train", "text", blank, "--out", tmp_path / "run2", "--epochs", "1", check=False)
    assert result.returncode == 2 and "no ink found in any of the" in (result.stdout + result.stderr)
    assert "Traceback" not in (result.stdout + result.stderr)


@pytest.fixture(scope="module")
def fitted_run(tmp_path_factory) -> tuple[Path, Path]:
    data = tmp_path_factory.mktemp("tiny")
    make_styled_captchas(data, TINY_PALE, 48, seed=8)
    run = tmp_path_factory.mktemp("runs") / "fitted"
    result = run_cli("train", "text", data, "--out", run, "--epochs", "1", "--from-scratch")  # a start from the
    # general reader keeps its 32 px
    assert "input from the training images: height" in (result.stdout + result.stderr)
    return run, data


def test_the_chosen_contract_travels_with_the_run_to_predict_and_onnx(fitted_run):
    from hardsight.engine.predictor import Predictor

    run, data = fitted_run
    spec = json.loads((run / "labels.json").read_text())["input"]
    assert spec["height"] > 32 and spec["contrast"] == "stretch"
    run_cli("export", run, "--samples", "4")
    files = sorted(data.glob("*.png"))[:6]
    readers = {engine: Predictor(run, engine=engine) for engine in ("torch", "onnx")}
    assert readers["onnx"].reader.spec == readers["torch"].reader.spec
    assert readers["torch"].reader.spec.contrast == "stretch" and readers["torch"].reader.spec.height == spec["height"]
    texts = {engine: [p.text for p in r.predict(files)] for engine, r in readers.items()}
    assert texts["onnx"] == texts["torch"]


def test_no_fit_input_reads_the_whole_image_at_32_px_in_grey(tmp_path):
    data = tmp_path / "wide"
    make_styled_captchas(data, WIDE_PALE, 24, seed=9)
    run = tmp_path / "run"
    result = run_cli("train", "text", data, "--out", run, "--epochs", "1", "--no-fit-input")
    spec = json.loads((run / "labels.json").read_text())["input"]
    assert (spec["height"], spec["channels"], spec["crop"], spec["contrast"]) == (32, 1, None, None)
    assert "input from the training images" not in (result.stdout + result.stderr)


def test_a_style_draws_the_same_image_from_the_same_seed():
    one, two = (render_text(WIDE_PALE, "Ab3x", random.Random(5)) for _ in range(2))
    assert one.size == WIDE_PALE.canvas and one.tobytes() == two.tobytes()


def test_inspect_shows_the_input_train_would_choose_and_why(tmp_path):
    from hardsight.data.inspect import inspect_dataset

    data = tmp_path / "tiny"
    make_styled_captchas(data, TINY_PALE, 30, seed=10)
    ins = inspect_dataset(data, tmp_path / "inspect")
    assert ins.input_choice.height > 32 and ins.input_choice.contrast == "stretch"
    result = run_cli("inspect", data, "--out", tmp_path / "inspect2")
    assert "input: height" in (result.stdout + result.stderr)  # the reason for the taller input, as train prints it


def test_text_on_a_textured_ground_leaves_the_input_as_it_was(tmp_path):
    rng = random.Random(11)
    paths = []
    for i, p in enumerate(make_styled_captchas(tmp_path / "plain", BAND, 20, seed=11)):
        noise = Image.frombytes("L", BAND.canvas, bytes(rng.randrange(256) for _ in range(400 * 160))).convert("RGB")
        mask = Image.open(p).convert("L").point(lambda v: 255 if v < 128 else 0)
        noise.paste((0, 0, 0), (0, 0), mask)
        paths.append(tmp_path / p.name)
        noise.save(paths[-1])
    survey = survey_of(paths)
    choice = choose_input(survey)
    assert survey.ink_share > 0.35 and (choice.height, choice.crop, choice.channels) == (32, None, 1)
    assert "cannot tell the glyphs from a textured ground" in choice.reasons[0]
