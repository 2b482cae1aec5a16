"""AffectNet as it comes: ROOT/images/<n>.jpg, its expression in ROOT/annotations/<n>_exp.npy.

Beside each label AffectNet ships `<n>_lnd.npy` (68 landmarks, read by the face stage through `landmark_file`)
and `<n>_val.npy` / `<n>_aro.npy` (valence and arousal, not used). A label file holds the class index 0..7 as a
number or as digits; one that cannot be read, or holds another value, leaves its image out, reported.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from hardsight.data.io import list_images, parallel_map
from hardsight.data.text.labels import Skipped
from hardsight.errors import DataError
from hardsight.faces.landmarks import landmark_name

CLASSES = ("neutral", "happy", "sad", "surprise", "fear", "disgust", "anger", "contempt")  # by AffectNet's index
EXPRESSION = "_exp.npy"
IMAGES, ANNOTATIONS = "images", "annotations"
LAYOUT = f"{ANNOTATIONS}/*{EXPRESSION}"  # how errors name the layout


def is_affectnet(folder: Path) -> bool:
    """An AffectNet folder: images/ beside annotations/ holding `*_exp.npy` (one file found is enough)."""
    annotations = Path(folder) / ANNOTATIONS
    if not (Path(folder) / IMAGES).is_dir() or not annotations.is_dir():
        return False
    with os.scandir(annotations) as entries:  # stops at the first label: annotations/ may hold a million files
        return any(e.name.endswith(EXPRESSION) for e in entries)


def read_expression(path: Path) -> str:
    """The class an `_exp.npy` names; DataError naming the file when it is unreadable or out of 0..7."""
    try:
        a = np.load(path, allow_pickle=False)
    except (OSError, ValueError, EOFError) as e:
        raise DataError(f"{path}: not a readable .npy file ({e})") from None
    if a.size != 1:
        raise DataError(f"{path}: expected one class index, got shape {a.shape}")
    value = a.reshape(-1)[0].item()
    if isinstance(value, bytes):
        value = value.decode("ascii", "replace")
    index = None
    if isinstance(value, str) and value.strip().isascii() and value.strip().isdigit():
        index = int(value.strip())
    elif isinstance(value, int) and not isinstance(value, bool):
        index = value
    elif isinstance(value, float) and value.is_integer():
        index = int(value)
    if index is None or not 0 <= index < len(CLASSES):
        raise DataError(f"{path}: class index {value!r} is not one of 0..{len(CLASSES) - 1} ({', '.join(CLASSES)})")
    return CLASSES[index]


def read_affectnet(root: Path, skipped: Skipped, workers: int = 8) -> list[tuple[Path, list[str], None]]:
    """(image, [class], None) for each image of root/images with a good label; the others go to `skipped`."""
    annotations = Path(root) / ANNOTATIONS
    with os.scandir(annotations) as entries:  # one listing instead of a stat per image
        labelled = {e.name for e in entries if e.name.endswith(EXPRESSION)}
    images = list_images(Path(root) / IMAGES)
    if not images:
        raise DataError(f"{root / IMAGES}: holds no images")

    def read(image: Path) -> tuple[Path, str | None, str | None]:
        name = f"{image.stem}{EXPRESSION}"
        if name not in labelled:
            return image, None, f"no label file {annotations / name}"
        try:
            return image, read_expression(annotations / name), None
        except DataError as e:
            return image, None, str(e)

    rows = []
    for image, label, why in parallel_map(read, images, workers, progress="reading AffectNet labels"):
        if label is None:
            skipped.bad_label.append((str(image), why))
        else:
            rows.append((image, [label], None))
    return rows


def landmark_file(image: Path) -> Path | None:
    """An AffectNet image's own landmarks (ROOT/annotations/<n>_lnd.npy for ROOT/images/<n>.jpg), if it has them."""
    image = Path(image)
    if image.parent.name != IMAGES:
        return None
    f = image.parent.parent / ANNOTATIONS / landmark_name(image)
    return f if f.is_file() else None
