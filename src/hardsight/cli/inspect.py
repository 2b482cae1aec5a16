"""`hardsight inspect DATA`: what is in a dataset, as a printed table and PNG plots."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from hardsight.cli import app


@app.command()
def inspect(
    data: Annotated[Path, typer.Argument(help="Folder of images (labels from file names) or a CSV manifest.")],
    out: Annotated[Path | None, typer.Option(help="Where the plots go (default: runs/inspect/<name>).")] = None,
    label_pattern: Annotated[str | None, typer.Option(help="Regex on the file stem; group 1 is the label.")] = None,
    lowercase: Annotated[bool, typer.Option(help="Fold labels to lower case.")] = False,
) -> None:
    """Counts, label lengths, character frequencies, image sizes and a grid of samples."""
    from hardsight.data.inspect import inspect_dataset, print_inspection

    print_inspection(inspect_dataset(data, out, label_pattern=label_pattern, lowercase=lowercase))
