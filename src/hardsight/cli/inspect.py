"""`hardsight inspect DATA`: what is in a dataset, as a printed table and PNG plots."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from hardsight.cli import app


@app.command()
def inspect(
    data: Annotated[Path, typer.Argument(help="Text: images named by their text (or a CSV). Image: class folders.")],
    out: Annotated[Path | None, typer.Option(help="Where the plots go (default: runs/inspect/<name>).")] = None,
    label_pattern: Annotated[str | None, typer.Option(help="Regex on the file stem; group 1 is the label.")] = None,
    lowercase: Annotated[bool, typer.Option(help="Fold labels to lower case.")] = False,
    task: Annotated[str, typer.Option(help="text, image, or auto (class folders or labels.csv mean image).")] = "auto",
    label_col: Annotated[str, typer.Option(help="Image CSVs: the label column.")] = "label",
    augment: Annotated[Path | None, typer.Option(exists=True, dir_okay=False, help="Image data: a YAML of training "
                                                 "settings (as train --config takes); draws its augmentation of a "
                                                 "few training images into augmented_samples.png.")] = None,
) -> None:
    """What a dataset holds: counts, label lengths or classes, imbalance, sizes, duplicates, samples (table + PNGs)."""
    from hardsight.data import inspect as ins
    from hardsight.errors import ConfigError

    inspections = {  # the data kind -> what inspects and prints it
        "image": lambda: ins.print_image_inspection(ins.inspect_image_dataset(data, out, label_col=label_col,
                                                                              augment=augment)),
        "text": lambda: ins.print_inspection(ins.inspect_dataset(data, out, label_pattern=label_pattern,
                                                                 lowercase=lowercase)),
    }
    kind = ("image" if ins.looks_like_image_classes(data) else "text") if task == "auto" else task
    if kind not in inspections:
        raise typer.BadParameter(f"--task {task!r}: choose text, image or auto")
    if augment is not None and kind != "image":
        raise ConfigError(f"--augment draws the image task's augmentation; {data} holds text data (image data is "
                          "class folders or a labels.csv, or name it with --task image)")
    inspections[kind]()
