"""`hardsight occlude DATA OUT --occluder vr-headset [--landmarks LMK] [--area 0.2] [--workers N] [--shard i/n]`."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Optional

import typer

from hardsight.cli import app
from hardsight.cli.landmarks import FaceFiles
from hardsight.cli.options import ShardOption


@app.command()
def occlude(
    data: FaceFiles,
    out: Annotated[Path, typer.Argument(help="New folder mirroring DATA (same names, sizes, formats).")],
    occluder: Annotated[str, typer.Option(help="vr-headset, lower-face, eyes-bar or random-patch.")] = "vr-headset",
    landmarks: Annotated[Optional[Path], typer.Option(help="Folder of <stem>_lnd.npy (hardsight landmarks); "
                                                           "images without one are detected.")] = None,
    area: Annotated[float, typer.Option(help="random-patch: fraction of the face box it covers.")] = 0.2,
    seed: Annotated[int, typer.Option(help="Seed for random-patch positions.")] = 0,
    detector: Annotated[str, typer.Option(help="Face detector when landmarks are found on the fly: hog or cnn.")] = "hog",
    workers: Annotated[int, typer.Option(min=1, help="Worker processes.")] = 1,
    shard: ShardOption = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print one JSON object: counts, files without a face.")] = False,
) -> None:
    """Draw an occluder on a copy of every face; originals untouched, a rerun skips files already done."""
    from hardsight.faces.jobs import occlude as run_occlude, print_job
    from hardsight.jobs.shards import parse_shard

    result = run_occlude(data, out, occluder, landmarks, area=area, seed=seed, detector=detector, workers=workers,
                         shard=parse_shard(shard))
    if as_json:
        typer.echo(json.dumps(result.to_json()))
    else:
        print_job(result)
