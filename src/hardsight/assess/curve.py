"""The attack-cost curve's arithmetic: nested labelled subsets and the labels needed for a rate.

Pure functions over lists and numbers (no models, no files), so each can be checked by hand.
"""

from __future__ import annotations

import math
import random
from dataclasses import dataclass
from typing import Callable, Hashable, Sequence, TypeVar

from hardsight.errors import ConfigError, DataError

T = TypeVar("T")

VAL_EVERY = 10  # every 10th labelled group validates (early stopping, the best checkpoint); the rest train


def nested_order(items: Sequence[T], seed: int, group_of: Callable[[T], Hashable]) -> list[list[T]]:
    """The items as seeded-shuffled groups (items sharing a group stay together, in their order): the first k
    groups are the labelled set of every size, so each larger set holds each smaller one."""
    groups: dict[Hashable, list[T]] = {}
    for it in items:
        groups.setdefault(group_of(it), []).append(it)
    order = list(groups.values())
    random.Random(seed).shuffle(order)
    return order


def labelled_subset(order: list[list[T]], size: int) -> tuple[list[T], list[T]]:
    """(train, val) of the first groups of `order` that hold at least `size` items (a group is never cut); every
    VAL_EVERY-th of those groups validates, at least one, so a larger subset keeps the smaller one's parts."""
    taken, count = [], 0
    for group in order:
        if count >= size:
            break
        taken.append(group)
        count += len(group)
    if len(taken) < 2:
        raise DataError(f"a labelled set of {size} holds {len(taken)} group(s): at least two are needed, one to "
                        "train on and one to validate")
    val_at = {i for i in range(len(taken)) if i % VAL_EVERY == VAL_EVERY - 1} or {len(taken) - 1}
    train = [it for i, g in enumerate(taken) if i not in val_at for it in g]
    val = [it for i, g in enumerate(taken) if i in val_at for it in g]
    return train, val


def parse_sizes(text: str) -> tuple[int | None, ...]:
    """"50,100,all" -> (50, 100, None); None is every labelled image that is not held out."""
    sizes: list[int | None] = []
    for part in (p.strip() for p in text.split(",")):
        if not part:
            continue
        if part == "all":
            sizes.append(None)
        elif part.isdigit() and int(part) >= 2:
            sizes.append(int(part))
        else:
            raise ConfigError(f"--sizes {text!r}: {part!r} is not a number of labelled images (at least 2) or 'all'")
    if not sizes:
        raise ConfigError(f"--sizes {text!r}: no sizes given")
    return tuple(sizes)


def resolve_sizes(sizes: Sequence[int | None], pool: int) -> tuple[list[int], list[int]]:
    """(sizes to train, sizes left out) for a pool of `pool` labelled images: ascending, 'all' as the pool, sizes
    at or over the pool replaced by it; refuses a pool smaller than the smallest size."""
    counts = sorted({s for s in sizes if s is not None})
    if counts and counts[0] > pool:
        raise DataError(f"{pool} labelled images outside the held-out set: fewer than the smallest size "
                        f"{counts[0]}; give smaller --sizes or more data")
    wanted = sorted({pool if s is None else s for s in sizes})
    kept = sorted({min(s, pool) for s in wanted})
    return kept, [s for s in wanted if s > pool]


@dataclass(frozen=True)
class Reached:
    """How many labels a rate takes, read off the curve."""

    target: float
    labels: float | None  # None: no point reached the target
    between: tuple[int, int] | None  # the two sizes it was interpolated between; None when read at a point
    note: str  # in words, for the report

    def to_json(self) -> dict:
        return {"target": self.target, "labels": self.labels, "between": list(self.between) if self.between else None,
                "note": self.note}


def labels_to(curve: Sequence[tuple[int, float]], target: float) -> Reached:
    """Labels needed for `target` on a curve of (labels, rate) points: interpolated linearly in log(labels)
    between the last point below the target and the first at or above it (the rate grows about linearly in the
    logarithm of the labels over a curve's middle); at or below the smallest size when that already reaches it."""
    points = sorted(curve)
    if not points:
        return Reached(target, None, None, "no points")
    hit = next((i for i, (_, rate) in enumerate(points) if rate >= target), None)
    if hit is None:
        n, best = max(points, key=lambda p: (p[1], -p[0]))
        return Reached(target, None, None, f"not reached: best {best:.1%} with {n:,} labels")
    n1, r1 = points[hit]
    if hit == 0:
        return Reached(target, float(n1), None, f"at most {n1:,} (the smallest size tried already reached {r1:.1%})")
    n0, r0 = points[hit - 1]  # below the target: every point before `hit` is
    frac = (target - r0) / (r1 - r0) if r1 > r0 else 1.0
    labels = math.exp(math.log(n0) + frac * (math.log(n1) - math.log(n0)))
    return Reached(target, labels, (n0, n1), f"about {labels:,.0f} (between {n0:,} labels: {r0:.1%} and "
                                             f"{n1:,}: {r1:.1%})")


def first_reaching(curve: Sequence[tuple[int, float, float]], target: float) -> tuple[int, float] | None:
    """(labels, training minutes) of the smallest labelled set whose rate reaches `target`, from (labels, rate,
    minutes) points; None when none does. Minutes are not interpolated: they depend on the budget's share."""
    for labels, rate, minutes in sorted(curve):
        if rate >= target:
            return labels, minutes
    return None
