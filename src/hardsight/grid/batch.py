"""Many grids in one process: challenges from files, folders, globs or a CSV of answers, each solved with the model
loaded once, and the solve rate with its 95% interval (overall and per target) where the answers are known.

A CSV names one challenge per row, `file,target[,cells]`: the image (relative to the CSV's folder), the prompt,
and the true cells as space-separated row-major indices from 0 (the numbering of `solve --json`'s `selected`; an
empty value: no cell shows the target). Every row is checked before the first model run (files, targets, and the
true cells against the grid's layout), so a bad row is one line naming it, never a failure half-way through a batch.
"""

from __future__ import annotations

import csv
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterator, Sequence

from hardsight.data.io import expand_paths, read_csv_text
from hardsight.intervals import wilson
from hardsight.errors import ConfigError, DataError, UnknownTargetError
from hardsight.grid.layout import as_image, detect_grid, parse_grid
from hardsight.grid.solve import GridSolution, ImageClassifier, solve
from hardsight.grid.targets import resolve_target

CSV_COLUMNS = ("file", "target")  # required; `cells` is optional


@dataclass(frozen=True)
class Challenge:
    """One grid to solve: its image, the prompt, and where known the true cells (row-major from 0)."""

    file: Path
    target: str
    cells: frozenset[int] | None = None
    where: str = ""  # "grids.csv row 7": how errors name it

    @property
    def name(self) -> str:
        return self.where or str(self.file)


@dataclass
class Solved:
    """A challenge and the solver's answer; `correct` only where the true cells are known."""

    challenge: Challenge
    solution: GridSolution

    @property
    def correct(self) -> bool | None:
        if self.challenge.cells is None:
            return None
        return set(self.solution.selected) == set(self.challenge.cells)

    def to_json(self) -> dict[str, Any]:
        extra = {} if self.challenge.cells is None else {"cells": sorted(self.challenge.cells), "solved": self.correct}
        return {"file": str(self.challenge.file), **self.solution.to_json(), **extra}


@dataclass
class SolveRate:
    """How many grids were answered exactly (every true cell chosen, no other), overall and per target."""

    grids: int = 0
    answered: int = 0  # grids whose true cells were given
    solved: int = 0
    per_target: dict[str, list[int]] = field(default_factory=dict)  # target -> [solved, answered]
    seconds: float = 0.0  # from the rate's creation to its latest grid
    started: float = field(default_factory=time.perf_counter, repr=False)

    def add(self, done: Solved) -> None:
        self.grids += 1
        self.seconds = time.perf_counter() - self.started
        if done.correct is None:
            return
        self.answered += 1
        self.solved += done.correct
        counts = self.per_target.setdefault(done.solution.target, [0, 0])
        counts[0] += done.correct
        counts[1] += 1

    @property
    def rate(self) -> float | None:
        return self.solved / self.answered if self.answered else None

    def to_json(self) -> dict[str, Any]:
        interval = list(wilson(self.solved, self.answered)) if self.answered else None
        return {"grids": self.grids, "answered": self.answered, "solved": self.solved, "solve_rate": self.rate,
                "solve_rate_interval": interval, "seconds": round(self.seconds, 3),
                "grids_per_second": round(self.grids / self.seconds, 2) if self.seconds else None,
                "per_target": {t: {"solved": s, "grids": n, "solve_rate": s / n,
                                   "solve_rate_interval": list(wilson(s, n))}
                               for t, (s, n) in sorted(self.per_target.items())}}


def read_challenges(sources: Sequence[str | Path], target: str | None = None) -> list[Challenge]:
    """The challenges of image files, folders, globs (all with `target`) and CSVs of `file,target[,cells]`."""
    out: list[Challenge] = []
    images: list[str | Path] = []
    for source in sources:
        if str(source).lower().endswith(".csv"):
            out.extend(read_csv(Path(source), target))
        else:
            images.append(source)
    if images:
        if not target:
            raise ConfigError("--target is needed for grid images given without a CSV (say what to find, "
                              'e.g. --target buses), or give a CSV of file,target[,cells]')
        out.extend(Challenge(p, target) for p in expand_paths(images))
    if not out:
        raise DataError("no grids to solve: give image files, folders, globs or a CSV of file,target[,cells]")
    return out


def read_csv(path: Path, target: str | None = None) -> list[Challenge]:
    """One challenge per row; `target` fills rows that leave theirs empty. A bad row is a DataError naming it."""
    if not path.is_file():
        raise DataError(f"{path}: no such CSV file")
    reader = csv.DictReader(read_csv_text(path))
    columns = [c.strip() for c in reader.fieldnames or []]
    missing = [c for c in CSV_COLUMNS if c not in columns]
    if missing:
        raise DataError(f"{path}: missing column(s) {', '.join(missing)}; expected a header of file,target[,cells] "
                        f"(found: {', '.join(columns) or 'no header'})")
    has_cells = "cells" in columns
    out = []
    for row in reader:
        row = {(k or "").strip(): (v or "").strip() for k, v in row.items() if k is not None}
        where = f"{path} row {reader.line_num}"
        if not row.get("file"):
            raise DataError(f"{where}: the file column is empty")
        file = Path(row["file"]) if Path(row["file"]).is_absolute() else path.parent / row["file"]
        if not file.is_file():
            raise DataError(f"{where}: {row['file']} not found (files are relative to the CSV's folder)")
        prompt = row.get("target") or target
        if not prompt:
            raise DataError(f"{where}: the target column is empty (fill it, or pass --target for such rows)")
        out.append(Challenge(file, prompt, parse_cells(row.get("cells", ""), where) if has_cells else None, where))
    if not out:
        raise DataError(f"{path}: no rows under the header")
    return out


def parse_cells(text: str, where: str) -> frozenset[int]:
    """'0 4 8' -> {0, 4, 8}; commas or semicolons between indices are read too."""
    parts = text.replace(",", " ").replace(";", " ").split()
    try:
        cells = frozenset(int(p) for p in parts)
    except ValueError:
        raise DataError(f"{where}: cells {text!r} are not whole numbers; write row-major indices from 0 separated "
                        "by spaces, e.g. 0 4 8") from None
    if any(c < 0 for c in cells):
        raise DataError(f"{where}: cells {text!r}: indices count from 0")
    return cells


def plan(challenges: Sequence[Challenge], classes: Sequence[str],
         grid: str | tuple[int, int] = "auto") -> list[tuple[Challenge, str, str | tuple[int, int]]]:
    """Each challenge with its class and layout ("auto" where `solve` finds it), checked before any model run: a
    target the run does not know, or true cells outside the grid (its image then read), are named by row."""
    forced = parse_grid(grid)
    planned, known = [], {}
    for c in challenges:
        if c.target not in known:
            try:
                known[c.target] = resolve_target(c.target, classes)
            except UnknownTargetError as e:
                if not c.where:  # --target: the same for every grid, no row to name
                    raise
                raise UnknownTargetError(f"{c.where}: {e}") from None
        layout = forced
        if c.cells:  # the layout bounds the true cells: found here (one decode more) only where there are some
            rows, cols = layout = forced or detect_grid(as_image(c.file))
            if max(c.cells) >= rows * cols:
                raise DataError(f"{c.name}: cell {max(c.cells)} is outside the {rows}x{cols} grid "
                                f"(indices 0-{rows * cols - 1}, row-major)")
        planned.append((c, known[c.target], layout or "auto"))
    return planned


def solve_all(classifier: ImageClassifier, challenges: Sequence[Challenge], grid: str | tuple[int, int] = "auto",
              threshold: float | None = None, prior: bool = True) -> Iterator[Solved]:
    """Solve each challenge in turn with one loaded classifier (all of them planned and checked first)."""
    for challenge, target, layout in plan(challenges, classifier.classes, grid):
        yield Solved(challenge, solve(classifier, challenge.file, target, grid=layout, threshold=threshold,
                                      prior=prior))


def print_rate(rate: SolveRate) -> None:
    """The solve rate with its interval and the per-target rates, or how many grids were answered where no truth
    was given."""
    from rich.table import Table

    from hardsight.console import console

    speed = f" in {rate.seconds:.1f} s ({rate.grids / rate.seconds:.1f} grids/s)" if rate.seconds else ""
    if not rate.answered:
        console.print(f"{rate.grids} grids solved{speed}; no true cells given, so no solve rate "
                      "(a CSV of file,target,cells gives one)")
        return
    low, high = wilson(rate.solved, rate.answered)
    console.print(f"solve rate: {rate.solved}/{rate.answered} = {rate.rate:.1%} [95% interval {low:.1%}, "
                  f"{high:.1%}]{speed}")
    table = Table("target", "solved", "grids", "rate", "95% interval", title="per target")
    for target, (s, n) in sorted(rate.per_target.items()):
        lo, hi = wilson(s, n)
        table.add_row(target, str(s), str(n), f"{s / n:.1%}", f"{lo:.1%} - {hi:.1%}")
    console.print(table)
