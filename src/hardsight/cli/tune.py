"""`hardsight tune text|image DATA --space SPACE.yaml --trials N --out TUNE`: an Optuna search, one run folder a trial."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer

from hardsight.cli import app
from hardsight.cli.options import split_fractions
from hardsight.cli.train import key_values
from hardsight.console import console


@app.command("tune")
def tune(
    task: Annotated[str, typer.Argument(help="text or image.")],
    data: Annotated[Path, typer.Argument(exists=True, help="The training data, as for `hardsight train TASK`.")],
    out: Annotated[Path, typer.Option(help="Search folder (study.db, trials/, trials.csv, report.md); "
                                           "rerun the same command to resume.")],
    space: Annotated[Optional[Path], typer.Option(exists=True, dir_okay=False, help="Search space YAML "
                                                  "(default: the task's, in hardsight/tune_spaces/).")] = None,
    trials: Annotated[int, typer.Option(min=1, help="Finished trials wanted, counting earlier runs of the search.")] = 20,
    max_minutes: Annotated[Optional[float], typer.Option(help="Budget of this search: no trial starts after it.")] = None,
    trial_minutes: Annotated[Optional[float], typer.Option(help="Wall-clock budget of each trial.")] = None,
    epochs: Annotated[int, typer.Option(help="Most epochs per trial (pruning and early stopping end many sooner).")] = 20,
    model: Annotated[Optional[str], typer.Option(help="Model (default: the one the default search space is for: crnn for text, compact for image).")] = None,
    split: Annotated[Optional[str], typer.Option(help="train,val,test fractions, the same for every trial.")] = None,
    seed: Annotated[int, typer.Option(help="Seed of the split, every trial and the sampler.")] = 0,
    pruner: Annotated[str, typer.Option(help="median, asha (successive halving) or none.")] = "median",
    sampler: Annotated[str, typer.Option(help="tpe (Optuna's Bayesian sampler), or grid: every combination of the "
                                              "space's choices and stepped ranges, once.")] = "tpe",
    settings: Annotated[Optional[list[str]], typer.Option("--set", help="Any other training setting, KEY=VALUE.")] = None,
    storage: Annotated[Optional[str], typer.Option(envvar="HARDSIGHT_STORAGE", help="A study storage workers share: "
                       "postgresql://USER:PASSWORD@HOST:PORT/DB (psycopg), mysql+pymysql://..., sqlite:///PATH, or "
                       "journal:///PATH (a file on a shared filesystem). Default: OUT/study.db, this search's "
                       "alone.")] = None,
    study_name: Annotated[Optional[str], typer.Option(help="The study in --storage (default: hardsight-tune); every "
                                                           "worker with the same storage and name joins it.")] = None,
    heartbeat: Annotated[Optional[int], typer.Option(min=1, help="Seconds between a running trial's heartbeats in a "
                         "database storage (default 30): one silent for two is failed and queued again.")] = None,
    verbose: Annotated[bool, typer.Option(help="Show each trial's training output.")] = False,
) -> None:
    """Search training settings with Optuna (TPE or a grid, pruning); report and best config in --out."""
    from hardsight.config import SEARCH_MODEL, TrainConfig
    from hardsight.engine.tuner import tune as run_tune

    flags = {"model": model or SEARCH_MODEL.get(task), "epochs": epochs, "max_minutes": trial_minutes, "split": split_fractions(split), "seed": seed}
    base = TrainConfig.from_dict({"task": task, "data": str(data), **{k: v for k, v in flags.items() if v is not None},
                                  **key_values(settings, "--set")}, source="hardsight tune")
    shared = {k: v for k, v in {"storage": storage, "study_name": study_name, "heartbeat": heartbeat}.items()
              if v is not None}
    result = run_tune(base, out, space, trials, max_minutes, pruner, verbose=verbose, sampler=sampler, **shared)
    console.print(f"{result.complete} complete, {result.pruned} pruned, {result.failed} failed; report: {result.report}")
    if result.best_run:
        console.print(f"best: {result.best_value:.4f} in [bold]{result.best_run}[/bold] (config: {out / 'best.yaml'})")
