"""`hardsight train text DATA --out RUN ...`: build a TrainConfig from flags and call hardsight.train."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer

from hardsight.console import console

app = typer.Typer(no_args_is_help=True, help="Train a recogniser; writes a run folder.")


def _split(value: str | None) -> tuple[float, float, float] | None:
    if value is None:
        return None
    try:
        parts = tuple(float(v) for v in value.split(","))
    except ValueError:
        raise typer.BadParameter(f"{value!r}: expected three fractions like 0.8,0.1,0.1") from None
    if len(parts) != 3:
        raise typer.BadParameter(f"{value!r}: expected three fractions like 0.8,0.1,0.1")
    return parts  # type: ignore[return-value]


@app.command()
def text(
    data: Annotated[Path, typer.Argument(help="Folder of images named by their text, or a CSV (file,label).")],
    out: Annotated[Optional[Path], typer.Option(help="Run folder (default: runs/text/<model>-N).")] = None,
    model: Annotated[str, typer.Option(help="crnn (CTC, any length), crnn_large, or cnn (one softmax per position).")] = "crnn",
    label_pattern: Annotated[Optional[str], typer.Option(help=r"Regex on the file stem, e.g. '(.+)-\d+$'.")] = None,
    lowercase: Annotated[bool, typer.Option(help="Fold labels to lower case.")] = False,
    charset: Annotated[Optional[str], typer.Option(help="Allowed characters (default: inferred from labels).")] = None,
    epochs: Annotated[Optional[int], typer.Option(help="Most epochs; early stopping may end sooner.")] = None,
    max_minutes: Annotated[Optional[float], typer.Option(help="Wall-clock budget; the run folder is complete anyway.")] = None,
    seed: Annotated[Optional[int], typer.Option(help="Seed for split, init and augmentation.")] = None,
    resume: Annotated[bool, typer.Option(help="Continue the run in --out from its last checkpoint.")] = False,
    val_dir: Annotated[Optional[Path], typer.Option(help="Use this folder as the validation set.")] = None,
    test_dir: Annotated[Optional[Path], typer.Option(help="Use this folder as the test set.")] = None,
    split: Annotated[Optional[str], typer.Option(help="train,val,test fractions (default 0.8,0.1,0.1).")] = None,
    batch_size: Annotated[Optional[int], typer.Option(help="Images per step.")] = None,
    lr: Annotated[Optional[float], typer.Option(help="Peak learning rate.")] = None,
    schedule: Annotated[Optional[str], typer.Option(help="onecycle or plateau.")] = None,
    height: Annotated[Optional[int], typer.Option(help="Input height in pixels (multiple of 16 for crnn).")] = None,
    beam_width: Annotated[Optional[int], typer.Option(help="CTC beam width (1 = greedy).")] = None,
    augment: Annotated[Optional[float], typer.Option(help="Augmentation strength (0 = off).")] = None,
    config: Annotated[Optional[Path], typer.Option(exists=True, dir_okay=False, help="YAML of settings; flags override it.")] = None,
) -> None:
    """Train a text-CAPTCHA reader."""
    from hardsight import train as run_training
    from hardsight.cli.summary import print_train_result
    from hardsight.config import TrainConfig, load_config

    flags = dict(data=str(data), out=str(out) if out else None, model=model, label_pattern=label_pattern,
                 lowercase=lowercase or None, charset=charset, epochs=epochs, max_minutes=max_minutes, seed=seed,
                 val_dir=str(val_dir) if val_dir else None, test_dir=str(test_dir) if test_dir else None,
                 split=_split(split), batch_size=batch_size, lr=lr, schedule=schedule, height=height,
                 beam_width=beam_width, augment=augment)
    if config:
        cfg = load_config(config, {"task": "text", **flags})
    else:
        cfg = TrainConfig.from_dict({"task": "text", **{k: v for k, v in flags.items() if v is not None}})
    result = run_training(cfg, resume=resume)
    print_train_result(result)
    console.print(f"run folder: [bold]{result.run.path}[/bold]")
