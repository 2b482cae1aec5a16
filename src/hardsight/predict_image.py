"""ImagePredictor: class probabilities per image from an `image` run (what `Predictor` gives for one)."""

from __future__ import annotations

import io
import os
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Iterable

import numpy as np
import torch
from PIL import Image

from hardsight.data.image import to_cached_tensor
from hardsight.data.images import UnreadableImage, expand_paths, load_image, parallel_map, to_mode
from hardsight.runs import RunFolder


@dataclass(frozen=True)
class ImagePrediction:
    file: str
    label: str  # the most probable class
    probabilities: dict[str, float]
    labels: list[str] = field(default_factory=list)  # classes over their threshold (multi-label decision)
    top_k: list[tuple[str, float]] = field(default_factory=list)
    error: str | None = None

    def to_json(self) -> dict[str, Any]:
        d = asdict(self)
        d["top_k"] = [{"label": c, "probability": p} for c, p in self.top_k]
        if d["error"] is None:
            del d["error"]
        return d


class ImagePredictor:
    """Load an image run once; `predict(paths)` / `predict_images(images)` give ImagePrediction per image.

    Args:
        engine: "onnx" (ONNX Runtime on RUN/model.onnx), "torch" (the checkpoint), or "auto": ONNX Runtime
            when model.onnx was exported from the checkpoint in use, PyTorch otherwise.
        tta: average each image's probabilities with its horizontal mirror's (test-time augmentation); a
            model.onnx exported with `--tta` already does, and is not flipped twice (see the `tta` property).
    """

    task = "image"

    def __init__(self, run: str | Path, batch_size: int = 64, threads: int | None = None, checkpoint: str = "best",
                 engine: str = "auto", top_k: int = 3, preprocess=None, tta: bool = False):
        from hardsight.engines import load_classifier_engine

        self.run = RunFolder.open(run)
        self.config = self.run.load_config()
        labels = self.run.load_labels()
        self.classes: list[str] = labels["classes"]
        self.multi_label: bool = labels.get("multi_label", False)
        self.thresholds: dict[str, float] = dict(zip(self.classes, labels.get("thresholds") or [0.5] * len(self.classes)))
        self.size: int = labels["input"]["height"]
        from hardsight.faces.stage import face_preprocess

        # a face run crops (and finds landmarks) as it did in training
        self.preprocess = preprocess or face_preprocess(self.config, self.run.path)
        self.batch_size, self.top_k = batch_size, top_k
        self.forward = load_classifier_engine(self.run, engine, checkpoint, threads, tta)

    @property
    def engine(self) -> str:
        """The engine in use after `auto` was resolved: "onnx" or "torch"."""
        return self.forward.name

    @property
    def tta(self) -> bool:
        """Whether flip TTA is applied: asked for, or baked into the model.onnx in use (even when not asked for)."""
        from hardsight.engines import applies_tta

        return applies_tta(self.forward)

    def probabilities(self, images: list[torch.Tensor], batch_size: int | None = None) -> np.ndarray:
        """Cached uint8 tensors (3, S, S) -> (N, C) probabilities."""
        out, step = [], batch_size or self.batch_size
        for i in range(0, len(images), step):
            x = torch.stack(images[i:i + step]).float() / 255.0
            out.append(self.forward(x).float().numpy())
        return np.concatenate(out) if out else np.zeros((0, len(self.classes)))

    def predict(self, paths: Iterable[str | Path], batch_size: int | None = None) -> list[ImagePrediction]:
        """Files, folders (recursively) or globs; an unreadable file gets a result with `error` set."""
        files = expand_paths(paths)
        return self._predict([str(f) for f in files], files, lambda p: load_image(p, "RGB"), batch_size)

    def predict_images(self, images: list[Image.Image | bytes], names: list[str] | None = None,
                       batch_size: int | None = None) -> list[ImagePrediction]:
        """Decoded PIL images or encoded bytes (e.g. an upload); `names` label the results."""
        names = names or [f"image-{i}" for i in range(len(images))]
        return self._predict(names, images, lambda im: to_mode(im, "RGB") if isinstance(im, Image.Image)
                             else load_image(io.BytesIO(im), "RGB"), batch_size)

    def _predict(self, names: list[str], items: list, load, batch_size: int | None = None) -> list[ImagePrediction]:
        decoded = parallel_map(lambda item: self.prepare(item, load), items, workers=min(8, os.cpu_count() or 1),
                               progress="reading images")
        return self.predict_prepared(names, decoded, batch_size)

    def prepare(self, item, load=None) -> tuple[torch.Tensor | None, str | None]:
        """(the model's input tensor, None), or (None, why) when the image cannot be read or has no face.

        `item` is a PIL image, or what `load` turns into one (a path, bytes). This is the per-image work before the
        model: a server runs it on request threads, so the model's thread only runs the model.
        """
        try:
            im = load(item) if load else to_mode(item, "RGB")
            if self.preprocess is not None:
                im = self.preprocess(item, im)
            return to_cached_tensor(im, self.size), None
        except UnreadableImage as e:
            return None, str(e)
        except Exception as e:  # a face stage may fail per image
            return None, f"{type(e).__name__}: {e}"

    def predict_prepared(self, names: list[str], prepared: list[tuple[torch.Tensor | None, str | None]],
                         batch_size: int | None = None) -> list[ImagePrediction]:
        """Predictions for what `prepare` gave, in order; an image it could not prepare keeps its error."""
        ok = [i for i, (t, _) in enumerate(prepared) if t is not None]
        probs = self.probabilities([prepared[i][0] for i in ok], batch_size)
        results = [ImagePrediction(n, "", {}, error=err) for n, (_, err) in zip(names, prepared)]
        for i, p in zip(ok, probs):
            results[i] = self._result(names[i], p)
        return results

    def _result(self, name: str, p: np.ndarray) -> ImagePrediction:
        order = np.argsort(-p)
        probs = {c: round(float(v), 6) for c, v in zip(self.classes, p)}
        chosen = [c for c in self.classes if probs[c] >= self.thresholds[c]] if self.multi_label else [self.classes[order[0]]]
        return ImagePrediction(name, self.classes[order[0]], probs, chosen,
                               [(self.classes[j], probs[self.classes[j]]) for j in order[: self.top_k]])
