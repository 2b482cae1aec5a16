"""`hardsight predict RUN PATH... [--json]`."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from hardsight.cli import app
from hardsight.cli.options import BatchSizeOption, CheckpointOption, EngineOption, ThreadsOption, TtaOption
from hardsight.console import console


@app.command()
def predict(
    run: Annotated[Path, typer.Argument(help="Run folder.")],
    paths: Annotated[list[str], typer.Argument(help="Image files, folders or globs.")],
    as_json: Annotated[bool, typer.Option("--json", help="Print a JSON list of {file, text, confidence}.")] = False,
    checkpoint: CheckpointOption = "best",
    batch_size: BatchSizeOption = 64,
    engine: EngineOption = "auto",
    threads: ThreadsOption = None,
    tta: TtaOption = False,
) -> None:
    """Read (text) or classify (image) files, folders or globs with a trained run."""
    from hardsight.engine.predictor import Predictor

    results = Predictor(run, batch_size=batch_size, engine=engine, threads=threads, tta=tta,
                        checkpoint=checkpoint).predict(paths)
    if as_json:
        typer.echo(json.dumps([r.to_json() for r in results]))
        return
    table = Table(*type(results[0]).columns) if results else Table("file")
    for r in results:
        table.add_row(*r.table_row())
    console.print(table)
