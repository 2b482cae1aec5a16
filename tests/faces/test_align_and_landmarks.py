"""Aligned crops, landmark files (ours and AffectNet's), and dlib on real and face-less images."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image, ImageDraw

from hardsight.errors import DataError
from hardsight.config import FACE_MARGIN
from hardsight.faces.align import align_face
from hardsight.faces.landmarks import find_landmark_file, read_landmarks, write_landmarks
from tests.faces.helpers import face_landmarks

TFEID = Path(__file__).resolve().parents[2].parent / "shared" / "data" / "faces_tfeid"


@pytest.mark.parametrize("angle, margin", [(-15.0, FACE_MARGIN), (0.0, FACE_MARGIN), (25.0, FACE_MARGIN),
                                           (10.0, 0.15)])
def test_align_levels_the_eyes_and_keeps_landmarks_on_their_pixels(angle, margin):
    lm = face_landmarks(centre=(150, 120), width=120, angle_deg=angle)
    lm[30] = np.round(lm[30])
    image = Image.new("RGB", (300, 260), (200, 100, 100))
    ImageDraw.Draw(image).ellipse([tuple(lm[30] - 4), tuple(lm[30] + 4)], fill=(0, 255, 0))  # a mark on the nose
    crop, moved = align_face(image, lm, 64, margin)
    assert crop.size == (64, 64) and crop.mode == "RGB"
    assert moved[36:42, 1].mean() == pytest.approx(moved[42:48, 1].mean(), abs=1e-3)  # eyes level
    assert moved.min() >= -0.5 - 1e-3 and moved.max() <= 63.5 + 1e-3  # no point beyond the crop's edge
    assert np.ptp(moved, axis=0).max() == pytest.approx(64 / (1 + 2 * margin), rel=1e-3)  # the face fills the crop
    a = np.asarray(crop).astype(float)
    green = np.clip(a[..., 1] - a[..., 0], 0, None)  # the mark, weighted by how green each pixel is
    ys, xs = np.mgrid[0:64, 0:64]
    centroid = np.array([(xs * green).sum(), (ys * green).sum()]) / green.sum()
    assert centroid == pytest.approx(moved[30], abs=0.2)  # the mark is where the moved landmark says


def test_landmark_files_in_both_layouts(tmp_path):
    lm = face_landmarks()
    np.save(tmp_path / "a_lnd.npy", lm)  # (68, 2)
    np.save(tmp_path / "b_lnd.npy", lm.reshape(-1))  # AffectNet: (136,) x0, y0, x1, y1, ...
    assert np.allclose(read_landmarks(tmp_path / "a_lnd.npy"), lm, atol=1e-4)
    assert np.allclose(read_landmarks(tmp_path / "b_lnd.npy"), lm, atol=1e-4)
    np.save(tmp_path / "bad_lnd.npy", np.zeros((5, 2)))
    with pytest.raises(DataError, match=r"bad_lnd.npy: expected 68 landmarks"):
        read_landmarks(tmp_path / "bad_lnd.npy")
    (tmp_path / "junk_lnd.npy").write_bytes(b"nope")
    with pytest.raises(DataError, match="junk_lnd.npy: not a landmark file"):
        read_landmarks(tmp_path / "junk_lnd.npy")


def test_landmark_files_are_found_mirrored_flat_or_under_annotations(tmp_path):
    data, lmk = tmp_path / "data", tmp_path / "lmk"
    write_landmarks(lmk / "happy" / "x_lnd.npy", face_landmarks())
    write_landmarks(lmk / "y_lnd.npy", face_landmarks())
    write_landmarks(lmk / "annotations" / "z_lnd.npy", face_landmarks())
    assert find_landmark_file(data / "happy" / "x.jpg", lmk, data) == lmk / "happy" / "x_lnd.npy"
    assert find_landmark_file(data / "sad" / "y.jpg", lmk, data) == lmk / "y_lnd.npy"
    assert find_landmark_file(data / "images" / "z.jpg", lmk, data) == lmk / "annotations" / "z_lnd.npy"
    assert find_landmark_file(data / "w.jpg", lmk, data) is None


def test_dlib_finds_no_face_in_a_blank_image():
    pytest.importorskip("dlib")
    from hardsight.faces.landmarks import NoFace, detect_landmarks

    with pytest.raises(NoFace):
        detect_landmarks(Image.new("RGB", (120, 120), (200, 200, 200)))


@pytest.mark.slow
@pytest.mark.skipif(not TFEID.is_dir(), reason=f"{TFEID} is not here (the shared faces data set)")
def test_dlib_landmarks_on_a_real_face():
    pytest.importorskip("dlib")
    from hardsight.faces.landmarks import detect_landmarks

    lm = detect_landmarks(Image.open(TFEID / "images" / "0101a02.jpg"))
    assert lm.shape == (68, 2) and lm.dtype == np.float32
    assert lm[0, 0] < lm[36, 0] < lm[39, 0] < lm[42, 0] < lm[45, 0] < lm[16, 0]  # temple, eyes, temple
    assert lm[27:36, 1].min() > lm[17:27, 1].mean() and lm[8, 1] > lm[57, 1] > lm[33, 1]  # brows, nose, mouth, chin
