"""Seeded train/val/test splits, saved in the run folder as relative paths."""

from __future__ import annotations

from typing import Sequence, TypeVar

from hardsight.errors import DataError

T = TypeVar("T")


def random_split(items: Sequence[T], fractions: tuple[float, float, float], seed: int) -> tuple[list[T], list[T], list[T]]:
    """Seeded train/val/test cut; every non-zero part gets at least one item.

    scikit-learn's train_test_split, as in the image task's split, cuts test off, then val off the rest; the sizes go
    in as counts, so each part is round(n * fraction) whatever the rounding of the second cut would be."""
    from sklearn.model_selection import train_test_split

    n = len(items)
    n_test = max(round(n * fractions[2]), 1) if fractions[2] > 0 else 0
    n_val = max(round(n * fractions[1]), 1) if fractions[1] > 0 else 0
    if n - n_val - n_test < 1:
        raise DataError(f"{n} examples are too few for a {fractions} split: need at least one in each part")
    rest, test = train_test_split(list(items), test_size=n_test, random_state=seed) if n_test else (list(items), [])
    train, val = train_test_split(rest, test_size=n_val, random_state=seed) if n_val else (rest, [])
    return train, val, test
