"""`hardsight study occlusion DATA --occluder vr-headset --out STUDY ...`."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Optional

import typer

from hardsight.cli.train import _split

app = typer.Typer(no_args_is_help=True, help="Robustness studies: train conditions x test conditions.")


@app.command()
def occlusion(
    data: Annotated[Path, typer.Argument(exists=True, help="Faces: a CSV (file,label[,group]), a folder holding "
                                                           "labels.csv + images/, or class folders.")],
    out: Annotated[Path, typer.Option(help="Study folder; rerun the same command to finish an interrupted study.")],
    occluder: Annotated[str, typer.Option(help="vr-headset, lower-face, eyes-bar or random-patch.")] = "vr-headset",
    label_col: Annotated[str, typer.Option(help="CSV column with the label.")] = "label",
    group_col: Annotated[Optional[str], typer.Option(help="CSV column whose groups (people) never span two splits.")] = None,
    landmarks: Annotated[Optional[Path], typer.Option(help="Folder of <stem>_lnd.npy; others are detected.")] = None,
    face_detector: Annotated[str, typer.Option(help="hog or cnn.")] = "hog",
    model: Annotated[str, typer.Option(help="compact (CPU default), compact_wide, or a timm model name.")] = "compact",
    pretrained: Annotated[bool, typer.Option(help="Start timm models from ImageNet weights (needs the network).")] = False,
    image_size: Annotated[int, typer.Option(help="Side of the aligned face crop in pixels.")] = 64,
    epochs: Annotated[int, typer.Option(help="Most epochs per train condition.")] = 30,
    max_minutes: Annotated[Optional[float], typer.Option(help="Wall-clock budget per train condition.")] = None,
    batch_size: Annotated[int, typer.Option(help="Images per step.")] = 32,
    lr: Annotated[float, typer.Option(help="Peak learning rate.")] = 3e-3,
    split: Annotated[str, typer.Option(help="train,val,test fractions.")] = "0.7,0.1,0.2",
    seed: Annotated[int, typer.Option(help="Seed for the split, the runs and random patches.")] = 0,
    area: Annotated[float, typer.Option(help="random-patch: fraction of the face box it covers.")] = 0.2,
    as_json: Annotated[bool, typer.Option("--json", help="Print one JSON object with every cell.")] = False,
) -> None:
    """Train on clean / occluded / mixed / mixed-unique faces, test each on clean / occluded / mixed ones."""
    from hardsight.study import StudyConfig, occlusion_study, print_study

    cfg = StudyConfig(str(data), str(out), occluder, area=area, label_col=label_col, group_col=group_col,
                      landmarks=str(landmarks) if landmarks else None, face_detector=face_detector, model=model,
                      pretrained=pretrained, image_size=image_size, epochs=epochs, max_minutes=max_minutes,
                      batch_size=batch_size, lr=lr, split=_split(split), seed=seed)
    result = occlusion_study(cfg)
    if as_json:
        typer.echo(json.dumps(result.to_json()))
    else:
        print_study(result)
