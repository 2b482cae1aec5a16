"""Pure metric functions over predictions and references (no models, no files)."""

from __future__ import annotations

from collections import Counter
from dataclasses import asdict, dataclass, field
from typing import Any

from rapidfuzz.distance import Levenshtein

from hardsight.intervals import rate_interval

@dataclass(frozen=True)
class TextMetrics:
    """Whole-string and character-level scores of a text reader; fractions in 0..1."""

    n: int
    exact_match: float
    char_accuracy: float  # per position, as in the classic notebook: label[i] == prediction[i]
    cer: float  # character error rate: edit distance / reference length
    confusions: list[tuple[str, str, int]] = field(default_factory=list)  # (true, predicted, count)

    def to_json(self) -> dict[str, Any]:
        d = asdict(self)
        d["confusions"] = [{"true": t, "predicted": p, "count": c} for t, p, c in self.confusions]
        return {**d, "exact_match_interval": rate_interval(self.exact_match, self.n)}

    def scores(self) -> dict[str, float]:
        """The headline numbers, one column each where several evaluations are compared (`evaluate --every-epoch`)."""
        return {"exact_match": self.exact_match, "char_accuracy": self.char_accuracy, "cer": self.cer}


def text_metrics(predictions: list[str], references: list[str], top_confusions: int = 10) -> TextMetrics:
    if len(predictions) != len(references):
        raise ValueError(f"{len(predictions)} predictions for {len(references)} references")
    n = len(references)
    if n == 0:
        return TextMetrics(0, 0.0, 0.0, 0.0)
    exact = sum(p == r for p, r in zip(predictions, references))
    chars = sum(len(r) for r in references) or 1
    positional = sum(sum(i < len(p) and p[i] == c for i, c in enumerate(r)) for p, r in zip(predictions, references))
    edits = sum(Levenshtein.distance(p, r) for p, r in zip(predictions, references))
    pairs: Counter[tuple[str, str]] = Counter()
    for p, r in zip(predictions, references):
        for op in Levenshtein.editops(r, p):
            if op.tag == "replace":
                pairs[(r[op.src_pos], p[op.dest_pos])] += 1
    return TextMetrics(n=n, exact_match=exact / n, char_accuracy=positional / chars, cer=edits / chars,
                       confusions=[(t, q, c) for (t, q), c in pairs.most_common(top_confusions)])


@dataclass(frozen=True)
class ClassificationMetrics:
    """Scores of an image classifier; fractions in 0..1. Single-label accuracy counts a prediction right
    when it is any of the image's labels (a tile showing a car and a traffic light is both)."""

    n: int
    accuracy: float
    balanced_accuracy: float
    macro_f1: float
    per_class: dict[str, dict[str, float]]
    confusion: list[list[int]]  # rows: true class, columns: predicted class
    top_k: dict[str, float] = field(default_factory=dict)
    mean_average_precision: float | None = None  # multi-label only

    def to_json(self) -> dict[str, Any]:
        return {**asdict(self), "accuracy_interval": rate_interval(self.accuracy, self.n)}

    def scores(self) -> dict[str, float]:
        """The headline numbers, one column each where several evaluations are compared (`evaluate --every-epoch`)."""
        extra = {} if self.mean_average_precision is None else {"mean_average_precision": self.mean_average_precision}
        return {"accuracy": self.accuracy, "balanced_accuracy": self.balanced_accuracy, "macro_f1": self.macro_f1,
                **extra}


def classification_metrics(labels: list[list[int]], probs, classes: list[str], multi_label: bool = False,
                           thresholds: list[float] | None = None) -> ClassificationMetrics:
    """Args: labels: class indices per image; probs: (N, C) probabilities."""
    import numpy as np
    from sklearn.metrics import average_precision_score, balanced_accuracy_score, confusion_matrix, f1_score
    from sklearn.metrics import precision_recall_fscore_support

    probs = np.asarray(probs, dtype=np.float64)
    n, c = len(labels), len(classes)
    if n == 0:
        return ClassificationMetrics(0, 0.0, 0.0, 0.0, {}, [])
    truth = np.zeros((n, c), dtype=int)
    for i, labs in enumerate(labels):
        truth[i, labs] = 1
    ks = [k for k in (1, 3, 5) if k < c]
    order = np.argsort(-probs, axis=1)
    top_k = {f"top{k}": float(np.mean([truth[i, order[i, :k]].any() for i in range(n)])) for k in ks}
    if multi_label:
        th = np.asarray(thresholds if thresholds is not None else [0.5] * c)
        pred = (probs >= th).astype(int)
        p, r, f, s = precision_recall_fscore_support(truth, pred, average=None, labels=range(c), zero_division=0)
        present = truth.sum(0) > 0
        m_ap = float(average_precision_score(truth[:, present], probs[:, present], average="macro")) if present.any() else 0.0
        exact = float((pred == truth).all(1).mean())
        per = {classes[j]: {"precision": float(p[j]), "recall": float(r[j]), "f1": float(f[j]), "support": int(s[j])}
               for j in range(c)}
        return ClassificationMetrics(n, exact, float(np.mean(r[present])) if present.any() else 0.0,
                                     float(np.mean(f[present])) if present.any() else 0.0, per, [], top_k, m_ap)
    top1 = order[:, 0]
    # the true class of an image is its predicted class when that is one of its labels, else its first label
    y_true = np.array([t if truth[i, t] else labels[i][0] for i, t in enumerate(top1)])
    p, r, f, s = precision_recall_fscore_support(y_true, top1, labels=range(c), zero_division=0)
    present = s > 0
    per = {classes[j]: {"precision": float(p[j]), "recall": float(r[j]), "f1": float(f[j]), "support": int(s[j])}
           for j in range(c)}
    return ClassificationMetrics(
        n=n, accuracy=float(np.mean(y_true == top1)),
        balanced_accuracy=float(balanced_accuracy_score(y_true, top1)),
        macro_f1=float(f1_score(y_true, top1, labels=np.flatnonzero(present), average="macro", zero_division=0)),
        per_class=per, confusion=confusion_matrix(y_true, top1, labels=range(c)).tolist(), top_k=top_k)


def tune_thresholds(labels: list[list[int]], probs, num_classes: int) -> list[float]:
    """Per class, the probability cut-off that maximises one-vs-rest F1 on validation (0.5 if unseen).

    Where several cut-offs tie (a small or well-separated validation set: every cut-off between the classes
    scores the same), the middle one of them is kept, not the lowest: a 0.05 cut-off that happened to separate a
    few validation images picks every doubtful cell of a grid."""
    import numpy as np

    probs = np.asarray(probs)
    grid = np.linspace(0.05, 0.95, 19)
    out = []
    for j in range(num_classes):
        y = np.array([j in labs for labs in labels])
        if not y.any():
            out.append(0.5)
            continue
        f1 = np.array([2 * float(((probs[:, j] >= t) & y).sum()) / max(1.0, float((probs[:, j] >= t).sum() + y.sum()))
                       for t in grid])
        tied = grid[f1 >= f1.max() - 1e-9]
        out.append(round(float(tied[(len(tied) - 1) // 2]), 3))
    return out
