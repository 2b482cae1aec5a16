"""`hardsight demo`: synthetic CAPTCHAs -> train a reader for a minute or two -> evaluate -> read a few."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from hardsight.cli import app
from hardsight.console import console


@app.command()
def demo(
    out: Annotated[Path | None, typer.Option(help="Demo folder (default: runs/demo-N, never overwritten).")] = None,
    images: Annotated[int, typer.Option(help="How many synthetic CAPTCHAs to generate.")] = 3000,
    epochs: Annotated[int, typer.Option(help="Training epochs (one-cycle schedule over them).")] = 16,
    minutes: Annotated[float, typer.Option(help="Training budget in minutes, a safety cap on top of --epochs.")] = 6.0,
) -> None:
    """Generate CAPTCHAs with the `captcha` package, train a CRNN on CPU, evaluate it and read fresh images."""
    from hardsight.demo import run_demo

    run_demo(out, images, minutes, epochs)
    console.print("[green]demo finished[/green]")
