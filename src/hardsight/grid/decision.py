"""Which cells to choose from a grid's cell scores: the class threshold, and the grid's own prior on how many.

A grid is solved only when exactly the right cells are chosen, so a per-tile F1 threshold is not what a solver
wants: it is tuned here on synthetic grids of validation tiles, for the solve rate itself. A 3x3 challenge shows its
target in 1 to 4 cells (reCAPTCHA's, and the synthetic grids of grid/synthetic.py), so an answer of none, or of
more than four, is cut to that range by rank; a 4x4 cut from one photo has no such prior.
"""

from __future__ import annotations

import random
from typing import Sequence

import numpy as np

from hardsight.config import GRID_CELL_PRIOR, GRID_TUNING_GRIDS
from hardsight.grid.synthetic import NO_TARGET, draw_answer

CANDIDATES = np.linspace(0.05, 0.95, 19)  # the cut-offs tried, as tune_thresholds tries them for tiles


def prior_of(rows: int, cols: int) -> tuple[int, int] | None:
    """(fewest, most) target cells a rows x cols challenge shows, where a prior is known."""
    return GRID_CELL_PRIOR.get(f"{rows}x{cols}")


def choose_cells(scores: Sequence[float], threshold: float, bounds: tuple[int, int] | None = None) -> list[int]:
    """The cells at or over `threshold`; with `bounds` (fewest, most) the count is cut to that range by rank."""
    order = sorted(range(len(scores)), key=lambda i: -scores[i])
    chosen = [i for i in order if scores[i] >= threshold]
    if bounds is not None:
        fewest, most = bounds
        chosen = order[:max(fewest, min(most, len(chosen)))]
    return sorted(chosen)


def tune_grid_thresholds(probs, labels: list[list[int]], classes: Sequence[str], tile_thresholds: Sequence[float],
                         rows: int = 3, cols: int = 3, per_class: int = GRID_TUNING_GRIDS, seed: int = 0,
                         use_prior: bool = True) -> list[float]:
    """Per class, the cut-off that solves the most synthetic grids drawn from these (validation) tiles, with the
    grid's prior applied as `solve` applies it; a class no grid can ask for keeps its tile threshold.

    Args:
        probs: (N, C) probabilities of the tiles; labels: each tile's class indices.
    """
    probs = np.asarray(probs, dtype=np.float64)
    cells = rows * cols
    bounds = prior_of(rows, cols) if use_prior else None
    rng = random.Random(seed)
    out = []
    for j, name in enumerate(classes):
        pos = [i for i, labs in enumerate(labels) if j in labs]
        neg = [i for i, labs in enumerate(labels) if j not in labs]
        if name in NO_TARGET or not pos or len(neg) < cells:
            out.append(float(tile_thresholds[j]))
            continue
        scores, truth = np.empty((per_class, cells)), np.zeros((per_class, cells), dtype=bool)
        for g in range(per_class):
            chosen = set(draw_answer(rng, cells, len(pos)))
            scores[g] = [probs[rng.choice(pos) if c in chosen else rng.choice(neg), j] for c in range(cells)]
            truth[g, list(chosen)] = True
        solved = np.array([solve_rate(scores, truth, t, bounds) for t in CANDIDATES])
        tied = CANDIDATES[solved >= solved.max() - 1e-9]
        out.append(round(float(tied[(len(tied) - 1) // 2]), 3))  # the middle of a tie, as for tiles
    return out


def solve_rate(scores: np.ndarray, truth: np.ndarray, threshold: float, bounds: tuple[int, int] | None) -> float:
    """Share of grids (rows of `scores`, true cells in `truth`) answered exactly at `threshold`."""
    above = scores >= threshold
    if bounds is None:
        return float((above == truth).all(1).mean())
    count = np.clip(above.sum(1), *bounds)
    want = truth.sum(1)
    top = np.argsort(-scores, axis=1, kind="stable")
    ranked_right = np.array([truth[g, top[g, :want[g]]].all() for g in range(len(scores))])
    return float(((count == want) & ranked_right).mean())
