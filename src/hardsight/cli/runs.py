"""`hardsight runs [DIR] [--sort KEY] [--desc/--asc] [--task text|image] [--json]`."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Optional

import typer

from hardsight.cli import app


@app.command()
def runs(
    folder: Annotated[Path, typer.Argument(metavar="DIR", help="Searched recursively for run folders.")] = Path("runs"),
    sort: Annotated[str, typer.Option(help="Column: created, model, lr, cer, accuracy, minutes, ...")] = "created",
    descending: Annotated[Optional[bool], typer.Option("--desc/--asc", show_default=False, help="Sort direction; "
                          "by default best first for exact_match, accuracy and macro_f1, else ascending.")] = None,
    task: Annotated[Optional[str], typer.Option(help="Only text or only image runs.")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print one JSON list, an object per run.")] = False,
) -> None:
    """List run folders: key settings, final test metrics, training time, whether model.onnx exists."""
    from hardsight.runs.listing import list_runs, print_runs

    rows = list_runs(folder, sort=sort, descending=descending, task=task)
    if as_json:
        typer.echo(json.dumps([r.to_json() for r in rows]))
    else:
        print_runs(rows, folder, sort)
