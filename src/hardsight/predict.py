"""Predictor: load a run folder once, read images in batches, return typed results."""

from __future__ import annotations

import io
import os
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Callable, Iterable

import torch
from PIL import Image

from hardsight.data.images import UnreadableImage, expand_paths, load_image, parallel_map, to_mode
from hardsight.errors import ConfigError, RunError
from hardsight.runs import RunFolder, refusing_pickled_code
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
    with refusing_pickled_code(ckpt):
        try:  # a run folder is user input: weights_only, whatever torch's default or TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD
            module = TASKS[task].load_from_checkpoint(ckpt, map_location="cpu", weights_only=True)
        except (RuntimeError, KeyError, EOFError) as e:
            raise RunError(f"{ckpt}: cannot load checkpoint ({e})") from None
    return module.eval()


@torch.inference_mode()
def read_tensors(module, images: list[torch.Tensor], batch_size: int = 64) -> list[tuple[str, float]]:
    """Cached uint8 images (C, H, w) -> (text, confidence), batching images of similar width together.

    `module` is a TextReader or a TextRuntime (engines.py): anything with `spec`, a forward and `decode`.
    """
    order = sorted(range(len(images)), key=lambda i: images[i].shape[-1])
    out: list[tuple[str, float] | None] = [None] * len(images)
    for start in range(0, len(order), batch_size):
        idx = order[start:start + batch_size]
        x = pad_batch([images[i].float() / 255.0 for i in idx], module.spec.width_multiple)
        for i, result in zip(idx, module.decode(module(x))):
            out[i] = result
    return out  # type: ignore[return-value]


class Predictor:
    """`Predictor("runs/x").predict(paths)`: text and confidence per image, in the order given.

    Args:
        engine: "onnx" (ONNX Runtime on RUN/model.onnx), "torch" (the checkpoint), or "auto": ONNX Runtime
            when model.onnx was exported from the checkpoint in use, PyTorch otherwise.
        threads: CPU threads for the model (default: all cores); images are decoded on a thread pool.
        tta: flip test-time augmentation, for image runs only (ImagePredictor); a reader refuses it.
    """

    def __new__(cls, run: str | Path, *args, **kwargs):
        """One entry point for every task: an `image` run gets an ImagePredictor (predict_image.py)."""
        if cls is Predictor and RunFolder.open(run).load_config().task == "image":
            from hardsight.predict_image import ImagePredictor

            return ImagePredictor(run, *args, **kwargs)
        return super().__new__(cls)

    def __init__(self, run: str | Path, batch_size: int = 64, threads: int | None = None, checkpoint: str = "best",
                 engine: str = "auto", tta: bool = False):
        from hardsight.engines import load_runtime

        if tta:  # a mirrored word is another word: flipping does not help a reader
            raise ConfigError(f"{run}: --tta (horizontal-flip test-time augmentation) is for image classifiers; "
                              "this run is a text reader")
        self.run = RunFolder.open(run)
        self.config = self.run.load_config()
        self.batch_size = batch_size
        self.reader = load_runtime(self.run, engine, checkpoint, threads)

    @property
    def engine(self) -> str:
        """The engine in use after `auto` was resolved: "onnx" or "torch"."""
        return self.reader.engine.name

    @property
    def task(self) -> str:
        return self.config.task

    def predict(self, paths: Iterable[str | Path], batch_size: int | None = None) -> list[TextPrediction]:
        """Files, folders (recursively) or globs; an unreadable file gets a result with `error` set."""
        files = expand_paths(paths)
        return self._predict([str(f) for f in files], files, load_image, batch_size)

    def predict_images(self, images: list[Image.Image | bytes], names: list[str] | None = None,
                       batch_size: int | None = None) -> list[TextPrediction]:
        """Decoded PIL images or encoded bytes (e.g. an upload); `names` label the results."""
        names = names or [f"image-{i}" for i in range(len(images))]
        return self._predict(names, images, lambda im, mode: to_mode(im, mode) if isinstance(im, Image.Image)
                             else load_image(io.BytesIO(im), mode), batch_size)

    def _predict(self, names: list[str], items: list, load: Callable,
                 batch_size: int | None = None) -> list[TextPrediction]:
        spec = self.reader.spec
        mode = "L" if spec.channels == 1 else "RGB"

        def decode(item):
            try:
                return text_preprocess(load(item, mode), spec), None
            except UnreadableImage as e:
                return None, str(e)

        decoded = parallel_map(decode, items, workers=min(8, os.cpu_count() or 1), progress="reading images")
        ok = [i for i, (t, _) in enumerate(decoded) if t is not None]
        read = self.read_prepared([decoded[i][0] for i in ok], [names[i] for i in ok], batch_size)
        results = [TextPrediction(name, "", 0.0, err) for name, (_, err) in zip(names, decoded)]
        for i, prediction in zip(ok, read):
            results[i] = prediction
        return results

    def preprocess(self, image: Image.Image) -> torch.Tensor:
        """A decoded image -> the uint8 tensor (C, H, w) the reader takes; `read_prepared` batches these."""
        spec = self.reader.spec
        return text_preprocess(to_mode(image, "L" if spec.channels == 1 else "RGB"), spec)

    def read_prepared(self, tensors: list[torch.Tensor], names: list[str],
                      batch_size: int | None = None) -> list[TextPrediction]:
        """Read images already preprocessed (e.g. on a server's request threads), one result per name."""
        texts = read_tensors(self.reader, tensors, batch_size or self.batch_size)
        return [TextPrediction(name, text, round(float(conf), 6)) for name, (text, conf) in zip(names, texts)]
