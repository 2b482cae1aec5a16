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
    engine: Annotated[str, typer.Option(help="onnx, torch, or auto (ONNX Runtime if RUN/model.onnx is current).")] = "auto",
    threads: Annotated[int | None, typer.Option(help="CPU threads for the model (default: all cores).")] = None,
    tta: Annotated[bool, typer.Option("--tta/--no-tta",
                                      help="Average each image with its horizontal flip (image runs).")] = False,
) -> None:
    """Read (text) or classify (image) files, folders or globs with a trained run."""
    from hardsight.engine.predictor import Predictor

    results = Predictor(run, batch_size=batch_size, engine=engine, threads=threads, tta=tta).predict(paths)
    if as_json:
        typer.echo(json.dumps([r.to_json() for r in results]))
        return
    table = Table(*type(results[0]).columns) if results else Table("file")
    for r in results:
        table.add_row(*r.table_row())
    console.print(table)
