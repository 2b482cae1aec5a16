"""Predictor: load a run folder once, read images in batches, return typed results."""

from __future__ import annotations

import io
import os
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Callable, ClassVar, Iterable

import torch
from PIL import Image

from hardsight.data.io import UnreadableImage, expand_paths, load_image, parallel_map, to_mode
from hardsight.errors import ConfigError
from hardsight.runs.folder import RunFolder
from hardsight.tasks import task_of
from hardsight.transforms import pad_batch, text_preprocess


@dataclass(frozen=True)
class TextPrediction:
    file: str
    text: str
    confidence: float
    error: str | None = None  # why the file could not be read; text is then empty
    columns: ClassVar[tuple[str, ...]] = ("file", "text", "confidence")  # of `hardsight predict`'s table

    def table_row(self) -> tuple[str, ...]:
        return self.file, self.text if not self.error else f"[red]{self.error}[/red]", f"{self.confidence:.3f}"

    def to_json(self) -> dict[str, Any]:
        d = asdict(self)
        if d["error"] is None:
            del d["error"]
        return d


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
    """`Predictor("runs/x").predict(paths)`: one result per image, in the order given, for a run of any task.

    `Predictor(run)` builds the subclass of the run's task (TASKS): a TextPredictor (text and confidence) or an
    ImagePredictor (class probabilities). Subclasses say how one image is prepared and how a batch is read.

    Args:
        engine: "onnx" (ONNX Runtime on RUN/model.onnx), "torch" (the checkpoint), or "auto": ONNX Runtime
            when model.onnx was exported from the checkpoint in use, PyTorch otherwise.
        threads: CPU threads for the model (default: all cores); images are decoded on a thread pool.
        checkpoint: best, last, epoch-N or a .ckpt path (RunFolder.checkpoint).
        tta: flip test-time augmentation, for image runs only; a reader refuses it.
    """

    mode = "RGB"  # the PIL mode images are decoded to

    def __new__(cls, run: str | Path, *args, **kwargs):
        if cls is Predictor:
            folder = RunFolder.open(run)
            cls = task_of(folder.load_config().task, folder.path).predictor()
        return super().__new__(cls)

    def __init__(self, run: str | Path, batch_size: int = 64, threads: int | None = None, checkpoint: str = "best",
                 engine: str = "auto", tta: bool = False):
        self.run = RunFolder.open(run)
        self.config = self.run.load_config()
        self.batch_size = batch_size
        self.checkpoint = checkpoint

    @property
    def engine(self) -> str:
        """The engine in use after `auto` was resolved: "onnx" or "torch"."""
        raise NotImplementedError

    @property
    def weights(self) -> Path:
        """The file the model was read from: RUN/model.onnx (exported from the checkpoint asked for, unless
        --engine onnx forced an older one), or that checkpoint."""
        return self.run.onnx if self.engine == "onnx" else self.run.checkpoint(self.checkpoint)

    @property
    def task(self) -> str:
        return self.config.task

    def predict(self, paths: Iterable[str | Path], batch_size: int | None = None) -> list:
        """Files, folders (recursively) or globs; an unreadable file gets a result with `error` set."""
        files = expand_paths(paths)
        return self._predict([str(f) for f in files], files, lambda p: load_image(p, self.mode), batch_size)

    def predict_images(self, images: list[Image.Image | bytes], names: list[str] | None = None,
                       batch_size: int | None = None) -> list:
        """Decoded PIL images or encoded bytes (e.g. an upload); `names` label the results."""
        names = names or [f"image-{i}" for i in range(len(images))]
        return self._predict(names, images, lambda im: to_mode(im, self.mode) if isinstance(im, Image.Image)
                             else load_image(io.BytesIO(im), self.mode), batch_size)

    def _predict(self, names: list[str], items: list, load: Callable, batch_size: int | None = None) -> list:
        prepared = parallel_map(lambda item: self.prepare(item, load), items, workers=min(8, os.cpu_count() or 1),
                                progress="reading images")
        return self.predict_prepared(names, prepared, batch_size)

    def prepare(self, item, load: Callable | None = None) -> tuple[torch.Tensor | None, str | None]:
        """(the model's input tensor, None), or (None, why) when the image cannot be read.

        `item` is a PIL image, or what `load` turns into one (a path, bytes). This is the per-image work before the
        model: a server runs it on request threads, so the model's thread only runs the model.
        """
        raise NotImplementedError

    def predict_prepared(self, names: list[str], prepared: list[tuple[torch.Tensor | None, str | None]],
                         batch_size: int | None = None) -> list:
        """Results for what `prepare` gave, in order; an image it could not prepare keeps its error."""
        raise NotImplementedError


class TextPredictor(Predictor):
    """A text run's Predictor: text and confidence per image (TextPrediction)."""

    def __init__(self, run: str | Path, batch_size: int = 64, threads: int | None = None, checkpoint: str = "best",
                 engine: str = "auto", tta: bool = False):
        from hardsight.engine.runtimes import load_runtime

        if tta:  # a mirrored word is another word: flipping does not help a reader
            raise ConfigError(f"{run}: --tta (horizontal-flip test-time augmentation) is for image classifiers; "
                              "this run is a text reader")
        super().__init__(run, batch_size, threads, checkpoint, engine, tta)
        self.reader = load_runtime(self.run, engine, checkpoint, threads)
        self.mode = "L" if self.reader.spec.channels == 1 else "RGB"

    @property
    def engine(self) -> str:
        return self.reader.engine.name

    def prepare(self, item, load: Callable | None = None) -> tuple[torch.Tensor | None, str | None]:
        try:
            return text_preprocess(load(item) if load else to_mode(item, self.mode), self.reader.spec), None
        except UnreadableImage as e:
            return None, str(e)

    def predict_prepared(self, names: list[str], prepared: list[tuple[torch.Tensor | None, str | None]],
                         batch_size: int | None = None) -> list[TextPrediction]:
        ok = [i for i, (t, _) in enumerate(prepared) if t is not None]
        read = self.read_prepared([prepared[i][0] for i in ok], [names[i] for i in ok], batch_size)
        results = [TextPrediction(name, "", 0.0, err) for name, (_, err) in zip(names, prepared)]
        for i, prediction in zip(ok, read):
            results[i] = prediction
        return results

    def preprocess(self, image: Image.Image) -> torch.Tensor:
        """A decoded image -> the uint8 tensor (C, H, w) the reader takes; `read_prepared` batches these."""
        return text_preprocess(to_mode(image, self.mode), self.reader.spec)

    def read_prepared(self, tensors: list[torch.Tensor], names: list[str],
                      batch_size: int | None = None) -> list[TextPrediction]:
        """Read images already preprocessed (e.g. on a server's request threads), one result per name."""
        texts = read_tensors(self.reader, tensors, batch_size or self.batch_size)
        return [TextPrediction(name, text, round(float(conf), 6)) for name, (text, conf) in zip(names, texts)]
