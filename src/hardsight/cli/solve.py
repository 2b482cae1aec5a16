"""`hardsight solve RUN GRID --target NAME [--grid 3x3|4x4|auto] [--annotate out.png] [--json]`."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Optional

import typer

from hardsight.cli import app
from hardsight.cli.options import CheckpointOption, EngineOption, ThreadsOption, TtaOption


@app.command()
def solve(
    run: Annotated[Path, typer.Argument(help="Run folder of an image classifier.")],
    image: Annotated[Path, typer.Argument(metavar="GRID", exists=True, dir_okay=False, help="The challenge image.")],
    target: Annotated[str, typer.Option(help='What to find, as the prompt says it: "buses", "a fire hydrant".')],
    grid: Annotated[str, typer.Option(help="auto (tells 3x3 from 4x4), or ROWSxCOLS like 3x3.")] = "auto",
    threshold: Annotated[Optional[float], typer.Option(help="Probability a cell needs (default: the run's).")] = None,
    annotate: Annotated[Optional[Path], typer.Option(help="Write the grid with chosen cells marked.")] = None,
    checkpoint: CheckpointOption = "best",
    engine: EngineOption = "auto",
    threads: ThreadsOption = None,
    tta: TtaOption = False,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON: target, selected, positions, scores.")] = False,
) -> None:
    """Which cells of a grid CAPTCHA show the target."""
    from hardsight.errors import RunError
    from hardsight.grid import annotate as draw_solution, print_solution, solve as solve_grid
    from hardsight.engine.predictor import Predictor

    classifier = Predictor(run, engine=engine, threads=threads, tta=tta, checkpoint=checkpoint)
    if not hasattr(classifier, "classes"):  # a reader: solving needs class probabilities
        raise RunError(f"{run} is a {classifier.task} reader; solve needs an image classifier run "
                       "(hardsight train image)")
    solution = solve_grid(classifier, image, target, grid=grid, threshold=threshold)
    if annotate:
        draw_solution(image, solution, annotate)
    if as_json:
        typer.echo(json.dumps(solution.to_json()))
    else:
        print_solution(solution, f"{solution.target} in {image.name}", annotate)
