"""`hardsight evaluate RUN DATA [--json]`."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer

from hardsight.cli import app
from hardsight.console import console


@app.command()
def evaluate(
    run: Annotated[Path, typer.Argument(help="Run folder.")],
    data: Annotated[Path, typer.Argument(help="Labelled folder or CSV, read with the run's labelling settings.")],
    as_json: Annotated[bool, typer.Option("--json", help="Print one JSON object.")] = False,
    batch_size: Annotated[int, typer.Option(help="Images per batch.")] = 64,
) -> None:
    """Exact match, per-position char accuracy, CER, confusions, and a figure of samples."""
    from hardsight.cli.summary import text_metrics_table
    from hardsight.evaluate import evaluate as run_evaluation

    ev = run_evaluation(run, data, batch_size=batch_size)
    if as_json:
        typer.echo(json.dumps(ev.to_json()))
        return
    console.print(text_metrics_table(ev.metrics, f"{run} on {data}"))
    if ev.skipped.total:
        console.print(f"[yellow]{ev.skipped.total} files skipped[/yellow]")
    if ev.figure:
        console.print(f"sample predictions: {ev.figure}")
