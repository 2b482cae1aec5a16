"""`hardsight study occlusion DATA --occluder vr-headset --out STUDY ...`."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Optional

import typer

from hardsight.cli.options import split_fractions
from hardsight.config import read_settings
from hardsight.faces.study import CHECKPOINTS, TRAIN_CONDITIONS

app = typer.Typer(no_args_is_help=True, help="Robustness studies: train conditions x test conditions.")


@app.command()
def occlusion(
    data: Annotated[Path, typer.Argument(exists=True, help="Faces: a CSV (file,label[,group]), a folder holding "
                                                           "labels.csv + images/, class folders, or an AffectNet "
                                                           "folder (images/ + annotations/).")],
    out: Annotated[Path, typer.Option(help="Study folder; rerun the same command to finish an interrupted study.")],
    occluder: Annotated[str, typer.Option(help="vr-headset, lower-face, eyes-bar or random-patch.")] = "vr-headset",
    label_col: Annotated[str, typer.Option(help="CSV column with the label.")] = "label",
    group_col: Annotated[Optional[str], typer.Option(help="CSV column whose groups (people) never span two splits.")] = None,
    landmarks: Annotated[Optional[Path], typer.Option(help="Folder of <stem>_lnd.npy; an AffectNet image's own "
                                                           "annotations/ are used without it; others are detected.")] = None,
    face_detector: Annotated[str, typer.Option(help="hog or cnn.")] = "hog",
    model: Annotated[Optional[str], typer.Option(help="compact (CPU default), compact_wide, or a timm model name.")] = None,
    pretrained: Annotated[Optional[bool], typer.Option(help="Start from pretrained weights, looked for offline first "
                                                           "(weights package, hub cache, hub).")] = None,
    image_size: Annotated[Optional[int], typer.Option(help="Side of the aligned face crop in pixels (default 64).")] = None,
    epochs: Annotated[Optional[int], typer.Option(help="Most epochs per train condition (default 30).")] = None,
    max_minutes: Annotated[Optional[float], typer.Option(help="Wall-clock budget per train condition.")] = None,
    batch_size: Annotated[Optional[int], typer.Option(help="Images per step (default 32).")] = None,
    lr: Annotated[Optional[float], typer.Option(help="Peak learning rate (default 3e-3).")] = None,
    split: Annotated[str, typer.Option(help="train,val,test fractions.")] = "0.7,0.1,0.2",
    test_dir: Annotated[Optional[Path], typer.Option(exists=True, help=(
        "Test faces from this folder or CSV (any layout DATA may have, e.g. AffectNet's val_set/); DATA is then split "
        "into train and val only, their --split fractions renormalised."))] = None,
    limit_per_class: Annotated[Optional[int], typer.Option(help="At most N faces per class of DATA (not of "
                                                               "--test-dir), a subset drawn by --seed.")] = None,
    cache: Annotated[Optional[str], typer.Option(help="Where decoded faces live: auto, ram, disk (a memory-mapped "
                                                      "cache shared by every condition and later studies) or none.")] = None,
    seed: Annotated[int, typer.Option(help="Seed for the split, the runs and random patches.")] = 0,
    area: Annotated[float, typer.Option(help="random-patch: fraction of the face box it covers.")] = 0.2,
    conditions: Annotated[str, typer.Option(help="Train conditions, comma-separated.")] = ",".join(TRAIN_CONDITIONS),
    checkpoints: Annotated[str, typer.Option(help=(
        f"Checkpoints of each run to score, comma-separated: {', '.join(CHECKPOINTS)} (best validation, last epoch); "
        "a rerun scores one added here without training again."))] = "best",
    config: Annotated[Optional[Path], typer.Option(exists=True, dir_okay=False, help=(
        "YAML of training settings for every condition (optimizer, augment, model_args, precision, ...; e.g. a tune "
        "search's best.yaml); flags override it, and data, split, seed and face settings stay the study's."))] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print one JSON object with every cell.")] = False,
) -> None:
    """Train on clean / occluded / mixed / mixed-unique faces, test each on clean / occluded / mixed-unique (each
    face once, half occluded) / mixed (both versions of each face) ones."""
    from hardsight.console import console
    from hardsight.faces.study import StudyConfig, occlusion_study, print_study

    options, settings = {}, {}
    if config:
        options, settings, left_out = StudyConfig.split_settings(read_settings(config))
        if left_out:
            console.print(f"{config}: the study sets {', '.join(left_out)} itself; those lines are not used")
    flags = dict(model=model, pretrained=pretrained, image_size=image_size, epochs=epochs, max_minutes=max_minutes,
                 batch_size=batch_size, lr=lr)
    options.update({k: v for k, v in flags.items() if v is not None})
    if cache:
        settings["cache"] = cache
    cfg = StudyConfig(str(data), str(out), occluder, area=area, label_col=label_col, group_col=group_col,
                      landmarks=str(landmarks) if landmarks else None, face_detector=face_detector,
                      split=split_fractions(split), seed=seed, settings=settings,
                      test_dir=str(test_dir) if test_dir else None, limit_per_class=limit_per_class,
                      conditions=_names(conditions), checkpoints=_names(checkpoints), **options)
    result = occlusion_study(cfg)
    if as_json:
        typer.echo(json.dumps(result.to_json()))
    else:
        print_study(result)


def _names(listed: str) -> tuple[str, ...]:
    return tuple(c.strip() for c in listed.split(",") if c.strip())
