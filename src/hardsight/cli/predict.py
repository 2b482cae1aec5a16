"""`hardsight predict RUN PATH... [--json]`."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from hardsight.cli import app
from hardsight.console import console


@app.command()
def predict(
    run: Annotated[Path, typer.Argument(help="Run folder.")],
    paths: Annotated[list[str], typer.Argument(help="Image files, folders or globs.")],
    as_json: Annotated[bool, typer.Option("--json", help="Print a JSON list of {file, text, confidence}.")] = False,
    batch_size: Annotated[int, typer.Option(help="Images per batch.")] = 64,
) -> None:
    """Read images with a trained reader."""
    from hardsight.predict import Predictor

    results = Predictor(run, batch_size=batch_size).predict(paths)
    if as_json:
        typer.echo(json.dumps([r.to_json() for r in results]))
        return
    table = Table("file", "text", "confidence")
    for r in results:
        table.add_row(r.file, r.text if not r.error else f"[red]{r.error}[/red]", f"{r.confidence:.3f}")
    console.print(table)
