"""The 95% interval every measured rate is given with (exact match, accuracy, a solve rate, an attack curve's points).

Pure arithmetic on counts, below every layer, so metrics, grids and assessments share one definition.
"""

from __future__ import annotations

import math

Z95 = 1.959963984540054  # the normal quantile of a two-sided 95% interval


def wilson(successes: int, n: int, z: float = Z95) -> tuple[float, float]:
    """The Wilson score interval of a rate: unlike the normal approximation it stays inside [0, 1] and is honest
    at 0% and 100%, where an attack curve starts and a good reader ends."""
    if n <= 0:
        return 0.0, 1.0
    p = successes / n
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    # exact at the ends: floating point would leave 0% a hair above its own floor and 100% under its ceiling
    return (0.0 if successes == 0 else max(0.0, centre - half)), (1.0 if successes == n else min(1.0, centre + half))


def rate_interval(rate: float, n: int) -> list[float]:
    """The 95% Wilson interval of a rate measured on `n` items, as the [low, high] pair the JSON outputs carry."""
    return list(wilson(round(rate * n), n))
