"""`hardsight landmarks` and `hardsight occlude`: mirrored output, originals untouched, resume, bad files."""

from __future__ import annotations

import csv
import hashlib
import json
import shutil

import numpy as np
import pytest
from PIL import Image

from hardsight.errors import DataError
from hardsight.faces.jobs import find_landmarks, occlude
from hardsight.faces.landmarks import write_landmarks
from hardsight.faces.occluders import vr_headset_box
from tests.faces.helpers import draw_face, face_landmarks, synthetic_faces
from tests.test_cli_text import run_cli


def _digests(folder):
    return {p.relative_to(folder).as_posix(): hashlib.sha1(p.read_bytes()).hexdigest()
            for p in sorted(folder.rglob("*")) if p.is_file()}


@pytest.fixture()
def faces(tmp_path):
    """Class folders with a PNG and a JPEG face (landmarks given), a face-less image and a corrupt file."""
    data, lmk = tmp_path / "data", tmp_path / "lmk"
    for i, (cls, ext) in enumerate((("happy", "png"), ("sad", "jpg"))):
        lm = face_landmarks(centre=(60 + i, 50), width=70, angle_deg=10 * i)
        (data / cls).mkdir(parents=True)
        draw_face((120, 110), lm).save(data / cls / f"f{i}.{ext}", quality=90)
        write_landmarks(lmk / cls / f"f{i}_lnd.npy", lm)
    Image.new("L", (80, 80), 128).save(data / "sad" / "blank.png")  # no landmarks file, no face for dlib
    (data / "happy" / "broken.png").write_bytes(b"\x89PNG not really")
    return data, lmk


def test_occlude_mirrors_data_keeps_size_and_format_and_resumes(faces, tmp_path):
    pytest.importorskip("dlib")  # blank.png has no landmarks file, so dlib looks (and finds no face)
    data, lmk = faces
    before = _digests(data)
    out = tmp_path / "out"
    r = occlude(data, out, "vr-headset", landmarks=lmk, progress=False)
    assert (r.done, r.resumed, r.no_face, [f for f, _ in r.unreadable]) == (
        2, 0, ["sad/blank.png"], [str(data / "happy" / "broken.png")])
    assert _digests(data) == before  # originals untouched
    for rel in ("happy/f0.png", "sad/f1.jpg"):
        src, dst = Image.open(data / rel), Image.open(out / rel)
        assert (dst.size, dst.format, dst.mode) == (src.size, src.format, src.mode)
    lm = face_landmarks(centre=(60, 50), width=70)
    cx, cy = map(int, vr_headset_box(lm).centre)
    assert Image.open(out / "happy" / "f0.png").getpixel((cx, cy)) == (0, 0, 0)
    assert Image.open(out / "happy" / "f0.png").getpixel((2, 2)) == Image.open(data / "happy" / "f0.png").getpixel((2, 2))
    rows = list(csv.DictReader((out / "occlude.csv").open()))
    assert {r["file"]: r["status"] for r in rows} == {"happy/f0.png": "ok", "sad/f1.jpg": "ok",
                                                      "sad/blank.png": "no face", "happy/broken.png": "unreadable"}

    stamp = (out / "sad" / "f1.jpg").stat().st_mtime_ns
    again = occlude(data, out, "vr-headset", landmarks=lmk, progress=False)
    assert (again.done, again.resumed, again.no_face) == (0, 2, ["sad/blank.png"])  # nothing redone
    assert (out / "sad" / "f1.jpg").stat().st_mtime_ns == stamp
    (out / "happy" / "f0.png").unlink()
    assert occlude(data, out, "vr-headset", landmarks=lmk, progress=False).done == 1  # only the missing one
    with pytest.raises(DataError, match="other settings"):
        occlude(data, out, "eyes-bar", landmarks=lmk, progress=False)
    with pytest.raises(DataError, match="inside DATA"):
        occlude(data, data / "out", "vr-headset", landmarks=lmk, progress=False)


def test_occlude_a_csv_manifest_in_worker_processes(tmp_path):
    root, lmk = synthetic_faces(tmp_path / "faces", performers=2)
    with (root / "labels.csv").open("a") as f:
        f.write("missing.png,happy,09\n")
    out = tmp_path / "occluded"
    r = occlude(root, out, "lower-face", landmarks=lmk, workers=2, progress=False)
    assert r.done == 6 and r.unreadable == [(f"{root / 'labels.csv'}:8", "'missing.png': no such file")]
    assert sorted(p.name for p in (out / "images").iterdir()) == sorted(p.name for p in (root / "images").iterdir())
    rows = list(csv.DictReader((out / "labels.csv").open()))  # the manifest comes along, for the rows done
    assert len(rows) == 6 and set(rows[0]) == {"file", "expression", "performer"}
    assert not np.array_equal(np.asarray(Image.open(out / "images" / rows[0]["file"])),
                              np.asarray(Image.open(root / "images" / rows[0]["file"])))


def test_landmarks_verb_reports_no_face_and_unreadable_files(tmp_path):
    pytest.importorskip("dlib")
    data = tmp_path / "data"
    data.mkdir()
    Image.new("RGB", (90, 90), (120, 130, 140)).save(data / "wall.jpg")
    (data / "bad.jpg").write_bytes(b"not a jpeg")
    out = tmp_path / "lmk"
    res = json.loads(run_cli("landmarks", data, "--out", out, "--json").stdout)
    assert res["no_face"] == ["wall.jpg"] and [u["file"] for u in res["unreadable"]] == [str(data / "bad.jpg")]
    assert res["done"] == 0 and res["detection_rate"] == 0.0
    rows = {r["file"]: r["status"] for r in csv.DictReader((out / "landmarks.csv").open())}
    assert rows == {"wall.jpg": "no face", "bad.jpg": "unreadable"}
    assert not list(out.rglob("*_lnd.npy"))
    res = json.loads(run_cli("landmarks", data, "--out", out, "--json").stdout)
    assert res["no_face"] == ["wall.jpg"] and res["done"] == 0  # a rerun does not look again
    proc = run_cli("occlude", data, tmp_path / "o", "--occluder", "vr-headsett", check=False)
    assert proc.returncode == 2 and "did you mean 'vr-headset'" in proc.stderr


@pytest.mark.slow
def test_landmarks_of_real_faces_are_saved_per_image(tmp_path):
    pytest.importorskip("dlib")
    from tests.faces.test_align_and_landmarks import TFEID

    if not TFEID.is_dir():
        pytest.skip(f"{TFEID} is not here (the shared faces data set)")
    data = tmp_path / "data"
    (data / "images").mkdir(parents=True)
    for name in ("0101a02.jpg", "0111b01.jpg"):
        shutil.copy(TFEID / "images" / name, data / "images" / name)
    r = find_landmarks(data, tmp_path / "lmk", progress=False)
    assert r.done == 2 and r.detection_rate == 1.0
    lm = np.load(tmp_path / "lmk" / "images" / "0101a02_lnd.npy")
    assert lm.shape == (68, 2) and lm.dtype == np.float32
