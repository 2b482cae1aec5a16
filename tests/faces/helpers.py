"""Hand-made faces for tests: a 68-point layout (iBUG order) placed at will, and drawings that follow it."""

from __future__ import annotations

import csv
import math
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw

from hardsight.faces.landmarks import write_landmarks


def _template() -> np.ndarray:
    """68 points in a face frame: eye line at y=0, |l0 - l16| = 1, x to the right, y down."""
    p = np.zeros((68, 2))
    t = np.linspace(0, math.pi, 17)
    p[0:17] = np.c_[-0.5 * np.cos(t), 0.05 + 0.75 * np.sin(t)]  # jaw, temple to temple through the chin
    p[17:22] = np.c_[np.linspace(-0.4, -0.1, 5), np.full(5, -0.15)]  # brows
    p[22:27] = np.c_[np.linspace(0.1, 0.4, 5), np.full(5, -0.15)]
    p[27:31] = np.c_[np.zeros(4), np.linspace(0.0, 0.24, 4)]  # nose bridge
    p[31:36] = np.c_[np.linspace(-0.08, 0.08, 5), np.full(5, 0.28)]
    for start, (a, b) in ((36, (-0.35, -0.12)), (42, (0.12, 0.35))):  # eyes: corner, upper, corner, lower
        xs = np.linspace(a, b, 4)
        p[start:start + 6] = [[xs[0], 0], [xs[1], -0.04], [xs[2], -0.04], [xs[3], 0], [xs[2], 0.04], [xs[1], 0.04]]
    u = np.linspace(math.pi, -math.pi, 12, endpoint=False)
    p[48:60] = np.c_[0.2 * np.cos(u), 0.5 - 0.08 * np.sin(u)]  # mouth
    v = np.linspace(math.pi, -math.pi, 8, endpoint=False)
    p[60:68] = np.c_[0.12 * np.cos(v), 0.5 - 0.03 * np.sin(v)]
    return p


TEMPLATE = _template()


def face_landmarks(centre=(50.0, 45.0), width: float = 60.0, angle_deg: float = 0.0) -> np.ndarray:
    """The template scaled to `width` (temple to temple), turned by `angle_deg`, its eye line centred at `centre`."""
    a = math.radians(angle_deg)
    rot = np.array([[math.cos(a), -math.sin(a)], [math.sin(a), math.cos(a)]])
    return (TEMPLATE * width) @ rot.T + np.asarray(centre, dtype=np.float64)


def draw_face(size: tuple[int, int], lm: np.ndarray, mouth: float = 1.0, mode: str = "RGB") -> Image.Image:
    """A skin-coloured face with dark eyes and a red mouth `mouth` times as tall as the template's."""
    im = Image.new("RGB", size, (230, 230, 235))
    d = ImageDraw.Draw(im)
    d.polygon([tuple(p) for p in np.vstack([lm[0:17], lm[26:16:-1]])], fill=(225, 180, 150))
    for eye in (lm[36:42], lm[42:48]):
        d.polygon([tuple(p) for p in eye], fill=(30, 30, 30))
    centre = lm[48:60].mean(0)
    d.polygon([tuple(p) for p in centre + (lm[48:60] - centre) * [1, mouth]], fill=(170, 40, 50))
    return im.convert(mode)


def synthetic_faces(root: Path, performers: int = 8, seed: int = 0) -> tuple[Path, Path]:
    """root/labels.csv (file,expression,performer) beside root/images/, and root/lmk/images/<stem>_lnd.npy.

    Three expressions told apart by the mouth: neutral (thin), happy (wide), surprise (tall).
    """
    rng = np.random.default_rng(seed)
    mouths = {"neutral": 0.3, "happy": 1.0, "surprise": 3.0}
    rows = []
    for p in range(performers):
        for k, (expr, mouth) in enumerate(mouths.items()):
            stem = f"p{p:02d}{expr[:3]}"
            lm = face_landmarks((48 + rng.uniform(-4, 4), 40 + rng.uniform(-4, 4)), rng.uniform(50, 62),
                                rng.uniform(-12, 12))
            (root / "images").mkdir(parents=True, exist_ok=True)
            draw_face((96, 96), lm, mouth).save(root / "images" / f"{stem}.png")
            write_landmarks(root / "lmk" / "images" / f"{stem}_lnd.npy", lm)
            rows.append({"file": f"{stem}.png", "expression": expr, "performer": f"{p:02d}"})
    with (root / "labels.csv").open("w", newline="") as f:
        w = csv.DictWriter(f, ["file", "expression", "performer"])
        w.writeheader()
        w.writerows(rows)
    return root, root / "lmk"
