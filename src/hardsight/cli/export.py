"""`hardsight export RUN [--json]`: write RUN/model.onnx, checked against PyTorch."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer

from hardsight.cli import app
from hardsight.cli.options import CheckpointOption
from hardsight.console import console


@app.command()
def export(
    run: Annotated[Path, typer.Argument(help="Run folder.")],
    checkpoint: CheckpointOption = "best",
    samples: Annotated[int, typer.Option(help="Images of the run's split compared between PyTorch and ONNX.")] = 32,
    tta: Annotated[bool, typer.Option("--tta/--no-tta", help="Bake the horizontal-flip average into the graph "
                                                           "(image runs; predict then needs no --tta).")] = False,
    as_json: Annotated[bool, typer.Option("--json", help="Print one JSON object.")] = False,
) -> None:
    """Export the model to RUN/model.onnx (dynamic batch, and width for crnn readers) and check it against PyTorch."""
    from hardsight.engine.exporter import export as run_export

    result = run_export(run, checkpoint=checkpoint, samples=samples, tta=tta)
    if as_json:
        typer.echo(json.dumps(result.to_json()))
        return
    console.print(f"[green]wrote {result.path}[/green] ({result.size_mb:.1f} MB, opset {result.opset}, dynamic "
                  f"{' and '.join(result.dynamic_axes)}): {result.images_checked} images on "
                  f"{len(result.shapes_checked)} input shapes give the same answers as PyTorch, max probability "
                  f"difference {result.max_prob_diff:.1e}" + ("; the graph averages each image with its "
                                                               "horizontal flip" if tta else ""))
    if result.exporter != "dynamo":
        console.print(f"written by the {result.exporter} exporter, not torch.export: {result.exporter_note}")
