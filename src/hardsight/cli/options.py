"""Options several verbs share."""

from __future__ import annotations

from typing import Annotated, Optional

import typer

ShardOption = Annotated[Optional[str], typer.Option(
    "--shard", metavar="i/n",
    help="Do only shard i of n (0-based: 0/4 ... 3/4), for a cluster array job writing into one OUT; "
         "`auto` reads SLURM_ARRAY_TASK_ID and SLURM_ARRAY_TASK_COUNT.")]


# what the verbs that load a trained run (evaluate, predict, solve, export, serve) take alike
CheckpointOption = Annotated[str, typer.Option(
    "--checkpoint", metavar="best|last|epoch-N|PATH",
    help="Which weights: best (validation), last, epoch-N (kept by train --save-every-epoch) or a .ckpt file.")]
BatchSizeOption = Annotated[int, typer.Option("--batch-size", help="Images per batch.")]
EngineOption = Annotated[str, typer.Option(
    "--engine", help="onnx, torch, or auto (ONNX Runtime if RUN/model.onnx was exported from --checkpoint).")]
ThreadsOption = Annotated[Optional[int], typer.Option("--threads",
                                                      help="CPU threads for the model (default: all cores).")]
TtaOption = Annotated[bool, typer.Option("--tta/--no-tta",
                                         help="Average each image with its horizontal flip (image runs).")]


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
