"""`hardsight solve RUN GRIDS... [--target NAME] [--grid 3x3|4x4|auto] [--annotate PATH] [--json]`."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Optional

import typer

from hardsight.cli import app
from hardsight.cli.options import CheckpointOption, EngineOption, ThreadsOption, TtaOption
from hardsight.config import GRID_CELL_PRIOR


@app.command()
def solve(
    run: Annotated[Path, typer.Argument(help="Run folder of an image classifier.")],
    grids: Annotated[list[str], typer.Argument(
        metavar="GRIDS...", help="Challenge images, folders or globs (with --target), or a CSV of "
        "file,target[,cells]: cells are the true ones, space-separated row-major indices from 0.")],
    target: Annotated[Optional[str], typer.Option(
        help='What to find, as the prompt says it: "buses", "a fire hydrant" (a CSV row\'s own target wins).')] = None,
    grid: Annotated[str, typer.Option(help="auto (tells 3x3 from 4x4), or ROWSxCOLS like 3x3.")] = "auto",
    threshold: Annotated[Optional[float], typer.Option(
        help="Probability a cell needs (default: the run's, tuned on validation grids).")] = None,
    prior: Annotated[bool, typer.Option(
        "--prior/--no-prior", help="Cut the answer to the cells a challenge shows its target in, by rank ("
        + ", ".join(f"{g}: {a}-{b}" for g, (a, b) in GRID_CELL_PRIOR.items()) + ").")] = True,
    annotate: Annotated[Optional[Path], typer.Option(
        help="Write each grid with its chosen cells marked: a file for one grid, else a folder (one PNG per "
        "grid).")] = None,
    checkpoint: CheckpointOption = "best",
    engine: EngineOption = "auto",
    threads: ThreadsOption = None,
    tta: TtaOption = False,
    as_json: Annotated[bool, typer.Option("--json", help=(
        "Print one JSON object per grid per line (file, target, selected, positions, scores; cells and solved where "
        "the true cells are known), then, for several grids or known cells, one {\"summary\": ...} with the solve "
        "rate and its 95% interval."))] = False,
) -> None:
    """Which cells of grid CAPTCHAs show the target: one grid, or many with the model loaded once and, where the
    true cells are given, the solve rate."""
    from hardsight.engine.predictor import Predictor
    from hardsight.errors import RunError
    from hardsight.grid.batch import read_challenges, solve_all

    challenges = read_challenges(grids, target)  # every row checked before the model loads
    classifier = Predictor(run, engine=engine, threads=threads, tta=tta, checkpoint=checkpoint)
    if not hasattr(classifier, "classes"):  # a reader: solving needs class probabilities
        raise RunError(f"{run} is a {classifier.task} reader; solve needs an image classifier run "
                       "(hardsight train image)")
    answers = solve_all(classifier, challenges, grid=grid, threshold=threshold, prior=prior)
    if len(challenges) == 1 and challenges[0].cells is None:
        print_one(next(iter(answers)), annotate, as_json)
    else:
        print_many(answers, len(challenges), annotate, as_json)


def print_one(done, annotate: Path | None, as_json: bool) -> None:
    """One grid: its JSON object, or its table of cell scores; --annotate is the file to write."""
    from hardsight.grid import annotate as draw_solution, print_solution

    drawn = draw_solution(done.challenge.file, done.solution, annotate) if annotate else None
    if as_json:
        typer.echo(json.dumps(done.to_json()))
    else:
        print_solution(done.solution, f"{done.solution.target} in {done.challenge.file.name}", drawn)


def print_many(answers, count: int, folder: Path | None, as_json: bool) -> None:
    """Several grids: a JSON line each and a summary line, or one table and the solve rate; --annotate is a folder."""
    from rich.table import Table

    from hardsight.console import console
    from hardsight.grid import annotate as draw_solution
    from hardsight.grid.batch import SolveRate, print_rate
    from hardsight.jobs.manifest import track_progress

    rate = SolveRate()
    table = Table("file", "target", "selected", "true cells", "solved", title=f"{count} grids")
    for done in track_progress(answers, count, "solving grids", console.is_terminal and not as_json):
        rate.add(done)
        image, solution = done.challenge.file, done.solution
        if folder is not None:
            draw_solution(image, solution, folder / annotated_name(image))
        if as_json:
            typer.echo(json.dumps(done.to_json()))
            continue
        truth = "-" if done.challenge.cells is None else " ".join(map(str, sorted(done.challenge.cells)))
        verdict = {None: "-", True: "[green]yes[/green]", False: "[red]no[/red]"}[done.correct]
        table.add_row(image.name, solution.target, " ".join(map(str, solution.selected)) or "none", truth, verdict)
    if as_json:
        typer.echo(json.dumps({"summary": rate.to_json()}))
        return
    console.print(table)
    if folder is not None:
        console.print(f"annotated grids: {folder}")
    print_rate(rate)


def annotated_name(image: Path) -> str:
    """`grids/grid_7.jpg` -> `grids-grid_7.png`: the folder's name in front, so grids of two folders never share one."""
    return f"{image.resolve().parent.name}-{image.stem}.png"
