"""`hardsight assess`: what breaking a CAPTCHA scheme costs an attacker, as a curve of labels and minutes.

One seeded held-out set is cut first and never trained on (ASSESS/held_out.json lists it). The rest is the
labelled pool, shuffled once (grouped as the task's splits are): the first N of it is the labelled set of size N,
so every larger set holds every smaller one, and a tenth of each set validates (early stopping, the best
checkpoint), since an attacker has to label those too. One run per size trains under the same recipe and an
equal share of the time budget that is left (a point that stops early leaves its time to the larger ones), into
ASSESS/points/n<size>/, and is scored on the held-out set. A rerun skips finished points, continues an
interrupted one, and may add sizes or change the budget; other settings need a new folder.
"""

from __future__ import annotations

import dataclasses
import json
import math
import shutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from hardsight.assess.curve import labelled_subset, nested_order, resolve_sizes
from hardsight.assess.schemes import SCHEMES, Baseline, Scores, print_point
from hardsight.config import TrainConfig
from hardsight.console import console
from hardsight.intervals import wilson
from hardsight.errors import ConfigError, DataError, RunError
from hardsight.jobs.manifest import refuse_other_settings
from hardsight.runs.folder import read_json, write_json

DEFAULT_SIZES: tuple[int | None, ...] = (50, 100, 250, 500, 1000, None)  # None: the whole labelled pool
MIN_EPOCH = 256  # a small training set repeats to this many examples an epoch, so validating and saving
# checkpoints after every few steps does not eat its share of the budget
SMALL_HELD_OUT = 100  # under this many held-out solves a rate's interval is wider than +-10 points
# may change between reruns of one assessment; the rest may not
RERUN_KEYS = ("out", "sizes", "budget_minutes", "baselines", "core_hour_price", "label_price")
# what the assessment decides for every point: a recipe (--config) may not set these
OWNED = ("task", "data", "out", "split", "seed", "val_dir", "test_dir", "max_minutes", "resume", "faces")


@dataclass(frozen=True)
class AssessConfig:
    task: str  # text or image (a tile scheme)
    data: str
    out: str
    sizes: tuple[int | None, ...] = DEFAULT_SIZES
    holdout: float = 0.2  # fraction of the data held out
    budget_minutes: float | None = 60.0  # training time for all points together; None: each trains its epochs
    seed: int = 0
    model: str | None = None  # None: the task's default recipe
    label_pattern: str | None = None  # text
    lowercase: bool = False  # text
    charset: str | None = None  # text
    grid: tuple[int, int] = (3, 3)  # image: the challenge's rows and columns
    grids: int = 200  # image: synthetic grids drawn from held-out tiles
    baselines: bool = True  # score the zero-shot baselines that are installed
    core_hour_price: float | None = None  # the user's price of one CPU core for an hour, for the cost estimate
    label_price: float | None = None  # ... and of labelling one example
    settings: dict[str, Any] = field(default_factory=dict)  # other training settings (a recipe YAML)

    def __post_init__(self) -> None:
        if self.task not in SCHEMES:
            raise ConfigError(f"assess {self.task!r}: choose from {sorted(SCHEMES)}")
        if not 0 < self.holdout < 1:
            raise ConfigError(f"--holdout {self.holdout}: a fraction between 0 and 1 (e.g. 0.2)")
        if self.budget_minutes is not None and self.budget_minutes <= 0:
            raise ConfigError(f"--budget-minutes {self.budget_minutes}: must be positive")
        if self.grids < 1 or min(self.grid) < 1:
            raise ConfigError(f"--grid {self.grid} with --grids {self.grids}: need at least one cell and one grid")
        owned = sorted(set(self.settings) & set(OWNED))
        if owned:
            raise ConfigError(f"settings {owned} are the assessment's own: give them as its options, if at all")
        self.train_config()  # the training settings are checked here, before anything runs

    def train_config(self) -> TrainConfig:
        """Every point's training settings but its folder and time share."""
        given = dict(task=self.task, data=self.data, seed=self.seed, model=self.model, label_pattern=self.label_pattern,
                     lowercase=self.lowercase, charset=self.charset)
        return TrainConfig.from_dict({**{k: v for k, v in given.items() if v not in (None, False)}, **self.settings},
                                     source="assess settings")

    def to_dict(self) -> dict[str, Any]:
        d = dataclasses.asdict(self)
        d["sizes"] = ["all" if s is None else s for s in self.sizes]
        d["grid"] = list(self.grid)
        return d


@dataclass(frozen=True)
class Point:
    """One labelled-set size, trained and scored on the held-out set."""

    size: int  # asked for
    labels: int  # labelled examples used: train + val (groups are never cut, so it may be a little over)
    train: int
    val: int
    minutes: float  # training
    share: float | None  # of the budget, in minutes
    epochs: int
    steps: int
    planned_steps: int
    stopped_by: str
    converged: bool
    training_threads: int
    run: str
    scores: Scores

    def to_json(self) -> dict[str, Any]:
        return {**dataclasses.asdict(self), "scores": self.scores.to_json()}

    @classmethod
    def from_json(cls, d: dict[str, Any]) -> Point:
        return cls(**{**{f.name: d[f.name] for f in dataclasses.fields(cls)}, "scores": Scores.from_json(d["scores"])})


@dataclass
class Assessment:
    cfg: AssessConfig
    out: Path
    held_out: int
    pool: int
    points: list[Point]
    baselines: list[Baseline]
    trained: list[int]  # sizes trained by this call
    dropped: list[int]  # sizes over the pool, replaced by the pool
    solve_name: str
    unit: str
    solve_note: str  # how solves were drawn, for the report (e.g. synthetic grids)

    @property
    def report(self) -> Path:
        return self.out / "report.md"


def assess(cfg: AssessConfig, progress: bool | None = None) -> Assessment:
    """Run (or finish) the assessment in `cfg.out`; writes report.md, assess.json and plots as points finish."""
    from hardsight.assess.report import write_report

    scheme = SCHEMES[cfg.task]
    out = Path(cfg.out)
    _check_settings(out, cfg)
    base = cfg.train_config()
    data, pool, held_out = scheme.prepare(base, cfg.holdout)
    _check_held_out(out / "held_out.json", held_out, Path(cfg.data))
    if len(held_out) < SMALL_HELD_OUT:
        low, high = wilson(len(held_out) // 2, len(held_out))
        console.print(f"[yellow]warning:[/yellow] {len(held_out)} held-out {scheme.unit}s are few for a rate: a 50% "
                      f"rate's 95% interval is [{low:.0%}, {high:.0%}]; the report shows each rate's interval")
    sizes, dropped = resolve_sizes(cfg.sizes, len(pool))
    if dropped:
        console.print(f"sizes {dropped} are over the {len(pool)} labelled {scheme.unit}s outside the held-out set: "
                      f"the largest point uses all {len(pool)}")
    order = nested_order(pool, cfg.seed, scheme.group_of)
    console.print(f"assess: {len(held_out)} held out, {len(pool)} labelled; sizes {sizes}"
                  + (f", {cfg.budget_minutes:g} training minutes in all" if cfg.budget_minutes else ""))

    points = {p.size: p for p in _read_points(out)}
    trained = []
    for i, size in enumerate(sizes, start=1):
        if size in points:
            continue
        done = [points[s] for s in sizes if s in points]
        share = _share(cfg.budget_minutes, done, len(sizes) - len(done))
        train, val = labelled_subset(order, size)
        console.print(f"[bold]\\[{i}/{len(sizes)}] {size} labelled[/bold]: {len(train)} train / {len(val)} val"
                      + (f", {share:.1f} min" if share else ""))
        points[size] = _train_point(cfg, scheme, data, base, size, train, val, held_out, share, out, progress)
        trained.append(size)
        print_point(f"  {size} labelled", points[size].scores, points[size].minutes)
        write_report(_result(cfg, out, held_out, pool, points, sizes, [], trained, dropped, scheme))
    baselines = _baselines(cfg, scheme, data, held_out, out)
    result = _result(cfg, out, held_out, pool, points, sizes, baselines, trained, dropped, scheme)
    write_report(result)
    return result


def _result(cfg, out, held_out, pool, points, sizes, baselines, trained, dropped, scheme) -> Assessment:
    return Assessment(cfg, out, len(held_out), len(pool), [points[s] for s in sizes if s in points], baselines,
                      trained, dropped, scheme.solve_name, scheme.unit, scheme.solve_note(cfg))


def _share(budget: float | None, done: list[Point], left: int) -> float | None:
    """An equal share of the budget not yet spent, for each point left: time a point did not need goes to the next."""
    if budget is None:
        return None
    spent = sum(p.minutes for p in done)
    if spent >= budget:
        raise RunError(f"the {budget:g}-minute budget is spent ({spent:.1f} min) with {left} point(s) left; rerun "
                       "with a larger --budget-minutes to train them")
    return (budget - spent) / left


def _train_point(cfg, scheme, data, base: TrainConfig, size: int, train: list, val: list, held_out: list,
                 share: float | None, out: Path, progress) -> Point:
    import torch

    import hardsight

    run_dir = out / "points" / f"n{size:05d}"
    resume = (run_dir / "config.yaml").is_file() and any((run_dir / "checkpoints").glob("*.ckpt"))
    if run_dir.exists() and not resume:
        shutil.rmtree(run_dir)  # a start that never finished an epoch; the folder is the assessment's own
    repeats = math.ceil(MIN_EPOCH / len(train))
    prepared = scheme.with_parts(data, train * repeats, val, held_out)
    result = hardsight.train(base.replace(out=str(run_dir), max_minutes=share), resume=resume, progress=progress,
                             prepared=prepared)
    scores = scheme.score(run_dir, result.test, data, held_out, cfg)
    point = Point(size, len(train) + len(val), len(train), len(val), result.minutes, share, result.epochs,
                  result.steps, result.planned_steps, result.stopped_by, result.converged, torch.get_num_threads(),
                  str(run_dir.relative_to(out)), scores)
    write_json(out / "points" / f"n{size:05d}.json", point.to_json())
    return point


def _read_points(out: Path) -> list[Point]:
    """Finished points (their scores written after the run's test); a run without one is trained again or on."""
    return [Point.from_json(read_json(p)) for p in sorted((out / "points").glob("n*.json"))]


def _baselines(cfg: AssessConfig, scheme, data, held_out, out: Path) -> list[Baseline]:
    """The zero-shot baselines, scored once and kept in baselines.json."""
    if not cfg.baselines:
        return []
    path = out / "baselines.json"
    if path.is_file():
        return [Baseline(b["name"], Scores.from_json(b["scores"]) if b["scores"] else None, b["note"])
                for b in read_json(path)]
    console.print("zero-shot baselines on the held-out set")
    found = scheme.baselines(data, held_out, cfg)
    for b in found:
        if b.scores:
            print_point(f"  {b.name}", b.scores, None)
        else:
            console.print(f"  {b.name}: {b.note}")
    write_json(path, [{"name": b.name, "scores": b.scores.to_json() if b.scores else None, "note": b.note}
                      for b in found])
    return found


def _check_settings(out: Path, cfg: AssessConfig) -> None:
    """A rerun finishes the same assessment; other settings (the recipe they resolve to included) need a new one."""
    path = out / "assess_settings.json"
    now = json.loads(json.dumps({**cfg.to_dict(), "training": {k: v for k, v in cfg.train_config().to_dict().items()
                                                              if k not in ("out", "max_minutes", "cache")}}))
    if path.is_file():
        old = read_json(path)
        keep = lambda s: {k: v for k, v in s.items() if k not in RERUN_KEYS}  # noqa: E731
        refuse_other_settings(out, keep(old), keep(now), "an assessment", "--out", RunError)
    elif out.exists() and any(out.iterdir()):
        raise RunError(f"{out}: exists and holds no assessment (no assess_settings.json); choose a new --out")
    out.mkdir(parents=True, exist_ok=True)
    write_json(path, now)


def _check_held_out(path: Path, held_out: list, data: Path) -> None:
    """held_out.json lists the held-out files (relative to the data folder); a rerun whose data gives another set
    (files added, removed or renamed) would score its new points on other images than the old ones: refused."""
    root = data if data.is_dir() else data.parent
    files = sorted(str(p.relative_to(root)) if p.is_relative_to(root) else str(p)
                   for ex in held_out for p in getattr(ex, "paths", [ex.path]))
    if path.is_file():
        if read_json(path) != files:
            raise DataError(f"{path}: the data no longer gives the same held-out set (files were added, removed or "
                            "renamed since the assessment started); choose a new --out")
        return
    if not files:
        raise DataError("the held-out set is empty: give a larger --holdout or more data")
    write_json(path, files)
