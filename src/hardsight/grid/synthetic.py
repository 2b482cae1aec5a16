"""Synthetic grid challenges from labelled tiles: how a tile classifier's accuracy turns into a solve rate.

A tile scheme is broken when the whole grid is answered right (every target cell chosen, no other), so the solve
rate, not top-1, is what an attacker gets. Grids are drawn from held-out tiles: a target class shown in 1 to 4
cells (at most half of them), absent from the rest.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from typing import Sequence

from PIL import Image

from hardsight.data.image.labels import ImageItem
from hardsight.data.io import load_image
from hardsight.errors import DataError
from hardsight.grid.layout import assemble_grid

NO_TARGET = ("Other",)  # classes a challenge never asks for (reCAPTCHA's catch-all)
CELL_PX = 100  # side each tile is drawn at, as reCAPTCHA's 3x3 challenges show them


@dataclass(frozen=True)
class SyntheticGrid:
    items: list[ImageItem]  # row-major, one per cell
    target: str
    answer: list[int]  # 0-based row-major cells that show the target

    def image(self, rows: int, cols: int) -> Image.Image:
        return assemble_grid([load_image(it.path, "RGB").resize((CELL_PX, CELL_PX)) for it in self.items], rows, cols)


def synthetic_grids(items: Sequence[ImageItem], classes: Sequence[str], n: int, seed: int, rows: int = 3,
                    cols: int = 3) -> list[SyntheticGrid]:
    """n seeded grids of rows x cols tiles from `items`; each target is a class with a tile to show and enough
    tiles without it."""
    rng = random.Random(seed)
    cells = rows * cols
    targets = [c for c in classes if c not in NO_TARGET and any(c in it.labels for it in items)
               and sum(c not in it.labels for it in items) >= cells]
    if not targets:
        raise DataError(f"{len(items)} tiles: no class has both a tile to ask for and {cells} tiles without it")
    grids = []
    for _ in range(n):
        target = rng.choice(targets)
        pos = [it for it in items if target in it.labels]
        neg = [it for it in items if target not in it.labels]
        chosen = draw_answer(rng, cells, len(pos))
        grids.append(SyntheticGrid([rng.choice(pos) if i in chosen else rng.choice(neg) for i in range(cells)],
                                   target, chosen))
    return grids


def draw_answer(rng: random.Random, cells: int, positives: int) -> list[int]:
    """The cells (sorted, row-major) that show the target in one drawn grid: 1 to 4 of them, at most half the grid
    and no more than there are tiles of the target. The one rule of a synthetic answer, for scoring and tuning alike."""
    return sorted(rng.sample(range(cells), rng.randint(1, min(4, cells // 2, positives))))
