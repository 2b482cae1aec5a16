"""Predictor: load a run folder once, read images in batches, return typed results."""

from __future__ import annotations

import os
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Iterable

import torch

from hardsight.data.images import UnreadableImage, expand_paths, load_image, parallel_map
from hardsight.errors import RunError
from hardsight.runs import RunFolder
from hardsight.transforms import pad_batch, text_preprocess


@dataclass(frozen=True)
class TextPrediction:
    file: str
    text: str
    confidence: float
    error: str | None = None  # why the file could not be read; text is then empty

    def to_json(self) -> dict[str, Any]:
        d = asdict(self)
        if d["error"] is None:
            del d["error"]
        return d


def load_module(run: RunFolder, which: str = "best"):
    """The trained LightningModule of a run, on CPU, in eval mode."""
    from hardsight.tasks import TASKS

    task = run.load_config().task
    if task not in TASKS:
        raise RunError(f"{run.path}: task {task!r} is not known to this version of hardsight")
    ckpt = run.checkpoint(which)
    try:
        module = TASKS[task].load_from_checkpoint(ckpt, map_location="cpu")
    except (RuntimeError, KeyError, EOFError) as e:
        raise RunError(f"{ckpt}: cannot load checkpoint ({e})") from None
    return module.eval()


@torch.inference_mode()
def read_tensors(module, images: list[torch.Tensor], batch_size: int = 64) -> list[tuple[str, float]]:
    """Cached uint8 images (C, H, w) -> (text, confidence), batching images of similar width together."""
    order = sorted(range(len(images)), key=lambda i: images[i].shape[-1])
    out: list[tuple[str, float] | None] = [None] * len(images)
    for start in range(0, len(order), batch_size):
        idx = order[start:start + batch_size]
        x = pad_batch([images[i].float() / 255.0 for i in idx], module.spec.width_multiple)
        for i, result in zip(idx, module.decode(module(x))):
            out[i] = result
    return out  # type: ignore[return-value]


class Predictor:
    """`Predictor("runs/x").predict(paths)`: text and confidence per image, in the order given."""

    def __init__(self, run: str | Path, batch_size: int = 64, threads: int | None = None, checkpoint: str = "best"):
        self.run = RunFolder.open(run)
        self.config = self.run.load_config()
        self.batch_size = batch_size
        torch.set_num_threads(threads or os.cpu_count() or 1)
        self.module = load_module(self.run, checkpoint)

    @property
    def task(self) -> str:
        return self.config.task

    def predict(self, paths: Iterable[str | Path]) -> list[TextPrediction]:
        files = expand_paths(paths)
        spec = self.module.spec
        mode = "L" if spec.channels == 1 else "RGB"

        def decode(p: Path):
            try:
                return text_preprocess(load_image(p, mode), spec), None
            except UnreadableImage as e:
                return None, str(e)

        decoded = parallel_map(decode, files, workers=min(8, os.cpu_count() or 1), progress="reading images")
        ok = [i for i, (t, _) in enumerate(decoded) if t is not None]
        texts = read_tensors(self.module, [decoded[i][0] for i in ok], self.batch_size)
        results: list[TextPrediction] = [TextPrediction(str(f), "", 0.0, err) for f, (_, err) in zip(files, decoded)]
        for i, (text, conf) in zip(ok, texts):
            results[i] = TextPrediction(str(files[i]), text, round(float(conf), 6))
        return results
