"""Scoring a run: test-split report at the end of training, and `evaluate RUN DATA` on any labelled set."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from hardsight import plots
from hardsight.data.images import UnreadableImage, load_image, parallel_map
from hardsight.data.text import Skipped, filter_charset, read_text_labels
from hardsight.data.text_data import TextData, labelling_of
from hardsight.data.text_dataset import TextSample
from hardsight.metrics import TextMetrics, text_metrics
from hardsight.predict import Predictor, load_module, read_tensors
from hardsight.runs import RunFolder
from hardsight.transforms import text_preprocess


@dataclass(frozen=True)
class TextEvaluation:
    metrics: TextMetrics
    files: list[str]
    references: list[str]
    predictions: list[str]
    confidences: list[float]
    skipped: Skipped
    figure: Path | None

    def to_json(self) -> dict[str, Any]:
        return {**self.metrics.to_json(), "skipped": self.skipped.total,
                "figure": str(self.figure) if self.figure else None}


def evaluate(run: str | Path, data: str | Path, batch_size: int = 64) -> TextEvaluation:
    """Score a run on a labelled folder or CSV, read with the labelling settings saved in the run."""
    predictor = Predictor(run, batch_size=batch_size)
    cfg, labels = predictor.config, predictor.run.load_labels()
    files, skipped = read_text_labels(Path(data), labelling_of(cfg))
    files = filter_charset(files, labels["charset"], skipped)
    spec, mode = predictor.module.spec, ("L" if predictor.module.spec.channels == 1 else "RGB")

    def decode(f):
        try:
            return TextSample(f.path, f.label, text_preprocess(load_image(f.path, mode), spec)), None
        except UnreadableImage as e:
            return f, str(e)

    samples = []
    for item, err in parallel_map(decode, files, workers=8, progress="reading images"):
        if err:
            skipped.unreadable.append((str(item.path), err))
        else:
            samples.append(item)
    out_dir = predictor.run.path / "evaluations" / _safe_name(Path(data))
    return _score(predictor.module, samples, skipped, out_dir / "samples.png", batch_size)


def _score(module, samples: list[TextSample], skipped: Skipped, figure: Path, batch_size: int = 64) -> TextEvaluation:
    read = read_tensors(module, [s.image for s in samples], batch_size)
    preds = [t for t, _ in read]
    refs = [s.label for s in samples]
    metrics = text_metrics(preds, refs)
    fig = sample_figure(samples, preds, figure) if samples else None
    return TextEvaluation(metrics, [str(s.path) for s in samples], refs, preds, [c for _, c in read], skipped, fig)


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
    return "".join(c if c.isalnum() or c in "-_." else "_" for c in (path.stem if path.is_file() else path.name)) or "data"


def finish_text_run(run: RunFolder, data: TextData, minutes: float, stopped_by: str, epochs: int) -> TextMetrics:
    """Score the best checkpoint on the test split and write plots and report.md."""
    module = load_module(run, "best")
    test = data.samples["test"]
    ev = _score(module, test, Skipped(), run.plots / "test_samples.png")
    curves = plots.training_curves(run.metrics, run.plots / "curves.png")
    (run.path / "test_predictions.json").write_text(json.dumps(
        [{"file": f, "label": r, "text": p, "confidence": round(c, 6)}
         for f, r, p, c in zip(ev.files, ev.references, ev.predictions, ev.confidences)], indent=1))
    write_text_report(run, data, ev.metrics, minutes, stopped_by, epochs, curves is not None)
    return ev.metrics


def write_text_report(run: RunFolder, data: TextData, m: TextMetrics, minutes: float, stopped_by: str,
                      epochs: int, has_curves: bool) -> None:
    cfg = run.load_config()
    n = {k: len(v) for k, v in data.samples.items()}
    lines = [
        f"# {run.path.name}: {cfg.model} text reader", "",
        f"Trained on `{cfg.data}` for {epochs} epochs in {minutes:.1f} min (stopped by {stopped_by}), seed {cfg.seed}.",
        f"Split {n['train']} train / {n['val']} val / {n['test']} test; charset `{data.charset}` "
        f"({len(data.charset)} characters); input {data.spec.height} px high, up to {data.spec.width} px wide.",
        "", "## Test split (best checkpoint)", "",
        "| metric | value |", "|---|---|",
        f"| images | {m.n} |",
        f"| exact match | {m.exact_match:.2%} |",
        f"| character accuracy (per position) | {m.char_accuracy:.2%} |",
        f"| character error rate | {m.cer:.2%} |", "",
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
