"""`hardsight assess text|image DATA --out REPORT`: the attack-cost curve of a CAPTCHA scheme."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer

from hardsight.config import read_settings

app = typer.Typer(no_args_is_help=True, help="How breakable is a CAPTCHA scheme: labels, minutes and money to a "
                                             "solve rate, beside zero-shot solvers.")

Out = Annotated[Path, typer.Option(help="Report folder; rerun the same command to finish an interrupted assessment "
                                        "(finished points are not trained again).")]
Sizes = Annotated[str, typer.Option(help="Labelled-set sizes, comma-separated; 'all' is every image not held out. "
                                         "Each set holds every smaller one.")]
Budget = Annotated[float, typer.Option(help="Training minutes for all sizes together: each point gets an equal share "
                                            "of what is left.")]
Holdout = Annotated[float, typer.Option(help="Fraction of the data held out (seeded, never trained on).")]
Seed = Annotated[int, typer.Option(help="Seed of the held-out cut, the subsets and the runs.")]
Model = Annotated[Optional[str], typer.Option(help="The recipe's model (default: the task's default).")]
Config = Annotated[Optional[Path], typer.Option(exists=True, dir_okay=False, help=(
    "YAML of training settings for every point (a tune search's best.yaml, ...); flags override it."))]
Baselines = Annotated[bool, typer.Option("--baselines/--no-baselines",
                                         help="Score the zero-shot solvers that are installed (ddddocr).")]
CorePrice = Annotated[Optional[float], typer.Option(help="Your price of one CPU core for an hour: adds a cost estimate.")]
LabelPrice = Annotated[Optional[float], typer.Option(help="Your price of labelling one example: adds a cost estimate.")]
AsJson = Annotated[bool, typer.Option("--json", help="Print assess.json instead of the table.")]


@app.command()
def text(
    data: Annotated[Path, typer.Argument(exists=True, help="Folder of CAPTCHAs named by their text, or a CSV "
                                                           "(file,label).")],
    out: Out,
    label_pattern: Annotated[Optional[str], typer.Option(help=r"Regex on the file stem, e.g. '(.+)-\d+$'.")] = None,
    lowercase: Annotated[bool, typer.Option(help="Fold labels to lower case.")] = False,
    charset: Annotated[Optional[str], typer.Option(help="Allowed characters (default: from the labels).")] = None,
    sizes: Sizes = "50,100,250,500,1000,all",
    budget_minutes: Budget = 60.0,
    holdout: Holdout = 0.2,
    seed: Seed = 0,
    model: Model = None,
    config: Config = None,
    baselines: Baselines = True,
    core_hour_price: CorePrice = None,
    label_price: LabelPrice = None,
    as_json: AsJson = False,
) -> None:
    """Train a reader on nested labelled subsets; score exact match on one held-out set, beside ddddocr."""
    _run("text", data, out, locals())


@app.command()
def image(
    data: Annotated[Path, typer.Argument(exists=True, help="Tile class folders (DATA/<class>/*.jpg) or a CSV "
                                                           "(file,label[,group]).")],
    out: Out,
    grid: Annotated[str, typer.Option(help="The challenge's grid, ROWSxCOLS.")] = "3x3",
    grids: Annotated[int, typer.Option(help="Synthetic grids drawn from held-out tiles for the solve rate.")] = 200,
    sizes: Sizes = "50,100,250,500,1000,all",
    budget_minutes: Budget = 60.0,
    holdout: Holdout = 0.2,
    seed: Seed = 0,
    model: Model = None,
    config: Config = None,
    core_hour_price: CorePrice = None,
    label_price: LabelPrice = None,
    as_json: AsJson = False,
) -> None:
    """Train a tile classifier on nested labelled subsets; score whole synthetic grids of held-out tiles."""
    options = dict(locals())
    from hardsight.grid import parse_grid

    options["grid"] = parse_grid(grid)
    if options["grid"] is None:
        raise typer.BadParameter("--grid: give ROWSxCOLS (e.g. 3x3), not auto")
    _run("image", data, out, options)


def _run(task: str, data: Path, out: Path, options: dict) -> None:
    from hardsight.assess.assessment import AssessConfig, assess
    from hardsight.assess.curve import parse_sizes
    from hardsight.assess.report import print_assessment

    config, as_json = options.pop("config"), options.pop("as_json")
    for k in ("data", "out", "task"):
        options.pop(k, None)
    options["sizes"] = parse_sizes(options["sizes"])
    settings = read_settings(config) if config else {}
    cfg = AssessConfig(task, str(data), str(out), settings=settings, **options)
    result = assess(cfg)
    if as_json:
        typer.echo((result.out / "assess.json").read_text())
    else:
        print_assessment(result)


__all__ = ["app"]
