"""Grid CAPTCHAs: cutting cells (borders and lines tolerated), 3x3 vs 4x4, prompt names, solving, drawing."""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

import hardsight
from hardsight.errors import ConfigError
from hardsight.grid import annotate, assemble_grid, cell_boxes, detect_grid, resolve_target, solve, split_grid
from tests.cli_runner import run_cli

CHALLENGES = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "recaptcha_grids"
TILE_CLASSES = ["Bicycle", "Bridge", "Bus", "Car", "Chimney", "Crosswalk", "Hydrant", "Motorcycle", "Other", "Palm",
                "Stair", "Traffic Light"]
COLOURS = {"Bus": (220, 40, 40), "Car": (40, 200, 60), "Traffic Light": (40, 60, 220), "Other": (128, 128, 128)}


def tile(colour: tuple[int, int, int], size: int = 100, seed: int = 0) -> Image.Image:
    """A textured tile: a colour, a gentle gradient and noise, like a small photo of one thing."""
    rng = np.random.default_rng(seed)
    ramp = np.linspace(-25, 25, size)[None, :, None] * rng.choice([-1, 1])
    pixels = np.asarray(colour, np.float32) + ramp + rng.normal(0, 12, (size, size, 3))
    return Image.fromarray(np.clip(pixels, 0, 255).astype(np.uint8))


def photo(size: int = 400, seed: int = 0) -> Image.Image:
    """One smooth synthetic photo (no seams anywhere), as 4x4 challenges are cut from."""
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:size, 0:size] / size
    channels = [120 + 80 * np.sin(2 * np.pi * (f1 * x + f2 * y) + ph)
                for f1, f2, ph in rng.uniform([0.3, 0.3, 0], [1.5, 1.5, 6], (3, 3))]
    pixels = np.stack(channels, -1) + rng.normal(0, 6, (size, size, 3))
    return Image.fromarray(np.clip(pixels, 0, 255).astype(np.uint8))


def jpeg(image: Image.Image, quality: int = 80) -> Image.Image:
    buf = io.BytesIO()
    image.save(buf, "JPEG", quality=quality)
    return Image.open(io.BytesIO(buf.getvalue())).convert("RGB")


def mean_colour(image: Image.Image) -> np.ndarray:
    return np.asarray(image, np.float32).reshape(-1, 3).mean(0)


@dataclass
class FakePrediction:
    probabilities: dict[str, float]
    label: str


class ColourClassifier:
    """Test double for an image run: a cell's class is the nearest of COLOURS to its mean colour."""

    classes = list(COLOURS)
    thresholds = {"Bus": 0.6, "Car": 0.5, "Traffic Light": 0.5, "Other": 0.5}

    def __init__(self):
        self.seen: list[str] = []

    def predict_images(self, images, names=None):
        self.seen += names or []
        out = []
        for im in images:
            d = np.array([np.linalg.norm(mean_colour(im) - np.array(c)) for c in COLOURS.values()])
            p = np.exp(-d / 20) / np.exp(-d / 20).sum()
            probs = dict(zip(COLOURS, p.tolist()))
            out.append(FakePrediction(probs, max(probs, key=probs.get)))
        return out


def grid_of(layout: list[str], rows: int, cols: int, **kw) -> Image.Image:
    return assemble_grid([tile(COLOURS[c], seed=i) for i, c in enumerate(layout)], rows, cols, **kw)


LAYOUT_3x3 = ["Bus", "Car", "Other", "Other", "Bus", "Traffic Light", "Car", "Other", "Bus"]


# ---------------------------------------------------------------- splitting


def test_split_plain_grid_in_row_major_order():
    cells = split_grid(grid_of(LAYOUT_3x3, 3, 3), 3, 3)
    assert [c.size for c in cells] == [(100, 100)] * 9
    for cell, name in zip(cells, LAYOUT_3x3):
        assert np.abs(mean_colour(cell) - COLOURS[name]).max() < 15


@pytest.mark.parametrize("line_px,border_px,colour,compress", [
    (2, 0, (255, 255, 255), False),
    (4, 6, (255, 255, 255), True),
    (3, 4, (200, 30, 30), False),
    (1, 0, (0, 0, 0), True),
])
def test_split_leaves_out_border_and_lines(line_px, border_px, colour, compress):
    grid = grid_of(LAYOUT_3x3, 3, 3, line_px=line_px, border_px=border_px, line_color=colour)
    assert grid.size == (300 + 2 * line_px + 2 * border_px,) * 2
    if compress:
        grid = jpeg(grid)
    boxes = cell_boxes(grid, 3, 3)
    for i, (left, top, right, bottom) in enumerate(boxes):
        r, c = divmod(i, 3)
        x, y = border_px + c * (100 + line_px), border_px + r * (100 + line_px)  # where the tile was pasted
        # each edge within a pixel of the tile's (JPEG blurs a line into its neighbours by about one)
        assert max(abs(left - x), abs(top - y), abs(right - x - 100), abs(bottom - y - 100)) <= 1
    for cell, name in zip(split_grid(grid, 3, 3), LAYOUT_3x3):
        assert np.abs(mean_colour(cell) - COLOURS[name]).max() < 15


def test_forced_grid_splits_evenly_when_lines_disagree():
    grid = grid_of(LAYOUT_3x3, 3, 3)
    cells = split_grid(grid, 2, 2)
    assert [c.size for c in cells] == [(150, 150)] * 4


# ---------------------------------------------------------------- 3x3 or 4x4


@pytest.mark.parametrize("n", [3, 4])
@pytest.mark.parametrize("line_px", [0, 3])
def test_detect_grid_of_separate_photos(n, line_px):
    tiles = [tile(tuple(np.random.default_rng(i).integers(30, 220, 3)), seed=i) for i in range(n * n)]
    assert detect_grid(assemble_grid(tiles, n, n, line_px=line_px)) == (n, n)


def test_detect_one_photo_is_4x4():
    assert detect_grid(photo(400)) == (4, 4)
    assert detect_grid(jpeg(photo(450, seed=3))) == (4, 4)


@pytest.mark.parametrize("n", [3, 4])
@pytest.mark.parametrize("compress", [False, True])
def test_detect_one_photo_cut_by_drawn_lines(n, compress):
    """A screenshot of the widget: one photo, white lines between cells and a frame."""
    cells = split_grid(photo(360, seed=n), n, n)
    grid = assemble_grid(cells, n, n, line_px=4, border_px=5, line_color=(245, 245, 245))
    grid = jpeg(grid) if compress else grid
    assert detect_grid(grid) == (n, n)
    slack = 2 if compress else 0  # JPEG blurs the edges of a line into the cells beside it
    for i, (left, top, right, bottom) in enumerate(cell_boxes(grid, n, n)):
        r, c = divmod(i, n)
        x, y = 5 + c * (360 // n + 4), 5 + r * (360 // n + 4)
        assert max(abs(left - x), abs(top - y), abs(right - x - 360 // n), abs(bottom - y - 360 // n)) <= slack


def test_lines_that_run_into_a_flat_sky_are_placed_from_the_other_axis():
    """A pale band across the top merges with the frame; the cells still land between the lines."""
    sky = np.asarray(photo(360, seed=7)).copy()
    sky[:30] = (250, 250, 250)
    cells = split_grid(Image.fromarray(sky), 4, 4)
    grid = assemble_grid(cells, 4, 4, line_px=4, border_px=5, line_color=(250, 250, 250))
    assert detect_grid(grid) == (4, 4)
    for i, (left, top, right, bottom) in enumerate(cell_boxes(grid, 4, 4)):
        r, c = divmod(i, 4)
        x, y = 5 + c * 94, 5 + r * 94
        assert max(abs(left - x), abs(top - y), abs(right - x - 90), abs(bottom - y - 90)) <= 1


def _challenges() -> list[Path]:
    return sorted((CHALLENGES / "challenges").glob("*/*.png")) if CHALLENGES.is_dir() else []


@pytest.mark.skipif(not CHALLENGES.is_dir(), reason=f"real challenge images not here ({CHALLENGES})")
@pytest.mark.parametrize("path", _challenges(), ids=lambda p: f"{p.parent.name}/{p.name}")
def test_detect_real_challenges(path):
    n = int(path.parent.name[0])  # challenges/3x3/... or challenges/4x4/...
    assert detect_grid(path) == (n, n)
    cells = split_grid(path, n, n)
    width = Image.open(path).width
    assert len(cells) == n * n and all(abs(c.width - width / n) <= 1 for c in cells)


@pytest.mark.skipif(not CHALLENGES.is_dir(), reason=f"real challenge images not here ({CHALLENGES})")
def test_detect_real_3x3_grids():
    grids = sorted((CHALLENGES / "grids_3x3").glob("*.jpg"))
    assert len(grids) >= 50
    wrong = [g.name for g in grids if detect_grid(g) != (3, 3)]
    assert not wrong


# ---------------------------------------------------------------- target names


@pytest.mark.parametrize("prompt,expected", [
    ("buses", "Bus"), ("a bus", "Bus"), ("Bus", "Bus"), ("busses", "Bus"), ("Traffic lights", "Traffic Light"),
    ("traffic_light", "Traffic Light"), ("fire hydrants", "Hydrant"), ("hydrants", "Hydrant"),
    ("a fire hydrant", "Hydrant"), ("crosswalks", "Crosswalk"), ("pedestrian crossings", "Crosswalk"),
    ("palm trees", "Palm"), ("motorbikes", "Motorcycle"), ("motorcycles", "Motorcycle"), ("bicycles", "Bicycle"),
    ("stairs", "Stair"), ("chimneys", "Chimney"), ("bridges", "Bridge"), ("CARS", "Car"),
    ("Select all images with buses", "Bus"), ("Select all squares with traffic lights", "Traffic Light"),
])
def test_resolve_target(prompt, expected):
    assert resolve_target(prompt, TILE_CLASSES) == expected


def test_resolve_target_matches_the_runs_own_spelling():
    assert resolve_target("stair", ["stairs", "car"]) == "stairs"
    assert resolve_target("hydrants", ["Fire_Hydrant", "car"]) == "Fire_Hydrant"


def test_unknown_target_lists_known_classes():
    with pytest.raises(ConfigError) as e:
        resolve_target("mountains or hills", TILE_CLASSES)
    assert "mountains or hills" in str(e.value)
    assert all(c in str(e.value) for c in TILE_CLASSES)


# ---------------------------------------------------------------- solving


def test_solve_selects_cells_above_the_runs_threshold():
    clf = ColourClassifier()
    sol = solve(clf, grid_of(LAYOUT_3x3, 3, 3, line_px=3), "buses")
    assert (sol.target, sol.rows, sol.cols, sol.threshold) == ("Bus", 3, 3, 0.6)
    assert sol.selected == [0, 4, 8]
    assert sol.positions == [(1, 1), (2, 2), (3, 3)]
    assert len(sol.scores) == 9 and all(0 <= s <= 1 for s in sol.scores)
    assert all(sol.scores[i] >= 0.6 for i in sol.selected)
    assert all(sol.scores[i] < 0.6 for i in range(9) if i not in sol.selected)
    assert clf.seen == [f"r{r}c{c}" for r in (1, 2, 3) for c in (1, 2, 3)]
    doc = json.loads(json.dumps(sol.to_json()))
    assert {"target", "selected", "positions", "scores", "threshold"} <= set(doc)
    assert doc["positions"] == [[1, 1], [2, 2], [3, 3]]


def test_solve_threshold_override_and_forced_grid():
    layout = ["Car"] * 3 + ["Other"] * 13
    grid = grid_of(layout, 4, 4)
    sol = solve(ColourClassifier(), grid, "cars", grid="4x4", threshold=0.99)
    assert (sol.rows, sol.cols, sol.threshold) == (4, 4, 0.99)
    assert set(sol.selected) <= {0, 1, 2}
    everything = solve(ColourClassifier(), grid, "cars", threshold=0.0)
    assert everything.selected == list(range(16))
    assert solve(ColourClassifier(), grid, "traffic lights").selected == []


@pytest.mark.parametrize("kwargs,message", [
    ({"target": "mountains or hills"}, "classes are"),
    ({"target": "bus", "grid": "three"}, "ROWSxCOLS"),
    ({"target": "bus", "threshold": 1.5}, "between 0 and 1"),
])
def test_solve_errors_say_what_to_fix(kwargs, message):
    with pytest.raises(ConfigError, match=message):
        solve(ColourClassifier(), grid_of(LAYOUT_3x3, 3, 3), **kwargs)


def test_solve_reads_a_file_and_is_reachable_from_the_package(tmp_path):
    path = tmp_path / "grid.png"
    grid_of(LAYOUT_3x3, 3, 3).save(path)
    assert hardsight.solve(ColourClassifier(), path, "a bus").selected == [0, 4, 8]


def test_annotate_writes_the_grid_with_chosen_cells_marked(tmp_path):
    grid = grid_of(LAYOUT_3x3, 3, 3)
    src = tmp_path / "grid.png"
    grid.save(src)
    before = src.read_bytes()
    sol = solve(ColourClassifier(), src, "bus")
    out = annotate(src, sol, tmp_path / "marks" / "out.png")
    drawn = Image.open(out)
    assert drawn.format == "PNG" and drawn.size == grid.size
    a, b = np.asarray(drawn.convert("RGB"), np.int16), np.asarray(grid, np.int16)
    changed = np.abs(a - b).sum(-1) > 0
    for i, (left, top, right, bottom) in enumerate(sol.boxes):
        frac = changed[top:bottom, left:right].mean()
        assert frac > 0.9 if i in sol.selected else frac < 0.3  # unchosen cells only carry their score label
    assert src.read_bytes() == before
    with pytest.raises(ConfigError, match="overwrite"):
        annotate(src, sol, src)


# ---------------------------------------------------------------- the command


def test_cli_solve_json_and_annotate(monkeypatch, tmp_path):
    from typer.testing import CliRunner

    import hardsight.engine.predictor
    from hardsight.cli import app

    monkeypatch.setattr(hardsight.engine.predictor, "Predictor", lambda run, **kw: ColourClassifier())
    path = tmp_path / "grid.png"
    grid_of(LAYOUT_3x3, 3, 3, line_px=2).save(path)
    result = CliRunner().invoke(app, ["solve", str(tmp_path), str(path), "--target", "Buses", "--json",
                                      "--annotate", str(tmp_path / "a.png")])
    assert result.exit_code == 0, result.output
    doc = json.loads(result.stdout)
    assert doc["target"] == "Bus" and doc["selected"] == [0, 4, 8] and doc["positions"] == [[1, 1], [2, 2], [3, 3]]
    assert len(doc["scores"]) == 9 and doc["threshold"] == 0.6
    assert Image.open(tmp_path / "a.png").size == Image.open(path).size

    result = CliRunner().invoke(app, ["solve", str(tmp_path), str(path), "--target", "mountains or hills"])
    assert result.exit_code == 2 and "Traffic Light" in result.output and "Traceback" not in result.output


def test_cli_solve_refuses_a_text_run(monkeypatch, tmp_path):
    from typer.testing import CliRunner

    import hardsight.engine.predictor
    from hardsight.cli import app

    class TextReader:
        task = "text"

    monkeypatch.setattr(hardsight.engine.predictor, "Predictor", lambda run, **kw: TextReader())
    path = tmp_path / "grid.png"
    grid_of(LAYOUT_3x3, 3, 3).save(path)
    result = CliRunner().invoke(app, ["solve", str(tmp_path), str(path), "--target", "bus"])
    assert result.exit_code == 2
    assert "is a text reader; solve needs an image classifier run" in " ".join(result.output.split())


def test_cli_solve_end_to_end(tmp_path):
    """Train a tiny image run on colour tiles, then solve a grid of unseen tiles with `hardsight solve`."""
    data = tmp_path / "tiles"
    for name, colour in COLOURS.items():
        (data / name).mkdir(parents=True)
        for i in range(10):
            tile(colour, 32, seed=100 + i).save(data / name / f"{i}.png")
    run = tmp_path / "run"
    env = {**os.environ, "COLUMNS": "200"}
    cli = [sys.executable, "-m", "hardsight"]
    # training and export in this process (a torch start-up each saved); the solves run as a user runs them
    run_cli("train", "image", data, "--model", "compact", "--out", run, "--epochs", "1", "--image-size", "32",
            "--seed", "0")
    grid = tmp_path / "grid.png"
    grid_of(LAYOUT_3x3, 3, 3, line_px=3).save(grid)
    proc = subprocess.run([*cli, "solve", str(run), str(grid), "--target", "buses", "--json",
                           "--annotate", str(tmp_path / "marked.png")], capture_output=True, text=True, env=env)
    assert proc.returncode == 0, proc.stderr
    doc = json.loads(proc.stdout)
    assert doc["target"] == "Bus" and (doc["rows"], doc["cols"]) == (3, 3) and len(doc["scores"]) == 9
    assert all(0.0 <= s <= 1.0 for s in doc["scores"]) and 0.0 <= doc["threshold"] <= 1.0
    assert doc["positions"] == [[i // 3 + 1, i % 3 + 1] for i in doc["selected"]]
    assert Image.open(tmp_path / "marked.png").size == Image.open(grid).size

    run_cli("export", run)
    proc = subprocess.run([*cli, "solve", str(run), str(grid), "--target", "buses", "--json", "--engine", "onnx"],
                          capture_output=True, text=True, env=env)
    by_onnx = json.loads(proc.stdout)
    assert by_onnx["selected"] == doc["selected"]
    assert max(abs(a - b) for a, b in zip(by_onnx["scores"], doc["scores"])) < 1e-4
