"""68 facial landmarks (iBUG layout) with dlib, and AffectNet-style `<stem>_lnd.npy` files.

A landmark array is (68, 2) float32, x then y, in pixels of the image it was found on. Points used
elsewhere: 0 and 16 the outer jaw (temple to temple), 36 and 45 the outer eye corners, 36-41 and
42-47 the eyes, 27-35 the nose, 48-67 the mouth.
"""

from __future__ import annotations

import functools
import importlib.util
from pathlib import Path

import numpy as np
from PIL import Image

from hardsight.errors import ConfigError, DataError

SUFFIX = "_lnd.npy"
DETECTORS = ("hog", "cnn")
SHAPE_MODEL = "shape_predictor_68_face_landmarks.dat"
CNN_MODEL = "mmod_human_face_detector.dat"
INSTALL = "pip install dlib-bin face_recognition_models (or pip install -e '.[faces]')"


class NoFace(Exception):
    """No face was found in an image."""


def model_file(name: str) -> Path:
    """A model file of the `face_recognition_models` package (found without importing it: it needs pkg_resources)."""
    spec = importlib.util.find_spec("face_recognition_models")
    if spec is None or not spec.submodule_search_locations:
        raise ConfigError(f"face landmarks need the dlib models; {INSTALL}")
    path = Path(list(spec.submodule_search_locations)[0]) / "models" / name
    if not path.is_file():
        raise ConfigError(f"{path}: missing from face_recognition_models; reinstall it ({INSTALL})")
    return path


def _dlib():
    try:
        import dlib
    except ImportError:
        raise ConfigError(f"face landmarks need dlib; {INSTALL}") from None
    return dlib


@functools.cache
def detector_named(kind: str):
    """dlib's face detector, loaded once per process: HOG (fast, frontal) or CNN (MMOD, slower, more poses)."""
    if kind not in DETECTORS:
        raise ConfigError(f"unknown face detector {kind!r}; choose one of {list(DETECTORS)}")
    dlib = _dlib()
    if kind == "hog":
        return dlib.get_frontal_face_detector()
    return dlib.cnn_face_detection_model_v1(str(model_file(CNN_MODEL)))


@functools.cache
def _shape_predictor():
    return _dlib().shape_predictor(str(model_file(SHAPE_MODEL)))


def detect_landmarks(image: Image.Image | np.ndarray, detector: str = "hog", upsample: int = 1) -> np.ndarray:
    """Landmarks (68, 2) of the largest face; raises NoFace when there is none.

    Args:
        upsample: times dlib doubles the image before detecting (finds smaller faces, costs 4x per step).
    """
    dlib = _dlib()
    a = np.ascontiguousarray(np.asarray(image.convert("RGB") if isinstance(image, Image.Image) else image,
                                        dtype=np.uint8))
    found = detector_named(detector)(a, upsample)
    boxes = [d.rect for d in found] if detector == "cnn" else list(found)
    if not boxes:
        raise NoFace("no face found")
    box = max(boxes, key=lambda r: r.width() * r.height())
    shape = _shape_predictor()(a, dlib.rectangle(box.left(), box.top(), box.right(), box.bottom()))
    return np.array([[p.x, p.y] for p in shape.parts()], dtype=np.float32)


def landmark_name(image: Path | str) -> str:
    return f"{Path(image).stem}{SUFFIX}"


def read_landmarks(path: Path | str) -> np.ndarray:
    """An AffectNet-style file: (68, 2), or (136,) as x0, y0, x1, y1, ...; returned as (68, 2) float32."""
    try:
        a = np.load(path, allow_pickle=False)
    except (OSError, ValueError) as e:
        raise DataError(f"{path}: not a landmark file ({e})") from None
    if a.size != 136 or a.ndim > 2 or (a.ndim == 2 and a.shape != (68, 2)):
        raise DataError(f"{path}: expected 68 landmarks as (68, 2) or (136,), got shape {a.shape}")
    a = a.reshape(68, 2).astype(np.float32)
    if not np.isfinite(a).all():
        raise DataError(f"{path}: landmarks hold NaN or infinite values")
    return a


def write_landmarks(path: Path, landmarks: np.ndarray) -> None:
    """Save (68, 2) float32; written under a temporary name first, so a file that exists is complete."""
    from hardsight.jobs.files import atomic_write

    path.parent.mkdir(parents=True, exist_ok=True)
    with atomic_write(path) as tmp, tmp.open("wb") as f:  # a file object: np.save would add .npy to a name
        np.save(f, np.asarray(landmarks, dtype=np.float32).reshape(68, 2))


def find_landmark_file(image: Path, root: Path, base: Path | None = None) -> Path | None:
    """The landmark file of `image` in folder `root`: mirrored (`root/<dir relative to base>/<stem>_lnd.npy`),
    flat (`root/<stem>_lnd.npy`, as AffectNet's annotations/), or under `root/annotations/`."""
    name = landmark_name(image)
    candidates = []
    if base is not None:
        try:
            candidates.append(root / Path(image).parent.relative_to(base) / name)
        except ValueError:
            pass
    candidates += [root / name, root / "annotations" / name]
    return next((c for c in candidates if c.is_file()), None)
