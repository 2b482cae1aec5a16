"""The model card of a served run (`GET /v1/models/{name}/card`, shown on the page): what the model is, what it
was trained on, how it did on its test split (95% intervals), its curves, its confusions and its test images,
errors first.

Everything comes from the run folder's own files; a file that is missing or cannot be read (a run still training,
a half-written file) is named in `missing` and the card shows the rest: it never fails a request. What is
particular to a task (its input contract, metrics and confusions) comes from the task's handler (`card`).
"""

from __future__ import annotations

import math
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, TypeVar

from hardsight.intervals import rate_interval
from hardsight.errors import HardsightError, RunError
from hardsight.runs.folder import RunFolder, read_json
from hardsight.runs.inline import data_uri, inside

if TYPE_CHECKING:
    from hardsight.serve.handlers import LoadedModel

T = TypeVar("T")
CARD_PAIRS = 10  # most confused pairs shown
CARD_IMAGES = 24  # test images shown (the most test_predictions.json keeps)
UNREADABLE = (LookupError, TypeError, ValueError, AttributeError, HardsightError, OSError)  # what bad files raise


class CardFiles:
    """The run folder's files as the card reads them: what cannot be read is listed in `missing`, never raised."""

    def __init__(self, run: Path):
        self.run, self.missing = RunFolder(Path(run)), []

    def json(self, path: Path) -> Any | None:
        name = self.name(path)
        if not path.is_file():
            self.missing.append(name)
            return None
        try:
            return read_json(inside(self.run.path, name))
        except RunError:
            self.missing.append(f"{name} (unreadable)")
            return None

    def picture(self, name: str) -> str | None:
        """A picture of the folder as a data URI, or None (listed as missing)."""
        try:
            return data_uri(self.run.path, name)
        except RunError:
            self.missing.append(name)
            return None

    def part(self, what: str, build: Callable[[], T], default: T) -> T:
        """`build()`, or `default` when the file it reads holds something else than this version wrote."""
        try:
            return build()
        except UNREADABLE:
            self.missing.append(f"{what} (unreadable)")
            return default

    def name(self, path: Path) -> str:
        return path.relative_to(self.run.path).as_posix()


def model_card(model: LoadedModel) -> dict[str, Any]:
    """The card of a loaded model, as the ModelCard schema describes it."""
    files = CardFiles(model.run)
    saved = files.json(files.run.test_metrics)
    saved = saved if isinstance(saved, dict) else {}
    metrics = saved.get("metrics")
    if saved and not isinstance(metrics, dict):
        files.missing.append("test metrics (the run had no test split)" if metrics is None else
                             "test_metrics.json (unreadable)")
    scored = files.part("test_metrics.json", lambda: model.handler.card(model, metrics), {}) \
        if isinstance(metrics, dict) else {}
    return {"name": model.name, "task": model.task, "model": model.info.get("architecture"), "run": str(model.run),
            "engine": model.engine, "input": model.handler.contract(model),
            "training": files.part("split.json", lambda: _training(files, saved), {}),
            "metrics": scored.get("metrics", []), "per_class": scored.get("per_class", []),
            "confusions": scored.get("confusions", []), "curves": files.picture("plots/curves.png"),
            "predictions": files.part("test_predictions.json", lambda: _predictions(files), []),
            "missing": files.missing}


def _training(files: CardFiles, saved: dict[str, Any]) -> dict[str, Any]:
    """How much data the run was trained on, when, and for how long."""
    run = files.run
    split = files.json(run.split) or {}
    counts = {s: len(split[s]) if isinstance(split.get(s), list) else None for s in ("train", "val", "test")}
    try:
        data = str(run.load_config().data)
    except UNREADABLE:
        data = None
    finished = saved.get("finished")
    if not isinstance(finished, str):  # written before test_metrics.json said when: the time of the file, or of best
        when = next((p.stat().st_mtime for p in (run.test_metrics, run.best) if p.is_file()), None)
        finished = datetime.fromtimestamp(when).astimezone().isoformat(timespec="seconds") if when else None
    return {"data": data, **counts, "trained": finished, "epochs": _int(saved.get("epochs")),
            "minutes": _number(saved.get("minutes")), "stopped_by": _text(saved.get("stopped_by"))}


def _predictions(files: CardFiles) -> list[dict[str, Any]]:
    """The strip of test images: errors first, most confident first, then the least confident right ones."""
    if not files.run.test_predictions.is_file():
        files.missing.append(files.name(files.run.test_predictions))
        return []
    inside(files.run.path, files.name(files.run.test_predictions))  # no link out of the folder
    rows = files.run.load_test_predictions()
    rows = sorted(rows, key=lambda r: (bool(r["correct"]), (_number(r["confidence"]) or 0.0)
                                       * (1 if r["correct"] else -1)))[:CARD_IMAGES]
    return [{"file": Path(str(r["file"])).name, "truth": str(r["truth"]), "prediction": str(r["prediction"]),
             "confidence": _number(r["confidence"]), "correct": bool(r["correct"]),
             "image": files.picture(str(r["image"])) if r["image"] else None} for r in rows]


def rate(key: str, name: str, value: Any, n: Any) -> dict[str, Any]:
    """A fraction of the `n` test images, with its 95% Wilson interval."""
    value, n = _fraction(value), int(n)
    if n < 0:
        raise ValueError(f"{n} test images")
    low, high = rate_interval(value, n)  # the interval evaluate --json gives the same rate
    return {"key": key, "name": name, "value": value, "percent": True, "low": low, "high": high, "n": n}


def score(key: str, name: str, value: Any, percent: bool = True) -> dict[str, Any]:
    """A number without an interval: not a count of images right (character rates, F1, averages over classes)."""
    number = _number(value)
    if number is None:
        raise ValueError(f"{key}: {value!r} is not a number")
    return {"key": key, "name": name, "value": number, "percent": percent}


def top_pairs(matrix: list[list[int]], classes: list[str], k: int = CARD_PAIRS) -> list[dict[str, Any]]:
    """The off-diagonal cells of a confusion matrix (rows true, columns predicted), largest first."""
    cells = [(int(c), classes[i], classes[j]) for i, row in enumerate(matrix) for j, c in enumerate(row)
             if i != j and int(c) > 0]
    return [{"true": t, "predicted": p, "count": c} for c, t, p in sorted(cells, key=lambda x: -x[0])[:k]]


def pairs(confusions: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Saved {true, predicted, count} pairs, checked."""
    return [{"true": str(c["true"]), "predicted": str(c["predicted"]), "count": int(c["count"])}
            for c in confusions[:CARD_PAIRS]]


def _fraction(value: Any) -> float:
    number = _number(value)
    if number is None or not 0.0 <= number <= 1.0:
        raise ValueError(f"{value!r} is not a fraction")
    return number


def _number(value: Any) -> float | None:
    """A finite number, else None (JSON has no NaN, and a bool is not a score)."""
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        return None
    return float(value)


def _int(value: Any) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def _text(value: Any) -> str | None:
    return value if isinstance(value, str) else None
