"""Careless or hostile input, each found by trying: a one-line error or a reported skip, never a traceback,
never lost data, never a half-written run folder."""

from __future__ import annotations

import csv
import json
import os
import shutil
import struct
import zlib
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from hardsight.data.balance import MANIFEST, balance
from hardsight.data.synthetic import make_text_captchas
from tests.cli_runner import run_cli


def _said(result) -> str:
    return " ".join((result.stdout + result.stderr).split())


def _png_header(path: Path, width: int, height: int) -> None:
    """A PNG whose header claims width x height (the pixels never follow): what a decompression bomb looks like."""
    def chunk(kind: bytes, body: bytes) -> bytes:
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(b"\0" * 64))
                     + chunk(b"IEND", b""))


@pytest.fixture
def texts(tmp_path) -> Path:
    folder = tmp_path / "texts"
    make_text_captchas(folder, 30, seed=5)
    return folder


def test_out_inside_data_is_refused(texts):
    result = run_cli("train", "text", texts, "--out", texts / "run", "--epochs", "1", check=False)
    assert result.returncode == 2 and "inside DATA" in _said(result) and "Traceback" not in _said(result)
    assert not (texts / "run").exists()


def test_huge_wide_and_undecodable_names_are_skipped_and_reported(texts, tmp_path):
    _png_header(texts / "bomb.png", 20000, 20000)
    Image.new("L", (8000, 1), 255).save(texts / "wide.png")
    first = sorted(texts.glob("*.png"))[0]
    os.rename(first, os.fsdecode(os.fsencode(texts) + b"/" + first.stem.encode() + b"\xff.png"))
    run = tmp_path / "run"
    result = run_cli("train", "text", texts, "--out", run, "--epochs", "1")
    said = _said(result)
    assert "not valid UTF-8" in said
    split = json.loads((run / "split.json").read_text())
    listed = [f for part in ("train", "val", "test") for f in split[part]]
    assert len(listed) == 29 and not any(name in f for f in listed for name in ("bomb", "wide"))
    labels = json.loads((run / "labels.json").read_text())
    assert labels["input"]["width"] < 400  # the 8000x1 file did not widen the reader's input
    report = (run / "report.md").read_text()
    assert "bomb.png" in report and "wide.png" in report


def test_long_names_balance_and_a_cut_manifest_resumes_twice(tmp_path):
    data = tmp_path / "data"
    rng = np.random.default_rng(0)
    for cls in ("a", "b"):
        (data / cls).mkdir(parents=True)
        for i in range(3):
            name = f"{cls * 240}{i}.png" if i == 0 else f"{cls}{i}.png"  # 245 characters: _aug1 would pass 255
            Image.fromarray(rng.integers(0, 255, (16, 16, 3), dtype=np.uint8)).save(data / cls / name)
    out = tmp_path / "out"
    balance(data, out, per_class=7, seed=0, progress=False)
    expected = sorted(p.relative_to(out).as_posix() for p in out.rglob("*.png"))
    assert len(expected) == 14 and max(len(Path(p).name) for p in expected) <= 255
    manifest = out / MANIFEST
    whole = manifest.read_bytes()
    manifest.write_bytes(whole[: whole.rfind(b"\n", 0, len(whole) - 1) + 10])  # the last row cut mid-way
    for _ in range(2):
        balance(data, out, per_class=7, seed=0, resume=True, progress=False)
        with manifest.open(newline="") as f:
            rows = list(csv.DictReader(f))
        assert sorted(r["file"] for r in rows) == expected and all(r["kind"] in ("original", "augmented") for r in rows)


def test_other_careless_input_gets_one_line(tmp_path, trained_run, captchas):
    latin = tmp_path / "labels.csv"
    latin.write_bytes("file,label\ncaf\xe9.png,caf\xe9\n".encode("latin-1"))
    result = run_cli("train", "text", latin, "--out", tmp_path / "r", check=False)
    assert result.returncode == 2 and "not UTF-8" in _said(result) and "Traceback" not in _said(result)

    result = run_cli("inspect", tmp_path / "missing", check=False)
    assert result.returncode == 2 and "no such file or folder" in _said(result)

    (tmp_path / "empty").mkdir()
    result = run_cli("predict", trained_run, tmp_path / "empty", check=False)
    assert result.returncode == 2 and "holds no images" in _said(result)

    one = tmp_path / "one" / "cats"
    one.mkdir(parents=True)
    for i in range(6):
        Image.new("RGB", (16, 16), (i * 40, 0, 0)).save(one / f"{i}.png")
    result = run_cli("train", "image", tmp_path / "one", "--model", "compact", "--out", tmp_path / "r1", "--epochs", "1", check=False)
    assert result.returncode == 2 and "one class only" in _said(result)
    assert not (tmp_path / "r1").exists()


def test_a_label_pattern_or_charset_that_leaves_nothing_is_refused_with_counts(tmp_path, captchas):
    n = len(list(captchas.glob("*.png")))
    result = run_cli("train", "text", captchas, "--out", tmp_path / "r", "--label-pattern", r"(.+)-\d+$", check=False)
    assert result.returncode == 2 and f"matches none of its {n} images" in _said(result)
    result = run_cli("train", "text", captchas, "--out", tmp_path / "r", "--charset", "ab", check=False)
    assert result.returncode == 2 and "leaves out" in _said(result) and f"of its {n} labels" in _said(result)
    assert not (tmp_path / "r").exists()


def test_two_data_sets_named_alike_keep_their_own_figures(trained_run, captchas, tmp_path):
    run = tmp_path / "run"
    shutil.copytree(trained_run, run)
    shutil.rmtree(run / "evaluations", ignore_errors=True)  # what other tests evaluated with the shared run
    for parent in ("x", "y"):
        shutil.copytree(captchas, tmp_path / parent / "test")
        run_cli("evaluate", run, tmp_path / parent / "test", "--json")
    folders = sorted((run / "evaluations").iterdir())
    assert len(folders) == 2 and all(f.name.startswith("test-") for f in folders)


def test_training_data_decodes_only_the_allowed_formats(tmp_path):
    """An EPS named .png never reaches PIL's EPS plugin (Ghostscript): it is 'not an image', like any other junk."""
    from hardsight.data.io import UnreadableImage, load_image, read_size

    eps = tmp_path / "a.png"
    eps.write_bytes(b"%!PS-Adobe-3.0 EPSF-3.0\n%%BoundingBox: 0 0 10 10\nshowpage\n")
    for read in (load_image, read_size):
        with pytest.raises(UnreadableImage, match="^not an image$"):
            read(eps)
