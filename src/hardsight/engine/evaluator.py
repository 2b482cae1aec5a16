"""Scoring a run: test-split report at the end of training, and `evaluate RUN DATA` on any labelled set."""

from __future__ import annotations

import csv
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Sequence

import numpy as np
import torch

from hardsight.engine import plots
from hardsight.data.text.labels import Skipped, filter_charset, read_text_labels
from hardsight.data.text.prepare import TextData, labelling_of
from hardsight.data.text.datamodule import TextSample, load_samples
from hardsight.engine.metrics import ClassificationMetrics, TextMetrics, text_metrics
from hardsight.engine.predictor import Predictor, read_tensors
from hardsight.errors import RunError
from hardsight.runs.folder import RunFolder
from hardsight.tasks import load_module, task_of


@dataclass(frozen=True)
class TextEvaluation:
    metrics: TextMetrics
    files: list[str]
    references: list[str]
    predictions: list[str]
    confidences: list[float]
    skipped: Skipped
    figure: Path | None
    weights: Path | None = None  # the checkpoint (or model.onnx) that was scored

    def to_json(self) -> dict[str, Any]:
        return {**self.metrics.to_json(), "skipped": self.skipped.total,
                "figure": str(self.figure) if self.figure else None,
                "weights": str(self.weights) if self.weights else None}


def evaluate(run: str | Path, data: str | Path, batch_size: int = 64, engine: str = "auto",
             threads: int | None = None, tta: bool = False,
             checkpoint: str = "best") -> TextEvaluation | ImageEvaluation:
    """Score a run on a labelled folder or CSV, read with the labelling settings saved in the run.

    Args:
        engine: "onnx", "torch" or "auto" (ONNX Runtime when RUN/model.onnx is current), as in Predictor.
        tta: horizontal-flip test-time augmentation (image runs; a reader refuses it).
        checkpoint: best, last, epoch-N or a .ckpt path (RunFolder.checkpoint).
    """
    return _evaluate_checkpoints(run, data, [checkpoint], batch_size, engine, threads, tta)[0]


def _evaluate_checkpoints(run: str | Path, data: str | Path, checkpoints: Sequence[str], batch_size: int,
                          engine: str, threads: int | None, tta: bool) -> list:
    folder = RunFolder.open(run)
    return task_of(folder.load_config().task, folder.path).evaluate(run, data, batch_size, engine, threads, tta,
                                                                    checkpoints)


SELECTION_WARNING = ("test-set selection analysis: choosing an epoch by these numbers leaks test information; "
                     "report the best-validation checkpoint")


@dataclass(frozen=True)
class EpochScores:
    """`evaluate --every-epoch`: each checkpoint --save-every-epoch kept, scored on one labelled set."""

    rows: list[dict[str, float]]  # {"epoch": N, then each metric's `scores()`}, in epoch order
    table: Path  # every_epoch.csv
    figure: Path


def evaluate_every_epoch(run: str | Path, data: str | Path, batch_size: int = 64, threads: int | None = None,
                         tta: bool = False) -> EpochScores:
    """How the score on `data` moved epoch by epoch (PyTorch on each epoch-NNN.ckpt; the images are read once).

    A picture of training, not a way to choose the model: picking an epoch by its test score tunes on the test
    set (SELECTION_WARNING)."""
    folder = RunFolder.open(run)
    epochs = [epoch for epoch, _ in folder.epoch_checkpoints()]
    if not epochs:
        raise RunError(f"{folder.path}: no per-epoch checkpoints (checkpoints/epoch-NNN.ckpt); "
                       "train with --save-every-epoch to keep one per epoch")
    evaluations = _evaluate_checkpoints(folder.path, data, [f"epoch-{e}" for e in epochs], batch_size, "torch",
                                        threads, tta)
    rows = [{"epoch": e, **{k: round(v, 6) for k, v in ev.metrics.scores().items()}}
            for e, ev in zip(epochs, evaluations)]
    out = evaluation_folder(folder, Path(data))
    out.mkdir(parents=True, exist_ok=True)
    table = out / "every_epoch.csv"
    with table.open("w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    figure = plots.scores_per_epoch(rows, out / "every_epoch.png", f"{Path(data).name} per epoch (test-set "
                                                                   "selection analysis)")
    return EpochScores(rows, table, figure)


def evaluation_folder(run: RunFolder, data: Path, checkpoint: str = "best") -> Path:
    """RUN/evaluations/<data>/, and a subfolder per checkpoint other than best: scoring another checkpoint never
    overwrites the best one's figures."""
    folder = run.path / "evaluations" / _safe_name(data)
    return folder if checkpoint == "best" else folder / _file_name(run.checkpoint(checkpoint).stem)


def evaluate_text(run: str | Path, data: str | Path, batch_size: int = 64, engine: str = "auto",
                  threads: int | None = None, tta: bool = False,
                  checkpoints: Sequence[str] = ("best",)) -> list[TextEvaluation]:
    """`evaluate` for a text run, once per checkpoint on images read once: exact match, character accuracy and CER,
    and a figure of sample reads."""
    evaluations: list[TextEvaluation] = []
    samples = skipped = None
    for checkpoint in checkpoints:
        predictor = Predictor(run, batch_size=batch_size, engine=engine, threads=threads, tta=tta,
                              checkpoint=checkpoint)
        if samples is None:
            cfg, labels = predictor.config, predictor.run.load_labels()
            files, skipped = read_text_labels(Path(data), labelling_of(cfg))
            files = filter_charset(files, labels["charset"], skipped)
            samples, sk = load_samples(files, predictor.reader.spec, workers=8, progress="reading images")
            skipped.merge(sk)
        folder = evaluation_folder(predictor.run, Path(data), checkpoint)
        ev = _score(predictor.reader, samples, skipped, folder / "samples.png", batch_size, predictor.weights)
        write_evaluation_report(folder, predictor.run, Path(data), ev, text_metric_rows(ev.metrics))
        evaluations.append(ev)
    return evaluations


def write_evaluation_report(folder: Path, run: RunFolder, data: Path, ev, rows: list[str]) -> None:
    """EVALUATION/report.md: the numbers and the figure of one evaluation, as the run's report.md holds its test
    split's (`hardsight report` renders either)."""
    lines = [f"# {run.path.name} on `{data}`", "",
             f"Weights `{ev.weights.name if ev.weights else 'best'}`; {ev.skipped.total} files skipped.", "",
             *rows, ""]
    if ev.figure:
        lines += [f"![{ev.figure.stem}]({ev.figure.name})", ""]
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "report.md").write_text("\n".join(lines))


def text_metric_rows(m: TextMetrics) -> list[str]:
    """The metrics table of a reader's report."""
    return ["| metric | value |", "|---|---|", f"| images | {m.n} |", f"| exact match | {m.exact_match:.2%} |",
            f"| character accuracy (per position) | {m.char_accuracy:.2%} |",
            f"| character error rate | {m.cer:.2%} |"]


def image_metric_rows(m: ClassificationMetrics) -> list[str]:
    """The metrics table of a classifier's report."""
    rows = ["| metric | value |", "|---|---|", f"| images | {m.n} |", f"| accuracy | {m.accuracy:.2%} |",
            f"| balanced accuracy | {m.balanced_accuracy:.2%} |", f"| macro-F1 | {m.macro_f1:.3f} |"]
    rows += [f"| {k} accuracy | {v:.2%} |" for k, v in m.top_k.items()]
    if m.mean_average_precision is not None:
        rows += [f"| mAP | {m.mean_average_precision:.3f} |"]
    return rows


def _score(module, samples: list[TextSample], skipped: Skipped, figure: Path, batch_size: int = 64,
           weights: Path | None = None) -> TextEvaluation:
    read = read_tensors(module, [s.image for s in samples], batch_size)
    preds = [t for t, _ in read]
    refs = [s.label for s in samples]
    metrics = text_metrics(preds, refs)
    fig = sample_figure(samples, preds, figure) if samples else None
    return TextEvaluation(metrics, [str(s.path) for s in samples], refs, preds, [c for _, c in read], skipped, fig,
                          weights)


def sample_figure(samples: list[TextSample], predictions: list[str], out: Path, n: int = 16) -> Path:
    """Wrong predictions first (red), then right ones (green), captioned 'predicted (true)'."""
    wrong = [i for i, (s, p) in enumerate(zip(samples, predictions)) if s.label != p]
    right = [i for i, (s, p) in enumerate(zip(samples, predictions)) if s.label == p]
    chosen = wrong[: n // 2] + right[: n - min(len(wrong), n // 2)]
    images = [_to_numpy(samples[i].image) for i in chosen]
    titles = [f"{predictions[i]}  ({samples[i].label})" if i in wrong else predictions[i] for i in chosen]
    colors = ["#c00000" if i in wrong else "#007000" for i in chosen]
    return plots.image_grid(images, titles, out, colors, title=f"{len(wrong)} wrong of {len(samples)}")


def _to_numpy(image: torch.Tensor) -> np.ndarray:
    a = image.numpy()
    return a[0] if a.shape[0] == 1 else a.transpose(1, 2, 0)


def _safe_name(path: Path) -> str:
    """The data set's name plus a hash of its full path: two sets named alike never share a figures folder."""
    import hashlib

    name = _file_name(path.stem if path.is_file() else path.name)
    digest = hashlib.sha1(os.fsencode(path.resolve())).hexdigest()[:8]
    return f"{name or 'data'}-{digest}"


def _file_name(text: str) -> str:
    return "".join(c if c.isalnum() or c in "-_." else "_" for c in text)


def finish_text_run(run: RunFolder, data: TextData, minutes: float, stopped_by: str, epochs: int) -> TextMetrics:
    """Score the best checkpoint on the test split and write plots and report.md."""
    module = load_module(run, "best")
    test = data.samples["test"]
    ev = _score(module, test, Skipped(), run.plots / "test_samples.png")
    curves = plots.training_curves(run.metrics, run.plots / "curves.png")
    write_test_predictions(run, [{"file": f, "truth": r, "prediction": p, "confidence": c, "correct": r == p}
                                 for f, r, p, c in zip(ev.files, ev.references, ev.predictions, ev.confidences)],
                           [s.image for s in test])
    write_text_report(run, data, ev.metrics, minutes, stopped_by, epochs, curves is not None)
    write_test_metrics(run, ev.metrics, minutes, stopped_by, epochs)
    return ev.metrics


def write_test_metrics(run: RunFolder, m, minutes: float, stopped_by: str, epochs: int) -> None:
    """test_metrics.json: the report's numbers for machines (`hardsight runs`, the card); metrics None without a
    test split."""
    from datetime import datetime

    from hardsight.runs.folder import write_json

    write_json(run.test_metrics, {"split": "test", "checkpoint": "best", "epochs": epochs,
                                   "minutes": round(minutes, 3), "stopped_by": stopped_by,
                                   "finished": datetime.now().astimezone().isoformat(timespec="seconds"),
                                   "metrics": m.to_json() if m is not None else None})


TEST_PREDICTIONS_KEPT = 24  # the card's strip of test images: enough to see what goes wrong, small enough to inline


def write_test_predictions(run: RunFolder, rows: list[dict[str, Any]], pictures: Sequence[torch.Tensor]) -> None:
    """test_predictions.json and a thumbnail of each image as the model saw it (test_predictions/NN.png), for the
    card: errors first, the most confident first, then the least confident right ones (the order of fastai's
    plot_top_losses), at most TEST_PREDICTIONS_KEPT.

    Args:
        rows: {file, truth, prediction, confidence, correct} per test image; pictures: uint8 (C, H, W) each.
    """
    from PIL import Image

    from hardsight.runs.folder import write_json

    order = sorted(range(len(rows)), key=lambda i: (rows[i]["correct"],
                                                    rows[i]["confidence"] * (1 if rows[i]["correct"] else -1)))
    kept = []
    run.test_images.mkdir(exist_ok=True)
    for k, i in enumerate(order[:TEST_PREDICTIONS_KEPT]):
        name = f"{run.test_images.name}/{k:02d}.png"
        a = pictures[i].numpy()
        Image.fromarray(a[0] if a.shape[0] == 1 else a.transpose(1, 2, 0)).save(run.path / name)
        kept.append({**rows[i], "confidence": round(float(rows[i]["confidence"]), 6), "image": name})
    write_json(run.test_predictions, kept)  # last: it never names a thumbnail not yet written


def write_text_report(run: RunFolder, data: TextData, m: TextMetrics, minutes: float, stopped_by: str,
                      epochs: int, has_curves: bool) -> None:
    cfg = run.load_config()
    n = {k: len(v) for k, v in data.samples.items()}
    lines = [
        f"# {run.path.name}: {cfg.model} text reader", "",
        f"Trained on `{cfg.data}` for {epochs} epochs in {minutes:.1f} min (stopped by {stopped_by}), seed {cfg.seed}.",
        f"Split {n['train']} train / {n['val']} val / {n['test']} test; charset `{data.charset}` "
        f"({len(data.charset)} characters); input {data.spec.height} px high, up to {data.spec.width} px wide.",
        "", "## Test split (best checkpoint)", "", *text_metric_rows(m), "",
    ]
    if m.confusions:
        lines += ["Most confused characters (true -> predicted, count): "
                  + ", ".join(f"`{t}`->`{p}` {c}" for t, p, c in m.confusions), ""]
    if data.skipped.total:
        lines += [f"{data.skipped.total} files were skipped:", ""]
        lines += [f"- `{f}`: {why}" for f, why in (data.skipped.unreadable + data.skipped.bad_label)[:50]] + [""]
    lines += ["## Plots", "", "![test samples](plots/test_samples.png)", ""]
    if has_curves:
        lines += ["![training curves](plots/curves.png)", ""]
    run.report.write_text("\n".join(lines))


# -- image runs ---------------------------------------------------------------------------------------
@dataclass(frozen=True)
class ImageEvaluation:
    metrics: ClassificationMetrics
    skipped: Skipped
    unknown_classes: dict[str, int]
    figure: Path | None
    tta: bool = False  # scored with flip TTA (asked for, or baked into the model.onnx used)
    weights: Path | None = None  # the checkpoint (or model.onnx) that was scored

    def to_json(self) -> dict[str, Any]:
        return {**self.metrics.to_json(), "skipped": self.skipped.total, "unknown_classes": self.unknown_classes,
                "figure": str(self.figure) if self.figure else None, "tta": "hflip" if self.tta else "none",
                "weights": str(self.weights) if self.weights else None}


def image_scores(predictor, items, multi_label: bool, thresholds: list[float] | None):
    from hardsight.engine.metrics import classification_metrics

    index = {c: i for i, c in enumerate(predictor.classes)}
    chunk = 1024  # pictures read (from RAM, the disk cache or the files) at a time, never the whole set
    probs = np.concatenate([predictor.probabilities([it.picture() for it in items[i:i + chunk]])
                            for i in range(0, len(items), chunk)]) if items else predictor.probabilities([])
    truth = [[index[lab] for lab in it.labels] for it in items]
    return classification_metrics(truth, probs, predictor.classes, multi_label, thresholds), probs, truth


def evaluate_image(run: str | Path, data: str | Path, batch_size: int = 64, engine: str = "auto",
                   threads: int | None = None, tta: bool = False,
                   checkpoints: Sequence[str] = ("best",)) -> list[ImageEvaluation]:
    """Score an image run on class folders or a CSV, once per checkpoint on images read once (a face run finds
    each face once); classes the model does not know are reported."""
    from hardsight.data.image.labels import load_image_dataset
    from hardsight.engine.image_predictor import ImagePredictor

    evaluations: list[ImageEvaluation] = []
    ds = None
    for checkpoint in checkpoints:
        predictor = ImagePredictor(run, batch_size=batch_size, engine=engine, threads=threads, tta=tta,
                                   checkpoint=checkpoint)
        if ds is None:
            cfg = predictor.config
            ds = load_image_dataset(Path(data), predictor.size, cfg.label_col, cfg.group_col,
                                    classes=predictor.classes, workers=8, preprocess=predictor.preprocess)
        m, _, _ = image_scores(predictor, ds.items, predictor.multi_label,
                               [predictor.thresholds[c] for c in predictor.classes])
        folder = evaluation_folder(predictor.run, Path(data), checkpoint)
        fig = plots.confusion_matrix(m.confusion, predictor.classes, folder / "confusion.png") if m.confusion else None
        ev = ImageEvaluation(m, ds.skipped, ds.unknown_classes, fig, predictor.tta, predictor.weights)
        write_evaluation_report(folder, predictor.run, Path(data), ev, image_metric_rows(m))
        evaluations.append(ev)
    return evaluations


def finish_image_run(run: RunFolder, data, minutes: float, stopped_by: str, epochs: int):
    """Tune per-class thresholds on validation, score the test split, write plots and report.md."""
    from hardsight.engine.metrics import tune_thresholds
    from hardsight.engine.image_predictor import ImagePredictor
    from hardsight.grid.decision import tune_grid_thresholds
    from hardsight.runs.folder import read_json, write_json

    predictor = ImagePredictor(run.path)
    _, val_probs, val_truth = image_scores(predictor, data.items["val"], False, None)
    thresholds = tune_thresholds(val_truth, val_probs, len(data.classes))
    labels = read_json(run.labels)
    labels["thresholds"] = thresholds
    labels["grid_thresholds"] = tune_grid_thresholds(val_probs, val_truth, data.classes, thresholds,
                                                     seed=run.load_config().seed)
    write_json(run.labels, labels)
    multi = labels.get("multi_label", False)
    test = data.items["test"]
    m, probs, _ = image_scores(predictor, test, multi, thresholds) if test else (None, None, None)
    curves = plots.training_curves(run.metrics, run.plots / "curves.png")
    if m and m.confusion:
        plots.confusion_matrix(m.confusion, data.classes, run.plots / "confusion.png")
    if test:
        write_test_predictions(run, image_prediction_rows(test, probs, data.classes, multi, thresholds),
                               [it.picture() for it in test])
    write_image_report(run, data, m, thresholds, minutes, stopped_by, epochs, curves is not None)
    write_test_metrics(run, m, minutes, stopped_by, epochs)
    return m


def image_prediction_rows(items, probs, classes: list[str], multi_label: bool,
                          thresholds: list[float]) -> list[dict[str, Any]]:
    """{file, truth, prediction, confidence, correct} per item, right as the metrics count it: single-label, when
    the top class is any of the item's labels; multi-label, when the classes over their thresholds are its labels."""
    rows = []
    for it, p in zip(items, probs):
        top = int(np.argmax(p))
        chosen = [c for c, v, t in zip(classes, p, thresholds) if v >= t] if multi_label else [classes[top]]
        correct = set(chosen) == set(it.labels) if multi_label else classes[top] in it.labels
        rows.append({"file": str(it.path), "truth": ", ".join(it.labels), "prediction": ", ".join(chosen),
                     "confidence": float(p[top]), "correct": bool(correct)})
    return rows


def write_image_report(run: RunFolder, data, m, thresholds: list[float], minutes: float, stopped_by: str,
                       epochs: int, has_curves: bool) -> None:
    from hardsight.data.image.labels import class_counts

    cfg = run.load_config()
    n = {k: len(v) for k, v in data.items.items()}
    counts = class_counts(data.items["train"], data.classes)
    lines = [f"# {run.path.name}: {cfg.model} image classifier ({'multi' if cfg.multi_label else 'single'}-label)", "",
             f"Trained on `{cfg.data}` for {epochs} epochs in {minutes:.1f} min (stopped by {stopped_by}), seed {cfg.seed}, "
             f"input {cfg.image_size}x{cfg.image_size}.",
             f"Split {n['train']} train / {n['val']} val / {n['test']} test images; {data.duplicates} duplicate files "
             "merged into multi-label examples (never split apart).", ""]
    if m is not None:
        lines += ["## Test split (best checkpoint)", "", *image_metric_rows(m)]
        lines += ["", "| class | train images | precision | recall | F1 | test support | threshold |",
                  "|---|---|---|---|---|---|---|"]
        for c, t in zip(data.classes, thresholds):
            pc = m.per_class.get(c, {})
            lines.append(f"| {c} | {counts[c]} | {pc.get('precision', 0):.3f} | {pc.get('recall', 0):.3f} | "
                         f"{pc.get('f1', 0):.3f} | {pc.get('support', 0)} | {t:.2f} |")
        lines += [""]
    if data.skipped.total:
        lines += [f"{data.skipped.total} files were skipped:", ""]
        lines += [f"- `{f}`: {why}" for f, why in (data.skipped.unreadable + data.skipped.bad_label)[:50]] + [""]
    lines += ["## Plots", ""]
    if m is not None and m.confusion:
        lines += ["![confusion matrix](plots/confusion.png)", ""]
    if has_curves:
        lines += ["![training curves](plots/curves.png)", ""]
    run.report.write_text("\n".join(lines))
