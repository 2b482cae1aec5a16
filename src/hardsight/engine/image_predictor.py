"""ImagePredictor: class probabilities per image from an `image` run (what `Predictor` gives for one)."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import torch

from hardsight.data.image.store import to_cached_tensor
from hardsight.data.io import UnreadableImage, to_mode
from hardsight.engine.predictor import Predictor


@dataclass(frozen=True)
class ImagePrediction:
    file: str
    label: str  # the most probable class
    probabilities: dict[str, float]
    labels: list[str] = field(default_factory=list)  # classes over their threshold (multi-label decision)
    top_k: list[tuple[str, float]] = field(default_factory=list)
    error: str | None = None
    columns: ClassVar[tuple[str, ...]] = ("file", "label", "probability", "top-k")  # of `hardsight predict`'s table

    def table_row(self) -> tuple[str, ...]:
        return (self.file, self.label if not self.error else f"[red]{self.error}[/red]",
                f"{self.probabilities.get(self.label, 0):.3f}", ", ".join(f"{c} {p:.2f}" for c, p in self.top_k))

    def to_json(self) -> dict[str, Any]:
        d = asdict(self)
        d["top_k"] = [{"label": c, "probability": p} for c, p in self.top_k]
        if d["error"] is None:
            del d["error"]
        return d


class ImagePredictor(Predictor):
    """An image run's Predictor: class probabilities per image (ImagePrediction); a face run crops as in training.

    Args (beyond Predictor's):
        top_k: how many classes each result lists, most probable first.
        tta: average each image's probabilities with its horizontal mirror's (test-time augmentation); a
            model.onnx exported with `--tta` already does, and is not flipped twice (see the `tta` property).
    """

    def __init__(self, run: str | Path, batch_size: int = 64, threads: int | None = None, checkpoint: str = "best",
                 engine: str = "auto", tta: bool = False, top_k: int = 3, preprocess=None):
        from hardsight.engine.runtimes import load_classifier_engine
        from hardsight.faces.stage import face_preprocess

        super().__init__(run, batch_size, threads, checkpoint, engine, tta)
        labels = self.run.load_labels()
        self.classes: list[str] = labels["classes"]
        self.multi_label: bool = labels.get("multi_label", False)
        self.thresholds: dict[str, float] = dict(zip(self.classes, labels.get("thresholds") or [0.5] * len(self.classes)))
        # tuned for the solve rate of validation grids (`solve` prefers them); a run from before has its tile ones
        self.grid_thresholds: dict[str, float] = (dict(zip(self.classes, labels["grid_thresholds"]))
                                                  if labels.get("grid_thresholds") else dict(self.thresholds))
        self.size: int = labels["input"]["height"]
        # a face run crops (and finds landmarks) as it did in training
        self.preprocess = preprocess or face_preprocess(self.config, self.run.path)
        self.top_k = top_k
        self.forward = load_classifier_engine(self.run, engine, checkpoint, threads, tta)

    @property
    def engine(self) -> str:
        """The engine in use after `auto` was resolved: "onnx" or "torch"."""
        return self.forward.name

    @property
    def tta(self) -> bool:
        """Whether flip TTA is applied: asked for, or baked into the model.onnx in use (even when not asked for)."""
        from hardsight.engine.runtimes import applies_tta

        return applies_tta(self.forward)

    def probabilities(self, images: list[torch.Tensor], batch_size: int | None = None) -> np.ndarray:
        """Cached uint8 tensors (3, S, S) -> (N, C) probabilities."""
        out, step = [], batch_size or self.batch_size
        for i in range(0, len(images), step):
            x = torch.stack(images[i:i + step]).float() / 255.0
            out.append(self.forward(x).float().numpy())
        return np.concatenate(out) if out else np.zeros((0, len(self.classes)))

    def prepare(self, item, load=None) -> tuple[torch.Tensor | None, str | None]:
        """As Predictor.prepare; a face run also gives (None, why) for an image with no face."""
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
