"""`hardsight landmarks DATA --out LMK [--detector hog|cnn] [--workers N] [--shard i/n] [--json]`."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer

from hardsight.cli import app
from hardsight.cli.options import ShardOption


FaceFiles = Annotated[Path, typer.Argument(exists=True, help="Images (folders searched recursively), a CSV with a "
                                                             "`file` column, or a folder holding labels.csv + images/.")]


@app.command()
def landmarks(
    data: FaceFiles,
    out: Annotated[Path, typer.Option(help="New folder: <same folders>/<stem>_lnd.npy per image + landmarks.csv.")],
    detector: Annotated[str, typer.Option(help="hog (fast, frontal) or cnn (more poses, slower).")] = "hog",
    workers: Annotated[int, typer.Option(min=1, help="Worker processes.")] = 1,
    shard: ShardOption = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print one JSON object: counts, files without a face.")] = False,
) -> None:
    """Find each face's 68 landmarks (dlib, iBUG layout); a rerun skips files already done."""
    from hardsight.faces.jobs import find_landmarks, print_job
    from hardsight.jobs.shards import parse_shard

    result = find_landmarks(data, out, detector=detector, workers=workers, shard=parse_shard(shard))
    if as_json:
        typer.echo(json.dumps(result.to_json()))
    else:
        print_job(result)
