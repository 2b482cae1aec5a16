"""Seeded train/val/test splits, saved in the run folder as relative paths."""

from __future__ import annotations

import random
from typing import Sequence, TypeVar

from hardsight.errors import DataError

T = TypeVar("T")


def random_split(items: Sequence[T], fractions: tuple[float, float, float], seed: int) -> tuple[list[T], list[T], list[T]]:
    """Shuffle with `seed` and cut into train/val/test; every non-zero part gets at least one item."""
    n = len(items)
    order = list(range(n))
    random.Random(seed).shuffle(order)
    n_test = round(n * fractions[2]) if fractions[2] > 0 else 0
    n_val = round(n * fractions[1]) if fractions[1] > 0 else 0
    n_test = max(n_test, 1 if fractions[2] > 0 else 0)
    n_val = max(n_val, 1 if fractions[1] > 0 else 0)
    if n - n_val - n_test < 1:
        raise DataError(f"{n} examples are too few for a {fractions} split: need at least one in each part")
    test = [items[i] for i in order[:n_test]]
    val = [items[i] for i in order[n_test:n_test + n_val]]
    train = [items[i] for i in order[n_test + n_val:]]
    return train, val, test
