"""`hardsight report RUN_OR_FOLDER [--out FILE]`."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer

from hardsight.cli import app


@app.command()
def report(
    folder: Annotated[Path, typer.Argument(metavar="RUN_OR_FOLDER", help="A run, evaluation, tune or assessment "
                                           "folder (report.md), or an occlusion study (study.md).")],
    out: Annotated[Optional[Path], typer.Option("--out", help="The HTML file to write "
                                                "(default: report.html beside report.md).")] = None,
) -> None:
    """Write one self-contained HTML file from a folder's report.md, plots and test images; print its path."""
    from hardsight.runs.report_html import write_report_html

    typer.echo(write_report_html(folder, out))
