"""`hardsight balance DATA OUT --per-class N [--seed S] [--resume] [--shard i/n] [--json]`."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer

from hardsight.cli import app
from hardsight.cli.options import ShardOption


@app.command()
def balance(
    data: Annotated[Path, typer.Argument(exists=True, file_okay=False, help="Class folders: DATA/<class>/*.jpg.")],
    out: Annotated[Path, typer.Argument(help="New folder for the balanced set (DATA is only read).")],
    per_class: Annotated[int, typer.Option(min=1, help="Images per class in OUT.")],
    seed: Annotated[int, typer.Option(help="Seed for the sample and the augmentations.")] = 0,
    resume: Annotated[bool, typer.Option(help="Finish an interrupted job in OUT, from its manifest.")] = False,
    shard: ShardOption = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON: counts per class, unreadable files.")] = False,
) -> None:
    """Oversample with augmentation (rotation, skew, mirror, brightness, contrast): N images per class."""
    from hardsight.data.balance import balance as run_balance, print_balance
    from hardsight.jobs.shards import parse_shard

    result = run_balance(data, out, per_class, seed=seed, resume=resume, shard=parse_shard(shard))
    if as_json:
        typer.echo(json.dumps(result.to_json()))
    else:
        print_balance(result)
