"""`hardsight lr-find text|image DATA`: Lightning's learning-rate range test, suggestion and plot."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer

from hardsight.cli import app
from hardsight.console import console


@app.command("lr-find")
def lr_find(
    task: Annotated[str, typer.Argument(help="text or image.")],
    data: Annotated[Path, typer.Argument(help="The training data, as for `hardsight train TASK`.")],
    out: Annotated[Path, typer.Option(help="Where the plot goes.")] = Path("runs/lr-find"),
    model: Annotated[Optional[str], typer.Option(help="Model name (default: as `hardsight train TASK` picks).")] = None,
    batch_size: Annotated[Optional[int], typer.Option(help="Images per step.")] = None,
    image_size: Annotated[Optional[int], typer.Option(help="Image task: square input side.")] = None,
    label_col: Annotated[Optional[str], typer.Option(help="Image CSVs: the label column.")] = None,
) -> None:
    """Sweep the learning rate over a few dozen steps and suggest one (then train with --lr VALUE)."""
    from hardsight.config import load_config
    from hardsight.engine.trainer import lr_find as run_lr_find

    cfg = load_config(None, {"task": task, "data": str(data), "model": model, "batch_size": batch_size,
                             "image_size": image_size, "label_col": label_col})
    lr, plot = run_lr_find(cfg, out)
    if lr is None:
        console.print("[yellow]the LR finder found no clear minimum; keep the default learning rate[/yellow]")
        return
    console.print(f"suggested learning rate: [bold]{lr:.2e}[/bold] (plot: {plot})")
    typer.echo(f"{lr:.6g}")
