"""`hardsight export RUN`: write RUN/model.onnx and prove it reads like the PyTorch checkpoint.

The graph takes images (batch, channels, height, width) in [0, 1] (the model normalises them itself).
Text readers return log-probabilities (batch, steps, classes); batch is always dynamic, width too for readers
that keep the aspect ratio (crnn), fixed for per-position readers (cnn). Image classifiers return class
probabilities (batch, classes), softmax or sigmoid inside the graph (averaged with the mirrored image when
exported with --tta). The charset or classes, input contract
and decoding settings are stored in the ONNX metadata, so model.onnx can be read without the checkpoint.
"""

from __future__ import annotations

import io
import logging
import time
import warnings
from contextlib import contextmanager, redirect_stdout
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from hardsight.data.io import UnreadableImage, load_image
from hardsight.engine.runtimes import (META_PREFIX, ClassProbabilities, OnnxEngine, TorchEngine, TextDecoder,
                               classifier_metadata, reader_metadata)
from hardsight.errors import ConfigError, HardsightError
from hardsight.engine.tta import FlipTTA
from hardsight.runs.folder import RunFolder
from hardsight.tasks import load_module, task_of
from hardsight.transforms import pad_batch, text_preprocess

TOLERANCE = 1e-4  # largest allowed |p_torch - p_onnx| over every step and class
OPSET = 18
INPUT = "images"


class ExportError(HardsightError):
    """The exported graph could not be written, or does not read like the PyTorch model."""


@dataclass(frozen=True)
class ExportResult:
    path: Path
    opset: int
    dynamic_axes: list[str]
    shapes_checked: list[tuple[int, ...]]  # input shapes compared between PyTorch and ONNX Runtime
    images_checked: int  # distinct images (for crnn the batch goes through twice, at two widths)
    sample_source: str  # where the check images came from
    max_prob_diff: float
    seconds: float
    size_mb: float
    exporter: str = "dynamo"  # "dynamo" (torch.export) or "torchscript" (the fallback)
    exporter_note: str = ""  # why the dynamo exporter (torch.export) was not used, when it was not
    metadata: dict[str, str] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        return {"path": str(self.path), "opset": self.opset, "dynamic_axes": self.dynamic_axes,
                "shapes_checked": [list(s) for s in self.shapes_checked], "images_checked": self.images_checked,
                "sample_source": self.sample_source, "max_prob_diff": self.max_prob_diff,
                "seconds": round(self.seconds, 2), "exporter": self.exporter,
                "exporter_note": self.exporter_note,
                "size_mb": round(self.size_mb, 3), "tta": self.metadata.get(META_PREFIX + "tta", "none")}


def export(run: str | Path, checkpoint: str = "best", samples: int = 32, opset: int = OPSET,
           tolerance: float = TOLERANCE, tta: bool = False) -> ExportResult:
    """Export a run's model to RUN/model.onnx, checked against PyTorch on images of the run's own split;
    `tta` (classifiers) bakes the horizontal-flip average into the graph."""
    folder = RunFolder.open(run)
    module = load_module(folder, checkpoint)
    return task_of(folder.load_config().task, folder.path).export(folder, module, checkpoint, samples, opset,
                                                                  tolerance, tta)


def export_text_run(folder: RunFolder, module, checkpoint: str, samples: int, opset: int, tolerance: float,
                    tta: bool) -> ExportResult:
    """`export` for a reader: its graph checked on images of the run's split, at two widths when it keeps aspect."""
    if tta:
        raise ConfigError(f"{folder.path} is a text reader: --tta (horizontal-flip test-time augmentation) is "
                          "for image classifiers only")
    batches, source = sample_batches(folder, module.spec, samples)
    return export_reader(module, folder.onnx, batches, reader_metadata(module, folder.checkpoint(checkpoint)),
                         source=source, opset=opset, tolerance=tolerance)


def export_image_run(folder: RunFolder, module, checkpoint: str, samples: int, opset: int, tolerance: float,
                     tta: bool) -> ExportResult:
    """`export` for a classifier: probabilities (and the flip average with `tta`) inside the graph."""
    batches, source = sample_classifier_batches(folder, int(module.hparams.image_size), samples)
    return export_classifier(module, folder.onnx, batches, classifier_metadata(module, folder.checkpoint(checkpoint), tta),
                             source=source, opset=opset, tolerance=tolerance, tta=tta)


def export_reader(module, path: Path, batches: list[torch.Tensor], metadata: dict[str, str] | None = None,
                  source: str = "given", opset: int = OPSET, tolerance: float = TOLERANCE) -> ExportResult:
    """Write `module` (a TextReader) to `path` only if it passes the parity check on `batches`.

    A graph that fails the check is kept as `<path>.rejected` for inspection and ExportError is raised.
    """
    keep_aspect = module.spec.keep_aspect
    return _export_checked(module.eval(), path, batches, metadata, "log_probs", keep_aspect,
                           lambda p: check_parity(module, p, batches, tolerance), source, opset,
                           images_checked=sum(len(b) for b in batches[:2]),
                           doc="hardsight text reader: images (B, C, H, W) in [0, 1] -> log_probs (B, T, K+1)")


def export_classifier(module, path: Path, batches: list[torch.Tensor], metadata: dict[str, str] | None = None,
                      source: str = "given", opset: int = OPSET, tolerance: float = TOLERANCE,
                      tta: bool = False) -> ExportResult:
    """Write `module` (an ImageClassifier) with its softmax/sigmoid to `path`, only if it passes the check; `tta`
    averages each image with its mirror inside the graph (pass metadata from classifier_metadata(..., tta) too)."""
    net = FlipTTA(ClassProbabilities(module)) if tta else ClassProbabilities(module)
    classes = list(module.hparams.classes)
    return _export_checked(net, path, batches, metadata, "probabilities", False,
                           lambda p: check_classifier_parity(net, p, batches, tolerance, classes), source, opset,
                           images_checked=sum(len(b) for b in batches),
                           doc="hardsight image classifier: images (B, 3, S, S) in [0, 1] -> probabilities (B, C)"
                               + (", mean over the image and its horizontal flip" if tta else ""))


def _export_checked(net, path: Path, batches: list[torch.Tensor], metadata: dict[str, str] | None, output: str,
                    dynamic_width: bool, check, source: str, opset: int, images_checked: int,
                    doc: str) -> ExportResult:
    """Write to `<path>.partial`, check it, then move it into place; a failed check leaves `<path>.rejected`."""
    start = time.perf_counter()
    partial = path.with_name(path.name + ".partial")
    exporter, note = write_graph(net, partial, batches[0], dynamic_width, opset, output)
    _add_metadata(partial, metadata or {}, doc)
    try:
        diff = check(partial)
    except ExportError:
        partial.replace(path.with_name(path.name + ".rejected"))
        raise
    partial.replace(path)
    return ExportResult(path, opset, ["batch", "width"] if dynamic_width else ["batch"],
                        [tuple(b.shape) for b in batches], images_checked, source, diff,
                        time.perf_counter() - start, path.stat().st_size / 1e6, exporter, note, metadata or {})


def check_parity(module, onnx_path: Path, batches: list[torch.Tensor],
                 tolerance: float = TOLERANCE) -> float:
    """A reader: max probability difference of PyTorch vs ONNX Runtime, and the same decoded text on every image."""
    decode = TextDecoder(module.codec.charset, module.ctc, int(module.hparams.beam_width))
    return _engines_agree(module, onnx_path, batches, tolerance, torch.exp,
                          lambda log_probs: [text for text, _ in decode(log_probs)])


def check_classifier_parity(net, onnx_path: Path, batches: list[torch.Tensor], tolerance: float = TOLERANCE,
                            classes: list[str] | None = None) -> float:
    """A classifier (ClassProbabilities, maybe in FlipTTA): max probability difference, and the same top class on
    every image."""
    classes = classes or list(net.classifier.hparams.classes)
    return _engines_agree(net, onnx_path, batches, tolerance, lambda p: p,
                          lambda p: [classes[i] for i in p.argmax(1).tolist()])


def _engines_agree(net, onnx_path: Path, batches: list[torch.Tensor], tolerance: float, to_probs,
                   answers) -> float:
    """Run both engines on every batch; ExportError on another output shape, a probability past `tolerance`, or
    another answer (`answers(output)`: text or top class per image)."""
    torch_engine, onnx_engine = TorchEngine(net), OnnxEngine(onnx_path, threads=1)
    worst = 0.0
    for x in batches:
        ref, out = torch_engine(x), onnx_engine(x)
        if ref.shape != out.shape:
            raise ExportError(f"{onnx_path}: output shape {tuple(out.shape)} for input {tuple(x.shape)}, "
                              f"PyTorch gives {tuple(ref.shape)}; the graph did not keep its dynamic axes")
        diff = float((to_probs(ref) - to_probs(out)).abs().max())
        worst = max(worst, diff)
        if diff > tolerance:
            raise ExportError(f"{onnx_path}: max probability difference {diff:.2e} vs PyTorch on input "
                              f"{tuple(x.shape)} is over the {tolerance:.0e} tolerance; the graph is not exported")
        mismatches = [(a, b) for a, b in zip(answers(ref), answers(out)) if a != b]
        if mismatches:
            raise ExportError(f"{onnx_path}: ONNX Runtime answers {mismatches[0][1]!r} where PyTorch answers "
                              f"{mismatches[0][0]!r} ({len(mismatches)} of {len(x)} images on input "
                              f"{tuple(x.shape)}); the graph is not exported")
    return worst


def sample_classifier_batches(run: RunFolder, size: int, n: int = 32, seed: int = 0) -> tuple[list[torch.Tensor], str]:
    """Check inputs for a classifier: one image alone, then up to n-1 more, from the run's split (test first);
    random images when fewer than 3 can be read."""
    from hardsight.data.image.store import to_cached_tensor

    try:
        split = run.load_split()
    except HardsightError:
        split = {}
    root = Path(split.get("root", "."))
    # image splits list each example as its files (identical images merged); the first one stands for it
    names = [entry[0] if isinstance(entry, list) else entry
             for part in ("test", "val", "train") for entry in split.get(part, [])]
    images: list[torch.Tensor] = []
    for name in names[: 2 * n]:
        if len(images) == n:
            break
        try:
            images.append(to_cached_tensor(load_image(root / name, "RGB"), size).float() / 255.0)
        except UnreadableImage:
            continue
    source = f"{len(images)} images of {run.split.name} ({root})"
    if len(images) < 3:
        gen = torch.Generator().manual_seed(seed)
        images = [torch.rand(3, size, size, generator=gen) for _ in range(max(n, 3))]
        source = f"{len(images)} random images (no readable files in {run.split})"
    return [torch.stack(images[:1]), torch.stack(images[1:])], source


def sample_batches(run: RunFolder, spec, n: int = 32, seed: int = 0) -> tuple[list[torch.Tensor], str]:
    """Check inputs as float batches: one image alone, then the rest; for variable-width readers the rest
    again, padded wider, so two widths go through the graph.

    Images come from the run's split (test, then val, then train); random images when none can be read.
    """
    mode = "L" if spec.channels == 1 else "RGB"
    try:
        split = run.load_split()
    except HardsightError:
        split = {}
    root = Path(split.get("root", "."))
    names = [f for part in ("test", "val", "train") for f in split.get(part, [])]
    images: list[torch.Tensor] = []
    for name in names[: 2 * n]:
        if len(images) == n:
            break
        try:
            images.append(text_preprocess(load_image(root / name, mode), spec).float() / 255.0)
        except UnreadableImage:
            continue
    source = f"{len(images)} images of {run.split.name} ({root})"
    if len(images) < 3:
        gen = torch.Generator().manual_seed(seed)
        width = spec.width if not spec.keep_aspect else spec.height * 4
        images = [torch.rand(spec.channels, spec.height, width, generator=gen) for _ in range(max(n, 3))]
        source = f"{len(images)} random images (no readable files in {run.split})"
    m = spec.width_multiple
    batches = [pad_batch(images[:1], m), pad_batch(images[1:], m)]
    if spec.keep_aspect:  # the same images padded wider, so two widths go through the graph
        wider = batches[1]
        batches.append(torch.nn.functional.pad(wider, (0, 4 * m), value=1.0))
    return batches, source


def write_graph(module, path: Path, example: torch.Tensor, keep_aspect: bool, opset: int,
                 output: str) -> tuple[str, str]:
    """One self-contained ONNX file (weights inside): torch.export first, the TorchScript exporter where that fails,
    and the other way round for a model with recurrent layers.

    Some releases cannot decompose layers that the TorchScript exporter still writes (torch 2.14's dynamo path
    fails on a BiGRU, "Failed to decompose the FX graph"), and torch.export unrolls an LSTM step by step (minutes
    for crnn_notebook; tests/test_export.py exports every registered reader), where the TorchScript exporter writes
    ONNX's own LSTM/GRU ops at once. The parity check afterwards is the same for both paths. Returns
    (exporter, why the first choice was not used, or "").
    """
    x = example if len(example) > 1 else example.repeat(2, 1, 1, 1)  # size-1 dims would be specialised
    exporters = {"dynamo": _export_dynamo, "torchscript": _export_torchscript}
    order, errors = list(exporters), []
    if any(isinstance(m, torch.nn.RNNBase) for m in module.modules()):
        order.reverse()
        errors.append("recurrent layers, which torch.export unrolls (minutes) or cannot decompose")
    for name in order:
        try:
            with _quiet_exporter():
                exporters[name](module, path, x, keep_aspect, opset, output)
            return name, "; ".join(errors)
        except Exception as e:  # both exporters raise many types; all mean "this path could not write the graph"
            path.unlink(missing_ok=True)
            errors.append(f"{name} ({type(e).__name__}: {_first_line(e)})")
    raise ExportError(f"{path}: torch.onnx.export failed with both exporters: {'; '.join(errors[-2:])}")


def _export_dynamo(module, path: Path, x: torch.Tensor, keep_aspect: bool, opset: int, output: str) -> None:
    from torch.export import Dim

    axes: dict[int, Any] = {0: Dim("batch", min=1, max=65536)}
    if keep_aspect:
        axes[3] = Dim.DYNAMIC
    torch.onnx.export(module, (x,), str(path), dynamo=True, external_data=False, opset_version=opset,
                      input_names=[INPUT], output_names=[output], dynamic_shapes=(axes,))


def _export_torchscript(module, path: Path, x: torch.Tensor, keep_aspect: bool, opset: int, output: str) -> None:
    axes = {0: "batch", **({3: "width"} if keep_aspect else {})}
    out_axes = {0: "batch", **({1: "steps"} if keep_aspect else {})}
    torch.onnx.export(module, (x,), str(path), dynamo=False, opset_version=opset, input_names=[INPUT],
                      output_names=[output], dynamic_axes={INPUT: axes, output: out_axes})


@contextmanager
def _quiet_exporter():
    """The exporters narrate their passes and warn about internals a user cannot act on."""
    torch_log = logging.getLogger("torch")
    level = torch_log.level
    torch_log.setLevel(logging.ERROR)
    try:
        with warnings.catch_warnings(), redirect_stdout(io.StringIO()):
            warnings.simplefilter("ignore")
            yield
    finally:
        torch_log.setLevel(level)


def _first_line(e: Exception) -> str:
    """The line that names the cause: ConversionError opens with advice and states the cause in an `Error` line."""
    lines = [line.strip() for line in str(e).splitlines() if line.strip()]
    return next((line for line in lines if "Error" in line), lines[0] if lines else "")[:300]


def _add_metadata(path: Path, metadata: dict[str, str], doc: str) -> None:
    import onnx

    model = onnx.load(str(path))
    del model.metadata_props[:]
    for key, value in metadata.items():
        model.metadata_props.add(key=key, value=value)
    model.doc_string = doc
    onnx.save(model, str(path))
