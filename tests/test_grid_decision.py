"""The grid decision: thresholds tuned for the solve rate, and a 3x3's prior of 1-4 target cells."""

from __future__ import annotations

import numpy as np
import pytest

from hardsight.grid import solve
from hardsight.grid.decision import choose_cells, solve_rate, tune_grid_thresholds
from tests.test_grid import LAYOUT_3x3, ColourClassifier, grid_of


@pytest.mark.parametrize("scores, threshold, bounds, expected", [
    ([0.1, 0.9, 0.2, 0.3], 0.95, (1, 4), [1]),  # none passes: a 3x3 always shows its target, so the best cell
    ([0.1, 0.9, 0.2, 0.3], 0.95, None, []),
    ([0.9, 0.8, 0.7, 0.6, 0.95, 0.1], 0.5, (1, 4), [0, 1, 2, 4]),  # five pass: the four best
    ([0.9, 0.8, 0.7, 0.6, 0.95, 0.1], 0.5, None, [0, 1, 2, 3, 4]),
    ([0.2, 0.7, 0.6], 0.5, (1, 4), [1, 2]),  # within the range: the threshold alone decides
])
def test_choose_cells_cuts_the_count_to_the_prior_by_rank(scores, threshold, bounds, expected):
    assert choose_cells(scores, threshold, bounds) == expected


def test_solve_applies_the_3x3_prior_unless_told_not_to():
    grid = grid_of(LAYOUT_3x3, 3, 3, line_px=2)
    assert len(solve(ColourClassifier(), grid, "buses", threshold=1.0).selected) == 1
    assert solve(ColourClassifier(), grid, "buses", threshold=1.0, prior=False).selected == []
    everything = solve(ColourClassifier(), grid, "buses", threshold=0.0)
    assert len(everything.selected) == 4 and everything.prior == (1, 4)
    assert len(solve(ColourClassifier(), grid, "buses", threshold=0.0, prior=False).selected) == 9
    four = solve(ColourClassifier(), grid_of(LAYOUT_3x3 + LAYOUT_3x3[:7], 4, 4), "buses", grid="4x4", threshold=0.0)
    assert len(four.selected) == 16 and four.prior is None  # a 4x4 has no prior


def test_the_run_grid_threshold_is_preferred_to_its_tile_threshold():
    clf = ColourClassifier()
    clf.grid_thresholds = {**clf.thresholds, "Bus": 0.123}
    assert solve(clf, grid_of(LAYOUT_3x3, 3, 3), "buses").threshold == 0.123


def _tiles(n: int, seed: int):
    """Tiles of classes A, B and Other; A's probability is 0.72-0.9 on A tiles and at most 0.62 on the rest."""
    rng = np.random.default_rng(seed)
    labels = [[int(c)] for c in rng.integers(0, 3, n)]
    a = np.array([rng.uniform(0.72, 0.9) if lab == [0] else rng.uniform(0.0, 0.62) for lab in labels])
    return np.stack([a, (1 - a) / 2, (1 - a) / 2], 1), labels


def _grids(probs, labels, n: int, seed: int):
    """n 3x3 grids asking for A in 1-4 cells: (cell scores, true cells)."""
    rng = np.random.default_rng(seed)
    pos = [i for i, lab in enumerate(labels) if lab == [0]]
    neg = [i for i, lab in enumerate(labels) if lab != [0]]
    scores, truth = np.empty((n, 9)), np.zeros((n, 9), dtype=bool)
    for g in range(n):
        truth[g, rng.choice(9, rng.integers(1, 5), replace=False)] = True
        scores[g] = [probs[rng.choice(pos) if truth[g, c] else rng.choice(neg), 0] for c in range(9)]
    return scores, truth


def test_a_grid_threshold_lands_where_grids_are_solved():
    probs, labels = _tiles(600, seed=0)
    tile = [0.3, 0.5, 0.5]  # a tile threshold that picks doubtful cells
    tuned = tune_grid_thresholds(probs, labels, ["A", "B", "Other"], tile, seed=0)
    assert 0.62 < tuned[0] <= 0.72 and tuned[2] == 0.5  # a challenge never asks for Other: its tile threshold
    assert tuned == tune_grid_thresholds(probs, labels, ["A", "B", "Other"], tile, seed=0)  # seeded
    scores, truth = _grids(*_tiles(600, seed=1), 400, seed=2)  # other tiles, other grids
    assert solve_rate(scores, truth, tuned[0], (1, 4)) == 1.0
    assert solve_rate(scores, truth, tile[0], (1, 4)) < 0.5 and solve_rate(scores, truth, tile[0], None) < 0.1


def test_a_class_no_grid_can_ask_for_keeps_its_tile_threshold():
    probs = np.array([[0.9, 0.1]] * 5 + [[0.2, 0.8]] * 3)
    labels = [[0]] * 5 + [[1]] * 3
    assert tune_grid_thresholds(probs, labels, ["A", "B"], [0.4, 0.6]) == [0.4, 0.6]  # too few tiles without it
