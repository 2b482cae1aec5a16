"""Occluder geometry from hand-made landmarks, and what the drawing does to pixels."""

from __future__ import annotations

import math

import numpy as np
import pytest
from PIL import Image

from hardsight.errors import ConfigError
from hardsight.faces.occluders import draw_occluder, list_occluders, occluder_polygons, vr_headset_box
from tests.faces.helpers import draw_face, face_landmarks


def _inside(box, x, y) -> np.ndarray:
    """Signed distances of points to the box edges (positive inside), along its own axes."""
    c, s = math.cos(box.angle), math.sin(box.angle)
    dx, dy = x - box.centre[0], y - box.centre[1]
    u, v = dx * c + dy * s, -dx * s + dy * c
    return np.minimum(box.width / 2 - np.abs(u), box.height / 2 - np.abs(v))


def test_vr_headset_follows_the_study_geometry():
    lm = np.zeros((68, 2))
    lm[0], lm[16], lm[36], lm[45] = (10, 50), (110, 50), (40, 45), (80, 45)
    box = vr_headset_box(lm)
    assert box.width == 100 and box.height == pytest.approx(100 * 105 / 224) and box.angle == 0
    assert box.centre == (60, 45)
    assert np.allclose(box.corners(), [[10, 45 - 105 * 100 / 448], [110, 45 - 105 * 100 / 448],
                                       [110, 45 + 105 * 100 / 448], [10, 45 + 105 * 100 / 448]])


@pytest.mark.parametrize("angle", [-25.0, 0.0, 17.0, 90.0])
def test_vr_headset_turns_with_the_eye_line(angle):
    lm = face_landmarks(centre=(100, 90), width=80, angle_deg=angle)
    box = vr_headset_box(lm)
    assert math.degrees(box.angle) == pytest.approx(angle)
    assert box.width == pytest.approx(np.linalg.norm(lm[0] - lm[16])) == pytest.approx(80)
    assert box.height / box.width == pytest.approx(105 / 224)
    assert box.centre == pytest.approx(tuple((lm[36] + lm[45]) / 2))
    corners = box.corners()  # a rectangle: equal diagonals, sides of w and h
    assert np.linalg.norm(corners[0] - corners[2]) == pytest.approx(np.linalg.norm(corners[1] - corners[3]))
    assert np.linalg.norm(corners[1] - corners[0]) == pytest.approx(box.width)
    assert np.linalg.norm(corners[3] - corners[0]) == pytest.approx(box.height)


@pytest.mark.parametrize("mode", ["RGB", "L"])
def test_drawn_headset_is_black_inside_and_leaves_every_other_pixel(mode):
    lm = face_landmarks(centre=(100, 90), width=90, angle_deg=20)
    original = draw_face((200, 180), lm, mode=mode)
    image = draw_occluder(original.copy(), "vr-headset", lm)
    assert image.size == original.size and image.mode == mode
    a, b = np.asarray(original).astype(int), np.asarray(image).astype(int)
    ys, xs = np.mgrid[0:180, 0:200]
    d = _inside(vr_headset_box(lm), xs + 0.5, ys + 0.5)
    grey = b if b.ndim == 2 else b.max(axis=2)
    assert (grey[d > 1] == 0).all()  # inside (1 px clear of the edge): black
    assert (a[d < -1] == b[d < -1]).all()  # outside: untouched
    box = vr_headset_box(lm)
    changed = (np.abs(a - b).reshape(180, 200, -1).sum(-1) > 0) | (grey == 0)
    assert changed.sum() == pytest.approx(box.width * box.height, rel=0.04)


def test_other_occluders_cover_their_part_of_the_face():
    lm = face_landmarks(centre=(100, 80), width=100)
    mouth, eye = tuple(lm[62].astype(int)), tuple(lm[36:42].mean(0).astype(int))
    base = draw_face((200, 200), lm)
    mask = draw_occluder(base.copy(), "lower-face", lm)
    assert mask.getpixel(mouth) == (160, 200, 225) and mask.getpixel(eye) == base.getpixel(eye)
    bar = draw_occluder(base.copy(), "eyes-bar", lm)
    assert bar.getpixel(eye) == (0, 0, 0) and bar.getpixel(mouth) == base.getpixel(mouth)


def test_random_patch_area_and_seed():
    lm = face_landmarks(centre=(100, 80), width=100)
    box = np.ptp(lm, axis=0)
    a = occluder_polygons("random-patch", lm, (200, 200), seed=1, area=0.2)[0]
    side = np.ptp(a, axis=0)
    assert side[0] * side[1] == pytest.approx(0.2 * box[0] * box[1])
    assert (a >= lm.min(0) - 1e-9).all() and (a <= lm.max(0) + 1e-9).all()
    assert np.allclose(a, occluder_polygons("random-patch", lm, (200, 200), seed=1, area=0.2)[0])
    assert not np.allclose(a, occluder_polygons("random-patch", lm, (200, 200), seed=2, area=0.2)[0])
    whole = occluder_polygons("random-patch", None, (200, 100), seed=0, area=0.5)[0]  # no face: the whole image
    assert np.ptp(whole, axis=0).prod() == pytest.approx(0.5 * 200 * 100)


def test_unknown_occluder_and_missing_landmarks_are_clear_errors():
    assert list_occluders() == ["vr-headset", "lower-face", "eyes-bar", "random-patch"]
    with pytest.raises(ConfigError, match="did you mean 'vr-headset'"):
        draw_occluder(Image.new("RGB", (10, 10)), "vr-headset2", None)
    with pytest.raises(ConfigError, match="needs face landmarks"):
        draw_occluder(Image.new("RGB", (10, 10)), "vr-headset", None)
