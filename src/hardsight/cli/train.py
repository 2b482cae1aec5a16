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

    flags = dict(data=str(data), out=str(out) if out else None, model=model, label_pattern=label_pattern,
                 lowercase=lowercase or None, charset=charset, epochs=epochs, max_minutes=max_minutes, seed=seed,
                 val_dir=str(val_dir) if val_dir else None, test_dir=str(test_dir) if test_dir else None,
                 split=_split(split), batch_size=batch_size, lr=lr, schedule=schedule, height=height,
                 beam_width=beam_width, augment=augment)
    result = run_training(_config("text", flags, config), resume=resume)
    print_train_result(result)
    console.print(f"run folder: [bold]{result.run.path}[/bold]")


@app.command()
def image(
    data: Annotated[Path, typer.Argument(help="Class folders (DATA/<class>/*.jpg), a CSV (file,label[,group]), "
                                              "or a folder holding labels.csv and images/.")],
    out: Annotated[Optional[Path], typer.Option(help="Run folder (default: runs/image/<model>-N).")] = None,
    model: Annotated[str, typer.Option(help="compact (CPU default), compact_wide, or any timm model name.")] = "compact",
    pretrained: Annotated[bool, typer.Option(help="Start from ImageNet weights (timm models; needs the network).")] = False,
    freeze: Annotated[bool, typer.Option(help="Fine-tune only the last stage and the head.")] = False,
    multi_label: Annotated[bool, typer.Option(help="Sigmoid outputs with per-class thresholds tuned on validation.")] = False,
    label_col: Annotated[str, typer.Option(help="CSV column with the label(s); ';' separates several.")] = "label",
    group_col: Annotated[Optional[str], typer.Option(help="CSV column whose groups never span two splits.")] = None,
    extra_labels: Annotated[Optional[Path], typer.Option(help="CSV (file,label) adding labels to files.")] = None,
    class_weights: Annotated[str, typer.Option(help="balanced or none.")] = "balanced",
    sampler: Annotated[str, typer.Option(help="shuffle, or balanced (oversample rare classes).")] = "shuffle",
    image_size: Annotated[int, typer.Option(help="Square input side in pixels.")] = 64,
    epochs: Annotated[Optional[int], typer.Option(help="Most epochs; early stopping may end sooner.")] = None,
    max_minutes: Annotated[Optional[float], typer.Option(help="Wall-clock budget; the run folder is complete anyway.")] = None,
    seed: Annotated[Optional[int], typer.Option(help="Seed for split, init and augmentation.")] = None,
    resume: Annotated[bool, typer.Option(help="Continue the run in --out from its last checkpoint.")] = False,
    split: Annotated[Optional[str], typer.Option(help="train,val,test fractions (default 0.8,0.1,0.1).")] = None,
    batch_size: Annotated[int, typer.Option(help="Images per step.")] = 64,
    lr: Annotated[str, typer.Option(help="Peak learning rate, or 'auto' for the LR finder.")] = "3e-3",
    label_smoothing: Annotated[Optional[float], typer.Option(help="Cross-entropy label smoothing.")] = None,
    mixup: Annotated[Optional[float], typer.Option(help="MixUp/CutMix Beta alpha (0 = off).")] = None,
    augment: Annotated[Optional[float], typer.Option(help="Augmentation strength (0 = off).")] = None,
    workers: Annotated[Optional[int], typer.Option(help="DataLoader worker processes.")] = None,
    save_every_epoch: Annotated[bool, typer.Option(help="Keep a checkpoint of every epoch.")] = False,
    faces: Annotated[bool, typer.Option(help="Face stage: 68 landmarks, then a crop with the eyes level.")] = False,
    landmarks: Annotated[Optional[Path], typer.Option(help="Folder of <stem>_lnd.npy (hardsight landmarks; "
                                                           "AffectNet annotations/); others are detected.")] = None,
    face_detector: Annotated[Optional[str], typer.Option(help="hog (fast) or cnn (more poses, slower).")] = None,
    occluder: Annotated[Optional[str], typer.Option(help="vr-headset, lower-face, eyes-bar or random-patch.")] = None,
    occlusion_prob: Annotated[Optional[float], typer.Option(help="Chance a training face is occluded (online).")] = None,
    config: Annotated[Optional[Path], typer.Option(exists=True, dir_okay=False, help="YAML of settings; flags override it.")] = None,
) -> None:
    """Train an image classifier (CAPTCHA tiles, faces, any classes)."""
    from hardsight import train as run_training
    from hardsight.cli.summary import print_train_result

    auto = lr.strip().lower() == "auto"
    try:
        lr_value = None if auto else float(lr)
    except ValueError:
        raise typer.BadParameter(f"--lr {lr!r}: a number or 'auto'") from None
    flags = dict(data=str(data), out=str(out) if out else None, model=model, pretrained=pretrained or None,
                 freeze=freeze or None, multi_label=multi_label or None, label_col=label_col, group_col=group_col,
                 extra_labels=str(extra_labels) if extra_labels else None, class_weights=class_weights,
                 sampler=sampler, image_size=image_size, epochs=epochs, max_minutes=max_minutes, seed=seed,
                 split=_split(split), batch_size=batch_size, lr=lr_value, lr_find=auto or None,
                 label_smoothing=label_smoothing, mixup=mixup, augment=augment, workers=workers,
                 save_every_epoch=save_every_epoch or None, weight_decay=5e-4, faces=faces or None,
                 landmarks=str(landmarks) if landmarks else None, face_detector=face_detector, occluder=occluder,
                 occlusion_prob=occlusion_prob)
    result = run_training(_config("image", flags, config), resume=resume)
    print_train_result(result)
    console.print(f"run folder: [bold]{result.run.path}[/bold]")


def _config(task: str, flags: dict, config: Path | None):
    from hardsight.config import TrainConfig, load_config

    if config:
        return load_config(config, {"task": task, **flags})
    return TrainConfig.from_dict({"task": task, **{k: v for k, v in flags.items() if v is not None}})
