"""`balance`: N images per class in a new folder, originals untouched, resumable, bad files skipped."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from hardsight.data.balance import MANIFEST, augment, balance
from hardsight.errors import DataError

SIZES = {"Bus": 3, "Car": 7, "Palm": 1}


def _make(folder: Path) -> Path:
    """Class folders of small textured images (JPEG and PNG, two sizes), plus one file that is not an image."""
    rng = np.random.default_rng(0)
    for cls, n in SIZES.items():
        (folder / cls).mkdir(parents=True)
        for i in range(n):
            size = (40, 30) if i % 2 else (32, 32)
            pixels = rng.integers(0, 255, (size[1], size[0], 3), dtype=np.uint8)
            Image.fromarray(pixels).save(folder / cls / f"{cls.lower()}{i}.{'png' if i % 2 else 'jpg'}")
    (folder / "Bus" / "broken.jpg").write_bytes(b"not an image at all")
    return folder


def _snapshot(folder: Path) -> dict[str, tuple[bytes, int]]:
    return {str(p.relative_to(folder)): (p.read_bytes(), p.stat().st_mtime_ns)
            for p in sorted(folder.rglob("*")) if p.is_file()}


@pytest.fixture
def data(tmp_path) -> Path:
    return _make(tmp_path / "data")


def _images(folder: Path) -> list[Path]:
    return sorted(p for p in folder.rglob("*") if p.is_file() and p.name != MANIFEST)


def test_balance_writes_n_per_class_and_leaves_originals(data, tmp_path):
    before = _snapshot(data)
    out = tmp_path / "out"
    result = balance(data, out, per_class=5, seed=0, progress=False)
    assert _snapshot(data) == before  # same bytes, same mtimes, nothing added
    for cls in SIZES:
        assert len(list((out / cls).iterdir())) == 5
        n = result.classes[cls]
        assert n.total == 5 and n.originals == min(SIZES[cls], 5) and n.augmented == 5 - n.originals
    # a class with more than N gets a sample of its originals, byte for byte
    for f in (out / "Car").iterdir():
        assert f.read_bytes() == (data / "Car" / f.name).read_bytes()
    # augmented files are named after their source and keep its format and size
    for f in (out / "Bus").glob("*_aug*"):
        stem, k = f.stem.rsplit("_aug", 1)
        source = data / "Bus" / f"{stem}{f.suffix}"
        assert source.is_file() and int(k) >= 1
        with Image.open(f) as a, Image.open(source) as b:
            assert (a.format, a.size, a.mode) == (b.format, b.size, b.mode)
    palm = sorted(p.name for p in (out / "Palm").iterdir())
    assert palm == ["palm0.jpg"] + [f"palm0_aug{k}.jpg" for k in range(1, 5)]


def test_bad_image_is_reported_and_skipped(data, tmp_path):
    result = balance(data, tmp_path / "out", per_class=4, progress=False)
    assert [Path(f).name for f, _ in result.unreadable] == ["broken.jpg"]
    assert result.classes["Bus"].unreadable == 1 and result.classes["Bus"].total == 4
    assert not any("broken" in p.name for p in _images(tmp_path / "out"))
    doc = json.loads(json.dumps(result.to_json()))
    assert doc["classes"]["Bus"] == {"originals": 3, "augmented": 1, "total": 4, "unreadable": 1}


def test_seeded_and_repeatable(data, tmp_path):
    a = balance(data, tmp_path / "a", per_class=6, seed=3, progress=False)
    b = balance(data, tmp_path / "b", per_class=6, seed=3, progress=False)
    files_a, files_b = _images(a.out), _images(b.out)
    assert [p.relative_to(a.out) for p in files_a] == [p.relative_to(b.out) for p in files_b]
    assert all(x.read_bytes() == y.read_bytes() for x, y in zip(files_a, files_b))
    c = balance(data, tmp_path / "c", per_class=6, seed=4, progress=False)
    aug = sorted((tmp_path / "a" / "Palm").glob("*_aug*"))
    assert any(p.read_bytes() != (c.out / "Palm" / p.name).read_bytes() for p in aug)


def test_augment_changes_pixels_but_not_size():
    image = Image.fromarray(np.random.default_rng(1).integers(0, 255, (24, 36, 3), dtype=np.uint8))
    out = augment(image, seed=5)
    assert out.size == image.size and out.mode == image.mode
    assert not np.array_equal(np.asarray(out), np.asarray(image))
    assert np.array_equal(np.asarray(augment(image, seed=5)), np.asarray(out))
    gray = augment(image.convert("L"), seed=5)
    assert gray.mode == "L" and gray.size == image.size


def test_balancing_a_balanced_set_never_overwrites_its_files(data, tmp_path):
    first = balance(data, tmp_path / "once", per_class=4, progress=False)
    (first.out / MANIFEST).unlink()
    again = balance(first.out, tmp_path / "twice", per_class=6, progress=False)
    names = [p.name for p in _images(again.out / "Palm")]
    assert len(names) == len(set(names)) == 6
    for name in [p.name for p in _images(first.out / "Palm")]:  # every file of the first set is copied unchanged
        assert (again.out / "Palm" / name).read_bytes() == (first.out / "Palm" / name).read_bytes()


def test_refuses_a_non_empty_out_unless_resuming(data, tmp_path):
    out = tmp_path / "out"
    out.mkdir()
    (out / "something.txt").write_text("x")
    with pytest.raises(DataError, match="--resume"):
        balance(data, out, per_class=3, progress=False)
    with pytest.raises(DataError, match="outside"):
        balance(data, data / "balanced", per_class=3, progress=False)


def test_resume_skips_finished_files_from_the_manifest(data, tmp_path):
    out = tmp_path / "out"
    full = balance(data, tmp_path / "reference", per_class=6, progress=False)
    balance(data, out, per_class=6, progress=False)
    manifest = out / MANIFEST
    rows = list(csv.DictReader(manifest.open()))
    assert len(rows) == 18 and {r["kind"] for r in rows} == {"original", "augmented"}
    # an interruption: the last 5 files never got written and never made the manifest
    for r in rows[-5:]:
        (out / r["file"]).unlink()
    with manifest.open("w", newline="") as f:
        writer = csv.DictWriter(f, list(rows[0]))
        writer.writeheader()
        writer.writerows(rows[:-5])
    kept = {r["file"]: (out / r["file"]).stat().st_mtime_ns for r in rows[:-5]}
    result = balance(data, out, per_class=6, resume=True, progress=False)
    assert result.resumed == 13
    assert {r["file"]: (out / r["file"]).stat().st_mtime_ns for r in rows[:-5]} == kept  # not rewritten
    assert [p.relative_to(out) for p in _images(out)] == [p.relative_to(full.out) for p in _images(full.out)]
    assert all(a.read_bytes() == b.read_bytes() for a, b in zip(_images(out), _images(full.out)))
    assert len(list(csv.DictReader(manifest.open()))) == 18


def test_resume_with_other_settings_is_refused(data, tmp_path):
    out = tmp_path / "out"
    balance(data, out, per_class=6, progress=False)
    with pytest.raises(DataError, match="same DATA, --per-class and --seed"):
        balance(data, out, per_class=4, resume=True, progress=False)


def test_cli_balance_json(data, tmp_path):
    from typer.testing import CliRunner

    from hardsight.cli import app

    result = CliRunner().invoke(app, ["balance", str(data), str(tmp_path / "out"), "--per-class", "2", "--json"])
    assert result.exit_code == 0, result.output
    doc = json.loads(result.stdout)
    assert {c: v["total"] for c, v in doc["classes"].items()} == {"Bus": 2, "Car": 2, "Palm": 2}
    again = CliRunner().invoke(app, ["balance", str(data), str(tmp_path / "out"), "--per-class", "2"])
    assert again.exit_code == 2 and "--resume" in again.output and "Traceback" not in again.output


def test_resume_into_a_folder_balance_did_not_make_is_refused(data, tmp_path):
    victim = tmp_path / "victim"
    (victim / "Bus").mkdir(parents=True)
    (victim / "Bus" / "bus0.jpg").write_bytes(b"the user's own file")
    before = _snapshot(victim)
    with pytest.raises(DataError, match="not an interrupted"):
        balance(data, victim, per_class=5, resume=True, progress=False)
    assert _snapshot(victim) == before


def _tiles(folder: Path, per_class: int) -> Path:
    """Two classes told apart by colour, with texture, so every file has distinct pixels."""
    rng = np.random.default_rng(1)
    for cls, colour in {"red": (200, 30, 30), "blue": (30, 30, 200)}.items():
        (folder / cls).mkdir(parents=True)
        for i in range(per_class):
            pixels = np.clip(np.array(colour) + rng.normal(0, 25, (32, 32, 3)), 0, 255).astype(np.uint8)
            Image.fromarray(pixels).save(folder / cls / f"{cls}{i}.png")
    return folder


def test_augmented_copies_stay_on_the_side_of_their_source(tmp_path):
    from tests.cli_runner import run_cli

    data = _tiles(tmp_path / "data", per_class=10)
    out = tmp_path / "balanced"
    balance(data, out, per_class=40, seed=0, progress=False)  # three copies of every original
    with (out / MANIFEST).open(newline="") as f:
        source_of = {row["file"]: row["source"] for row in csv.DictReader(f)}
    assert sum(f != s for f, s in source_of.items()) == 60

    inspected = run_cli("inspect", out, "--out", tmp_path / "inspect")
    said = " ".join((inspected.stdout + inspected.stderr).split())  # the table may wrap
    assert "augmented copies" in said and "60 files made by `hardsight balance` from 20 originals" in said

    run = tmp_path / "run"
    run_cli("train", "image", out, "--model", "compact", "--out", run, "--epochs", "1", "--image-size", "32", "--batch-size", "16",
            "--split", "0.6,0.2,0.2")
    split = json.loads((run / "split.json").read_text())
    side = {}
    for part in ("train", "val", "test"):
        for files in split[part]:
            for file in files:
                side.setdefault(source_of[file], set()).add(part)
    assert len(side) == 20  # every original is in the split, with its copies
    assert all(len(parts) == 1 for parts in side.values()), {s: p for s, p in side.items() if len(p) > 1}
    assert {p for parts in side.values() for p in parts} == {"train", "val", "test"}
