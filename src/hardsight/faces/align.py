"""Face crop and alignment from 68 landmarks: eyes level, a square around the face, a fixed size."""

from __future__ import annotations

import math

import numpy as np
from PIL import Image

from hardsight.config import FACE_MARGIN


def alignment(landmarks: np.ndarray, size: int, margin: float = FACE_MARGIN) -> np.ndarray:
    """The 2x3 similarity (rotation, scale, shift) taking image points to the aligned crop of `size`.

    Points are continuous coordinates (a pixel's centre is at index + 0.5).
    """
    lm = np.asarray(landmarks, dtype=np.float64)
    left, right = lm[36:42].mean(0), lm[42:48].mean(0)
    angle = math.atan2(right[1] - left[1], right[0] - left[0])
    c, s = math.cos(-angle), math.sin(-angle)
    level = np.array([[c, -s], [s, c]])  # turns the eye line horizontal
    turned = lm @ level.T
    lo, hi = turned.min(0), turned.max(0)
    side = float((hi - lo).max()) * (1 + 2 * margin)
    scale = size / max(side, 1e-6)
    shift = np.array([size / 2, size / 2]) - scale * (lo + hi) / 2
    return np.hstack([scale * level, shift[:, None]])


def apply(matrix: np.ndarray, points: np.ndarray) -> np.ndarray:
    return np.asarray(points, dtype=np.float64) @ matrix[:, :2].T + matrix[:, 2]


def align_face(image: Image.Image, landmarks: np.ndarray, size: int,
               margin: float = FACE_MARGIN) -> tuple[Image.Image, np.ndarray]:
    """(RGB crop of size x size with the eyes level, the landmarks in the crop's pixel coordinates)."""
    lm = np.asarray(landmarks, dtype=np.float64) + 0.5  # pixel indices -> continuous coordinates
    image = image.convert("RGB")
    m = alignment(lm, size, margin)
    factor = int(1 / max(np.linalg.norm(m[:, 0]), 1e-6))
    if factor >= 2:  # shrink with a box filter first: one bicubic step from far larger images aliases
        image = image.reduce(factor)
        m = np.hstack([m[:, :2] * factor, m[:, 2:]])
    a = np.vstack([m, [0, 0, 1]])
    inv = np.linalg.inv(a)[:2]  # PIL maps output pixels back to input ones
    crop = image.transform((size, size), Image.AFFINE, tuple(inv.ravel()), resample=Image.BICUBIC)
    return crop, (apply(alignment(lm, size, margin), lm) - 0.5).astype(np.float32)
