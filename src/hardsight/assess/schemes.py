"""What `assess` measures for each kind of scheme: a solve, how it is scored, and the zero-shot baselines.

A text scheme is solved when the whole string is read right (exact match); a tile scheme when a whole synthetic
grid of held-out tiles is answered right (grid/synthetic.py). Each kind reads its data once, through the task's
own preparation, and hands the training runs nested subsets of it (`prepared`), so every point of the curve sees
the same decoded images and the same held-out set.
"""

from __future__ import annotations

import dataclasses
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar, Hashable

import torch

from hardsight.config import TrainConfig
from hardsight.console import console
from hardsight.intervals import wilson
from hardsight.errors import HardsightError

TIMED_SOLVES = 30  # solves timed per point, one at a time on one thread (after one warm-up)


@dataclass(frozen=True)
class Scores:
    """One attack (a trained point or a zero-shot baseline) on the held-out set."""

    solved: int
    attempts: int
    metrics: dict[str, float]  # the task's own scores (exact match, CER, ...; top-1, macro-F1, ...)
    ms_per_solve: float | None  # one solve on one CPU thread, end to end (file to answer)
    failures: list[dict[str, Any]] = field(default_factory=list)  # a few wrong answers, for the report
    confusions: list[dict[str, Any]] = field(default_factory=list)  # text: (true, read, count); tiles: per class F1

    @property
    def rate(self) -> float:
        return self.solved / self.attempts if self.attempts else 0.0

    @property
    def interval(self) -> tuple[float, float]:
        return wilson(self.solved, self.attempts)

    def to_json(self) -> dict[str, Any]:
        low, high = self.interval
        return {**dataclasses.asdict(self), "rate": self.rate, "rate_low": low, "rate_high": high}

    @classmethod
    def from_json(cls, d: dict[str, Any]) -> Scores:
        return cls(**{f.name: d[f.name] for f in dataclasses.fields(cls)})


@dataclass(frozen=True)
class Baseline:
    name: str
    scores: Scores | None  # None: not installed
    note: str


def timed_ms(solve_one, work: list, n: int = TIMED_SOLVES) -> float:
    """Mean milliseconds of `solve_one` over `n` of `work` on one thread, after one warm-up call."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        solve_one(work[0])
        picked = work[:n]
        start = time.perf_counter()
        for w in picked:
            solve_one(w)
        return (time.perf_counter() - start) * 1000 / len(picked)
    finally:
        torch.set_num_threads(threads)


class Scheme:
    """One kind of CAPTCHA scheme; `assess` calls these in order."""

    task: ClassVar[str]  # the TaskSpec that trains it
    solve_name: ClassVar[str]  # what a solve is, in words
    unit: ClassVar[str]  # what one labelled example is
    parts: ClassVar[str]  # the field of the task's data holding its train/val/test parts

    def read(self, cfg: TrainConfig):
        """The task's own data preparation (read, split as `cfg.split` says, decode)."""
        raise NotImplementedError

    def prepare(self, base: TrainConfig, holdout: float):
        """(task data, labelled pool, held-out examples): the held-out set is cut first, seeded, and grouped as the
        task's split groups (same picture, same person)."""
        data = self.read(base.replace(split=cut_fractions(holdout)))
        parts = getattr(data, self.parts)
        return data, parts["train"] + parts["val"], parts["test"]

    def group_of(self, example) -> Hashable:
        return str(example.path)

    def with_parts(self, data, train: list, val: list, test: list):
        """The task data with these parts: the `prepared` of one training run."""
        return dataclasses.replace(data, **{self.parts: {"train": train, "val": val, "test": test}})

    def score(self, run: Path, test_metrics, data, held_out: list, cfg) -> Scores:
        raise NotImplementedError

    def baselines(self, data, held_out: list, cfg) -> list[Baseline]:
        return []

    def solve_note(self, cfg) -> str:
        """How the solves were drawn from the held-out set, when not one per example."""
        return ""


def cut_fractions(holdout: float) -> tuple[float, float, float]:
    """A split whose test part is the held-out set: the tasks' splits cut test first (seeded), so it does not
    depend on the other two fractions; their parts are pooled again as the labelled pool."""
    return (1 - holdout) * 0.9, (1 - holdout) * 0.1, holdout


class TextScheme(Scheme):
    task = "text"
    solve_name = "exact match (whole string read right)"
    unit = "CAPTCHA"
    parts = "samples"

    def read(self, cfg):
        from hardsight.tasks import TASKS

        return TASKS[self.task].prepare(cfg)  # its input height fixed by the reader the points start from, if any

    def score(self, run, test_metrics, data, held_out, cfg):
        from hardsight.engine.predictor import TextPredictor

        from hardsight.runs.folder import RunFolder

        m = test_metrics
        wrong = [{"file": p["file"], "truth": p["truth"], "read": p["prediction"]}
                 for p in RunFolder(run).load_test_predictions() if not p["correct"]]
        reader = TextPredictor(run, batch_size=1, threads=1)
        ms = timed_ms(lambda s: reader.predict([s.path]), held_out)
        return Scores(round(m.exact_match * m.n), m.n, {"exact_match": m.exact_match, "char_accuracy": m.char_accuracy,
                                                        "cer": m.cer}, ms, wrong[:12],
                      [{"true": t, "read": p, "count": c} for t, p, c in m.confusions])

    def baselines(self, data, held_out, cfg):
        from hardsight.assess.baselines import TEXT_BASELINES
        from hardsight.engine.metrics import text_metrics

        out = []
        for name, (factory, version) in TEXT_BASELINES.items():
            try:
                read = factory(data.charset)
            except ImportError:
                out.append(Baseline(name, None, f"{name} is not installed (pip install {name}): no zero-shot line"))
                continue
            except HardsightError as e:  # the shipped reader missing from a broken install
                out.append(Baseline(name, None, f"{name} cannot be read ({e}): no zero-shot line"))
                continue
            blobs = [s.path.read_bytes() for s in held_out]
            texts = [read(b) for b in blobs]
            labels = [s.label for s in held_out]
            m = text_metrics(texts, labels)
            ms = timed_ms(read, blobs)
            wrong = [{"file": str(s.path), "truth": s.label, "read": t} for s, t in zip(held_out, texts) if t != s.label]
            out.append(Baseline(f"{name} {version()} (zero-shot)", Scores(
                sum(t == lab for t, lab in zip(texts, labels)), len(labels),
                {"exact_match": m.exact_match, "char_accuracy": m.char_accuracy, "cer": m.cer}, ms, wrong[:12],
                [{"true": t, "read": p, "count": c} for t, p, c in m.confusions]),
                f"its own model restricted to the charset {data.charset!r}; timed on one image at a time"))
        return out


class TileScheme(Scheme):
    task = "image"
    solve_name = "grid solved (exactly the target's cells chosen)"
    unit = "tile"
    parts = "items"

    def __init__(self):
        self._challenges: tuple[tuple, list, list] | None = None  # (what drew them, grids, their images)

    def read(self, cfg):
        from hardsight.data.image.prepare import prepare_image_data

        return prepare_image_data(cfg)

    def group_of(self, example):
        return example.group or str(example.path)  # duplicates are merged into one item; groups: people, copies

    def challenges(self, data, held_out, cfg) -> tuple[list, list]:
        """The synthetic grids and their images, drawn and decoded once for every point of one assessment."""
        from hardsight.grid.synthetic import synthetic_grids

        key = (tuple(str(it.path) for it in held_out), cfg.grids, cfg.seed, cfg.grid)
        if self._challenges is None or self._challenges[0] != key:
            grids = synthetic_grids(held_out, data.classes, cfg.grids, cfg.seed, *cfg.grid)
            self._challenges = key, grids, [g.image(*cfg.grid) for g in grids]
        return self._challenges[1], self._challenges[2]

    def score(self, run, test_metrics, data, held_out, cfg):
        from hardsight.engine.image_predictor import ImagePredictor
        from hardsight.grid import solve

        rows, cols = cfg.grid
        grids, images = self.challenges(data, held_out, cfg)
        clf = ImagePredictor(run, threads=1)
        answers = [solve(clf, im, g.target, (rows, cols)).selected for im, g in zip(images, grids)]
        solved = sum(a == g.answer for a, g in zip(answers, grids))
        ms = timed_ms(lambda w: solve(clf, w[0], w[1].target, (rows, cols)), list(zip(images, grids)))
        wrong = [{"target": g.target, "answer": g.answer, "chosen": a, "tiles": [str(it.path) for it in g.items]}
                 for a, g in zip(answers, grids) if a != g.answer]
        m = test_metrics
        top1 = round(m.accuracy * m.n)
        low, high = wilson(top1, m.n)
        return Scores(solved, len(grids), {"top1": m.accuracy, "top1_low": low, "top1_high": high,
                                           "balanced_accuracy": m.balanced_accuracy, "macro_f1": m.macro_f1}, ms,
                      wrong[:8], [{"class": c, "f1": s.get("f1", 0.0)} for c, s in m.per_class.items()])

    def baselines(self, data, held_out, cfg):
        return [Baseline("zero-shot tile classifier", None, "none is available offline: no zero-shot line")]

    def solve_note(self, cfg):
        rows, cols = cfg.grid
        return (f"solve rates are over {cfg.grids} synthetic {rows}x{cols} grids of held-out tiles (grids share "
                "tiles, so their interval is a little narrow); top-1 is over the held-out tiles")


SCHEMES: dict[str, Scheme] = {s.task: s for s in (TextScheme(), TileScheme())}


def print_point(label: str, s: Scores, minutes: float | None) -> None:
    low, high = s.interval
    console.print(f"{label}: {s.rate:.1%} [{low:.1%}, {high:.1%}] of {s.attempts} solved"
                  + (f", {minutes:.1f} training min" if minutes is not None else "")
                  + (f", {s.ms_per_solve:.1f} ms a solve" if s.ms_per_solve is not None else ""))
