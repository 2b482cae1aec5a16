"""Options several verbs share."""

from __future__ import annotations

from typing import Annotated, Optional

import typer

ShardOption = Annotated[Optional[str], typer.Option(
    "--shard", metavar="i/n",
    help="Do only shard i of n (0-based: 0/4 ... 3/4), for a cluster array job writing into one OUT; "
         "`auto` reads SLURM_ARRAY_TASK_ID and SLURM_ARRAY_TASK_COUNT.")]


def split_fractions(value: str | None) -> tuple[float, float, float] | None:
    """`--split 0.8,0.1,0.1` -> three fractions (None when not given)."""
    if value is None:
        return None
    try:
        parts = tuple(float(v) for v in value.split(","))
    except ValueError:
        raise typer.BadParameter(f"{value!r}: expected three fractions like 0.8,0.1,0.1") from None
    if len(parts) != 3:
        raise typer.BadParameter(f"{value!r}: expected three fractions like 0.8,0.1,0.1")
    return parts  # type: ignore[return-value]
