"""The face stage of the image task: landmarks (given, cached or detected), then an aligned crop.

`FaceStage` is a `preprocess(path, image) -> image` for `hardsight.train` and `ImagePredictor`; the crop
carries its landmarks (in its own pixels) in `crop.info["landmarks"]`, so an occluder can be drawn on
the cached crop later (online occlusion during training, the occlusion study).
"""

from __future__ import annotations

import hashlib
import threading
from pathlib import Path

import numpy as np
import torch
from PIL import Image
from torchvision.transforms.v2 import functional as TF

from hardsight.config import FACE_MARGIN
from hardsight.data.image.affectnet import landmark_file as affectnet_landmarks
from hardsight.errors import ConfigError, DataError
from hardsight.faces.align import align_face
from hardsight.faces.landmarks import DETECTORS, NoFace, detect_landmarks, find_landmark_file, read_landmarks, write_landmarks
from hardsight.faces.occluders import draw_occluder

RUN_LANDMARKS = "landmarks"  # a face run keeps the landmarks it trained with here, keyed by picture content


class FaceStage:
    """Find 68 landmarks for each image and crop it square around the face, eyes level, `size` pixels.

    Args:
        landmarks: a folder of `<stem>_lnd.npy` files (from `hardsight landmarks`, or AffectNet's annotations/),
            looked up mirrored below `base` or flat. An AffectNet image without one there is read with its own
            (ROOT/annotations/ beside ROOT/images/, DATA's or a --test-dir's alike); the others are detected.
        cache: a folder of landmarks keyed by picture content; read first, and written to when `write_cache`.
        margin: crop beyond the landmarks' box, as a fraction of its longer side on each side.
    """

    def __init__(self, size: int, landmarks: str | Path | None = None, base: Path | None = None,
                 cache: Path | None = None, detector: str = "hog", write_cache: bool = False, margin: float = FACE_MARGIN):
        if detector not in DETECTORS:
            raise ConfigError(f"unknown face detector {detector!r}; choose one of {list(DETECTORS)}")
        self.size, self.detector, self.base, self.margin = size, detector, base, margin
        self.landmarks = Path(landmarks) if landmarks else None
        if self.landmarks is not None and not self.landmarks.is_dir():
            raise DataError(f"{self.landmarks}: no such landmarks folder (make one with `hardsight landmarks`)")
        self.cache, self.write_cache = cache, write_cache
        self.known: dict[str, np.ndarray] = {}  # content key -> landmarks in the original's pixels
        self._lock = threading.Lock()  # dlib models are shared by the loader's threads

    @classmethod
    def for_config(cls, cfg, cache: Path | None = None, write_cache: bool = False) -> FaceStage:
        """The stage a TrainConfig with `faces` describes."""
        data = Path(cfg.data)
        return cls(cfg.image_size, cfg.landmarks, data if data.is_dir() else data.parent, cache,
                   cfg.face_detector, write_cache, cfg.face_margin)

    def cache_key(self) -> str:
        """What this stage does to a picture, for the key of a disk cache of its crops (data/image/store.py)."""
        return f"face:{self.size}:{self.margin}:{self.detector}:{self.landmarks}"

    def __call__(self, path, image: Image.Image) -> Image.Image:
        crop, lm = align_face(image, self.find(path, image), self.size, self.margin)
        crop.info["landmarks"] = lm
        return crop

    def find(self, path, image: Image.Image) -> np.ndarray:
        """Landmarks of `image` in its own pixels: from the landmarks folder, the cache, or dlib."""
        key = _key(image)
        if isinstance(path, (str, Path)):
            f = find_landmark_file(Path(path), self.landmarks, self.base) if self.landmarks is not None else None
            f = f or affectnet_landmarks(Path(path))
            if f is not None:
                return self._remember(key, read_landmarks(f))
        if key in self.known:
            return self.known[key]
        cached = self.cache / f"{key}.npy" if self.cache else None
        if cached is not None and cached.is_file():
            return self._remember(key, read_landmarks(cached))
        try:
            with self._lock:
                lm = detect_landmarks(image, self.detector)
        except NoFace:
            raise DataError(f"{path}: no face found by the {self.detector} detector; try --face-detector cnn, "
                            "or give its landmarks with --landmarks") from None
        if cached is not None and self.write_cache:
            write_landmarks(cached, lm)
        return self._remember(key, lm)

    def _remember(self, key: str, lm: np.ndarray) -> np.ndarray:
        self.known[key] = lm
        return lm

    def save_cache(self, folder: Path) -> None:
        """Write every landmark array seen so far into `folder`, keyed by picture content."""
        for key, lm in list(self.known.items()):
            if not (folder / f"{key}.npy").is_file():
                write_landmarks(folder / f"{key}.npy", lm)


def face_preprocess(cfg, run: Path | None = None) -> FaceStage | None:
    """The face stage a TrainConfig with `faces` asks for, else None.

    Args:
        run: a face run folder; the landmarks it trained with are read from there before any detection.
    """
    if not getattr(cfg, "faces", False):
        return None
    return FaceStage.for_config(cfg, cache=run / RUN_LANDMARKS if run else None)


def _key(image: Image.Image) -> str:
    """Same pixels, same key, whatever the file is called."""
    return hashlib.sha1(image.tobytes() + f"{image.mode}{image.size}".encode()).hexdigest()[:24]


def occlude_tensor(image: torch.Tensor, occluder: str, landmarks: np.ndarray | None, seed: int = 0,
                   area: float = 0.2) -> torch.Tensor:
    """A copy of a cached uint8 (3, S, S) image with the occluder drawn from landmarks in its pixels."""
    im = TF.to_pil_image(image)
    return TF.pil_to_tensor(draw_occluder(im, occluder, landmarks, seed, area))
