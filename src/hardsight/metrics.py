"""Pure metric functions over predictions and references (no models, no files)."""

from __future__ import annotations

from collections import Counter
from dataclasses import asdict, dataclass, field
from typing import Any

from rapidfuzz.distance import Levenshtein


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
        return d


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
