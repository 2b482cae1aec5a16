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
    engine: Annotated[str, typer.Option(help="onnx, torch, or auto (ONNX Runtime if RUN/model.onnx is current).")] = "auto",
    threads: Annotated[int | None, typer.Option(help="CPU threads for the model (default: all cores).")] = None,
    tta: Annotated[bool, typer.Option("--tta/--no-tta",
                                      help="Average each image with its horizontal flip (image runs).")] = False,
) -> None:
    """Score a run on labelled data: exact match, char accuracy, CER (readers); accuracy, macro-F1, per class (classifiers)."""
    from hardsight.cli.summary import text_metrics_table
    from hardsight.engine.evaluator import evaluate as run_evaluation

    ev = run_evaluation(run, data, batch_size=batch_size, engine=engine, threads=threads, tta=tta)
    if as_json:
        typer.echo(json.dumps(ev.to_json()))
        return
    if hasattr(ev, "unknown_classes"):  # an image classifier
        from hardsight.cli.summary import print_image_evaluation

        print_image_evaluation(ev, f"{run} on {data}" + (" (flip TTA)" if ev.tta else ""))
        return
    console.print(text_metrics_table(ev.metrics, f"{run} on {data}"))
    if ev.skipped.total:
        console.print(f"[yellow]{ev.skipped.total} files skipped[/yellow]")
    if ev.figure:
        console.print(f"sample predictions: {ev.figure}")
