"""`hardsight evaluate RUN DATA [--checkpoint WHICH | --every-epoch] [--json]`."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer

from hardsight.cli import app
from hardsight.cli.options import BatchSizeOption, CheckpointOption, EngineOption, ThreadsOption, TtaOption
from hardsight.console import console


@app.command()
def evaluate(
    run: Annotated[Path, typer.Argument(help="Run folder.")],
    data: Annotated[Path, typer.Argument(help="Labelled folder or CSV, read with the run's labelling settings.")],
    as_json: Annotated[bool, typer.Option("--json", help="Print one JSON object (a list with --every-epoch).")] = False,
    checkpoint: CheckpointOption = "best",
    every_epoch: Annotated[bool, typer.Option(
        "--every-epoch", help="Score each epoch-N checkpoint (train --save-every-epoch) into RUN/evaluations/: "
                              "a test-set selection analysis, not a way to choose the model.")] = False,
    batch_size: BatchSizeOption = 64,
    engine: EngineOption = "auto",
    threads: ThreadsOption = None,
    tta: TtaOption = False,
) -> None:
    """Score a run on labelled data: exact match, char accuracy, CER (readers); accuracy, macro-F1, per class (classifiers)."""
    from hardsight.cli.summary import text_metrics_table
    from hardsight.engine.evaluator import evaluate as run_evaluation

    if every_epoch:
        _every_epoch(run, data, as_json, checkpoint, batch_size, engine, threads, tta)
        return
    ev = run_evaluation(run, data, batch_size=batch_size, engine=engine, threads=threads, tta=tta,
                        checkpoint=checkpoint)
    if as_json:
        typer.echo(json.dumps(ev.to_json()))
        return
    title = f"{run} on {data}" + ("" if checkpoint == "best" else f", {ev.weights.name}")
    if hasattr(ev, "unknown_classes"):  # an image classifier
        from hardsight.cli.summary import print_image_evaluation

        print_image_evaluation(ev, title + (" (flip TTA)" if ev.tta else ""))
        return
    console.print(text_metrics_table(ev.metrics, title))
    if ev.skipped.total:
        console.print(f"[yellow]{ev.skipped.total} files skipped[/yellow]")
    if ev.figure:
        console.print(f"sample predictions: {ev.figure}")


def _every_epoch(run: Path, data: Path, as_json: bool, checkpoint: str, batch_size: int, engine: str,
                 threads: int | None, tta: bool) -> None:
    """--every-epoch: the per-epoch table, under the warning that it must not choose the model."""
    from rich.table import Table

    from hardsight.engine.evaluator import SELECTION_WARNING, evaluate_every_epoch
    from hardsight.errors import ConfigError

    if checkpoint != "best" or engine == "onnx":
        raise ConfigError("--every-epoch scores each epoch's checkpoint with PyTorch: it takes no --checkpoint "
                          "and no --engine onnx")
    result = evaluate_every_epoch(run, data, batch_size=batch_size, threads=threads, tta=tta)
    if as_json:
        typer.echo(json.dumps(result.rows))
    else:
        table = Table(*result.rows[0], title=f"{run} on {data}, every epoch: a test-set selection analysis")
        for row in result.rows:
            table.add_row(*(str(v) if k == "epoch" else f"{v:.4f}" for k, v in row.items()))
        console.print(table)
        console.print(f"per epoch: {result.table}, {result.figure}")
    console.print(f"[yellow]{SELECTION_WARNING}[/yellow]", soft_wrap=True)
