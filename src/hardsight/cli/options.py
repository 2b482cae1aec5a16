"""Options several verbs share."""

from __future__ import annotations

from typing import Annotated, Optional

import typer

ShardOption = Annotated[Optional[str], typer.Option(
    "--shard", metavar="i/n",
    help="Do only shard i of n (0-based: 0/4 ... 3/4), for a cluster array job writing into one OUT; "
         "`auto` reads SLURM_ARRAY_TASK_ID and SLURM_ARRAY_TASK_COUNT.")]
