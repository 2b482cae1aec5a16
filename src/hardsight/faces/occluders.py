"""Occluders drawn on face pixels from 68 landmarks: VR headset, lower-face mask, eyes bar, random patch.

Each occluder is a function from landmarks to polygons, registered by name; drawing is shared, on the
image's own pixels and mode, so size and format never change.
"""

from __future__ import annotations

import difflib
import math
from dataclasses import dataclass
from typing import Callable

import numpy as np
from PIL import Image, ImageDraw

from hardsight.errors import ConfigError

# Meta Quest 2, the headset of the original study: 224 mm wide, 105 mm high
HEADSET_WIDTH_MM = 224
HEADSET_HEIGHT_MM = 105

Polygons = list[np.ndarray]  # each (K, 2) x, y in pixels


@dataclass(frozen=True)
class Occluder:
    name: str
    shapes: Callable[..., Polygons]  # (landmarks | None, (width, height), rng, area) -> polygons
    fill: tuple[int, int, int]
    needs_landmarks: bool
    help: str


_OCCLUDERS: dict[str, Occluder] = {}


def register(name: str, fill: tuple[int, int, int] = (0, 0, 0), needs_landmarks: bool = True):
    """File a shape function under `name`; its docstring is the help text."""

    def deco(fn: Callable[..., Polygons]) -> Callable[..., Polygons]:
        if name in _OCCLUDERS:
            raise ValueError(f"occluder {name!r} registered twice")
        _OCCLUDERS[name] = Occluder(name, fn, fill, needs_landmarks, (fn.__doc__ or "").strip().splitlines()[0])
        return fn

    return deco


def get_occluder(name: str) -> Occluder:
    if name not in _OCCLUDERS:
        near = difflib.get_close_matches(name, _OCCLUDERS, n=1)
        raise ConfigError(f"unknown occluder {name!r}; choose one of {list_occluders()}"
                          + (f"; did you mean {near[0]!r}?" if near else ""))
    return _OCCLUDERS[name]


def list_occluders() -> list[str]:
    return list(_OCCLUDERS)


@dataclass(frozen=True)
class RotatedBox:
    """A rectangle of `width` x `height` centred on `centre`, its width axis turned by `angle` (radians,
    image coordinates: y down, so a positive angle turns clockwise on screen)."""

    centre: tuple[float, float]
    width: float
    height: float
    angle: float

    def corners(self) -> np.ndarray:
        """(4, 2): top-left, top-right, bottom-right, bottom-left before rotation."""
        c, s = math.cos(self.angle), math.sin(self.angle)
        local = np.array([[-1, -1], [1, -1], [1, 1], [-1, 1]], dtype=np.float64) * [self.width / 2, self.height / 2]
        rot = np.array([[c, -s], [s, c]])
        return local @ rot.T + np.asarray(self.centre, dtype=np.float64)


def eye_angle(lm: np.ndarray) -> float:
    """Angle of the line from the left outer eye corner (36) to the right one (45)."""
    return math.atan2(float(lm[45, 1] - lm[36, 1]), float(lm[45, 0] - lm[36, 0]))


def vr_headset_box(lm: np.ndarray) -> RotatedBox:
    """The geometry of the original study: width |l0 - l16|, height width * 105 / 224, centred on the
    midpoint of l36 and l45, turned to the eye line."""
    lm = np.asarray(lm, dtype=np.float64)
    w = float(np.linalg.norm(lm[0] - lm[16]))
    m = (lm[36] + lm[45]) / 2
    return RotatedBox((float(m[0]), float(m[1])), w, w * HEADSET_HEIGHT_MM / HEADSET_WIDTH_MM, eye_angle(lm))


@register("vr-headset")
def vr_headset(lm: np.ndarray, size: tuple[int, int], rng: np.random.Generator, area: float) -> Polygons:
    """A VR headset (Meta Quest 2 proportions) over the eyes, temple to temple, filled black."""
    return [vr_headset_box(lm).corners()]


@register("lower-face", fill=(160, 200, 225))
def lower_face(lm: np.ndarray, size: tuple[int, int], rng: np.random.Generator, area: float) -> Polygons:
    """A surgical mask: the jaw line (points 1-15) closed over the nose bridge (point 28), light blue."""
    lm = np.asarray(lm, dtype=np.float64)
    return [np.vstack([lm[1:16], lm[28:29]])]


@register("eyes-bar")
def eyes_bar(lm: np.ndarray, size: tuple[int, int], rng: np.random.Generator, area: float) -> Polygons:
    """A black bar over both eyes: 1.4 times the outer-eye-corner distance wide, 0.4 times high."""
    lm = np.asarray(lm, dtype=np.float64)
    d = float(np.linalg.norm(lm[45] - lm[36]))
    c = lm[36:48].mean(axis=0)
    return [RotatedBox((float(c[0]), float(c[1])), 1.4 * d, 0.4 * d, eye_angle(lm)).corners()]


@register("random-patch", needs_landmarks=False)
def random_patch(lm: np.ndarray | None, size: tuple[int, int], rng: np.random.Generator, area: float) -> Polygons:
    """A black square covering `area` of the face box (of the whole image without landmarks), placed at random."""
    if lm is not None:
        lo, hi = np.asarray(lm, dtype=np.float64).min(0), np.asarray(lm, dtype=np.float64).max(0)
    else:
        lo, hi = np.zeros(2), np.asarray(size, dtype=np.float64)
    span = np.maximum(hi - lo, 1.0)
    side = min(math.sqrt(area * span[0] * span[1]), float(span.min()))
    x0, y0 = lo + rng.uniform(0, 1, 2) * (span - side)
    return [np.array([[x0, y0], [x0 + side, y0], [x0 + side, y0 + side], [x0, y0 + side]])]


def occluder_polygons(name: str, landmarks: np.ndarray | None, size: tuple[int, int], seed: int = 0,
                      area: float = 0.2) -> Polygons:
    """The polygons `name` covers on an image of `size` (width, height)."""
    occ = get_occluder(name)
    if landmarks is None and occ.needs_landmarks:
        raise ConfigError(f"the {name!r} occluder needs face landmarks")
    if not 0 < area <= 1:
        raise ConfigError(f"--area {area}: expected a fraction of the face in (0, 1]")
    return occ.shapes(landmarks, size, np.random.default_rng(seed), area)


def draw_occluder(image: Image.Image, name: str, landmarks: np.ndarray | None, seed: int = 0,
                  area: float = 0.2) -> Image.Image:
    """Draw occluder `name` on `image` in place (its size, mode and format are kept) and return it.

    Args:
        seed: chooses the position of a random patch; the other occluders ignore it.
    """
    polygons = occluder_polygons(name, landmarks, image.size, seed, area)
    fill = _fill_for(image, get_occluder(name).fill)
    draw = ImageDraw.Draw(image)
    for poly in polygons:
        draw.polygon([(float(x), float(y)) for x, y in poly], fill=fill)
    return image


def _fill_for(image: Image.Image, rgb: tuple[int, int, int]):
    """The fill colour in the image's own mode."""
    if image.mode in ("1", "L", "I", "F", "I;16"):
        return round(0.299 * rgb[0] + 0.587 * rgb[1] + 0.114 * rgb[2])
    if image.mode in ("RGBA", "LA"):
        return (*rgb, 255) if image.mode == "RGBA" else (round(sum(rgb) / 3), 255)
    if image.mode == "CMYK":
        return (255 - rgb[0], 255 - rgb[1], 255 - rgb[2], 0)
    if image.mode == "P":
        raise ConfigError("draw on palette images after converting them to RGB")
    return rgb
