"""The `hardsight` command: one thin file per verb; library errors print as one line, exit code 2."""

from __future__ import annotations

import click
import typer
from typer.core import TyperGroup

from hardsight.console import console
from hardsight.errors import HardsightError


class _FriendlyErrors(TyperGroup):
    """Print a HardsightError as `error: ...` (it already names the file and the fix), no traceback."""

    def invoke(self, ctx: click.Context):
        try:
            return super().invoke(ctx)
        except HardsightError as e:
            console.print(f"[bold red]error:[/bold red] {e}")
            raise typer.Exit(2) from None
        except KeyboardInterrupt:  # the shell's convention for Ctrl-C (click would exit 1 with "Aborted!")
            console.print("[yellow]interrupted[/yellow]")
            raise typer.Exit(130) from None


app = typer.Typer(cls=_FriendlyErrors, no_args_is_help=True, add_completion=False, pretty_exceptions_enable=False,
                  help="Train, evaluate and serve recognisers for images that are hard on purpose.")

from hardsight.cli import balance, demo, evaluate, export, inspect, landmarks, lr_find, occlude, predict, report, runs, serve, solve, study, train  # noqa: E402,F401  (each registers its verb)
from hardsight.cli import assess, tune  # noqa: E402,F401

app.add_typer(train.app, name="train")
app.add_typer(study.app, name="study")
app.add_typer(assess.app, name="assess")


def main() -> None:
    app()
