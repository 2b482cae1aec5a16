"""`hardsight train text DATA --out RUN ...`: build a TrainConfig from flags and call hardsight.train."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer

from hardsight.cli.options import split_fractions
from hardsight.config import IMAGE_COMMON, TEXT_FROM_READER, WARMUP_STEPS
from hardsight.console import console

app = typer.Typer(no_args_is_help=True, help="Train a recogniser; writes a run folder.")


# options both tasks take
Epochs = Annotated[Optional[int], typer.Option(help="Most epochs; early stopping may end sooner.")]
MaxMinutes = Annotated[Optional[float], typer.Option(help="Wall-clock budget; the run folder is complete anyway.")]
Seed = Annotated[Optional[int], typer.Option(help="Seed for split, init and augmentation.")]
Resume = Annotated[bool, typer.Option(help="Continue the run in --out from its last checkpoint.")]
SaveEveryEpoch = Annotated[bool, typer.Option(help="Keep a checkpoint of every epoch (checkpoints/epoch-NNN.ckpt: "
                                                   "--checkpoint epoch-N, evaluate --every-epoch).")]
Split = Annotated[Optional[str], typer.Option(help="train,val,test fractions (default 0.8,0.1,0.1).")]
Augment = Annotated[Optional[float], typer.Option(help="Augmentation strength (0 = off).")]
# a part given as a folder, read as DATA is (AffectNet's val_set/ too); DATA fills the other parts
ValDir = Annotated[Optional[Path], typer.Option(help="Use this folder (or CSV) as the validation set; DATA is "
                                                     "split into train and test.")]
TestDir = Annotated[Optional[Path], typer.Option(help="Use this folder (or CSV) as the test set, e.g. AffectNet's "
                                                      "val_set/; DATA is split into train and val.")]
LimitPerClass = Annotated[Optional[int], typer.Option(help="Train on at most N images per class of DATA (not of "
                                                           "--val-dir/--test-dir), a subset drawn by --seed.")]
Cache = Annotated[Optional[str], typer.Option(help="Where decoded pictures live: auto (RAM while they fit a quarter of "
                                                  "memory, else disk), ram, disk (a memory-mapped cache reused by "
                                                  "later runs, under $HARDSIGHT_CACHE) or none (decoded each read).")]
ConfigFile = Annotated[Optional[Path], typer.Option(exists=True, dir_okay=False, help="YAML of settings; flags override it.")]
# hardware and logs, shared by every task (DDP: --devices N --strategy ddp; torchrun/SLURM start ranks themselves)
Accelerator = Annotated[Optional[str], typer.Option(help="auto, cpu or gpu.")]
Devices = Annotated[Optional[int], typer.Option(help="Processes per node (GPUs, or CPU processes); >1 trains with DDP.")]
NumNodes = Annotated[Optional[int], typer.Option(help="Machines (launched by torchrun or SLURM; needs --out).")]
Strategy = Annotated[Optional[str], typer.Option(help="Lightning strategy: auto, ddp, ddp_spawn, ...")]
Precision = Annotated[Optional[str], typer.Option(help="32 (default), bf16-mixed (a training step ~1.8x faster on "
                                                     "CPUs with AVX512-BF16 or AMX, and on recent GPUs) or 16-mixed (GPUs).")]
Logger = Annotated[Optional[str], typer.Option(help="csv (metrics.csv), or tensorboard (also RUN/tensorboard/).")]
# what `hardsight tune` searches
Optimizer = Annotated[Optional[str], typer.Option(help="adamw (default), adam, sgd (Nesterov, momentum 0.9) or rmsprop.")]
# the LR schedule and stopping, the same for every task
Schedule = Annotated[Optional[str], typer.Option(help="onecycle (default: warm-up, then cosine, in optimiser steps) "
                                                     "or plateau (the LR cut when --monitor stops improving).")]
WarmupSteps = Annotated[Optional[int], typer.Option(help=(
    f"onecycle: optimiser steps of LR warm-up (default {WARMUP_STEPS}; {TEXT_FROM_READER['warmup_steps']} for a text "
    "reader started from a trained one)."))]
PlateauFactor = Annotated[Optional[float], typer.Option(help="plateau: multiply the LR by this (default 0.5).")]
PlateauPatience = Annotated[Optional[int], typer.Option(help="plateau: epochs without improvement first (default 5).")]
MinLr = Annotated[Optional[float], typer.Option(help="plateau: the lowest LR (default 0).")]
Monitor = Annotated[Optional[str], typer.Option(help="What picks the best checkpoint, stops early and drives plateau: "
                                                    "objective (default: CER or 1 - macro-F1), val_loss or accuracy.")]
Patience = Annotated[Optional[int], typer.Option(help="Early stopping: epochs without a better --monitor (default 25).")]
ModelArgs = Annotated[Optional[list[str]], typer.Option("--model-arg", help="Model option KEY=VALUE, repeatable (compact: "
                      "activation, blocks, filters, convs_per_block, dense_layers, dense_units, dropout).")]


def key_values(pairs: list[str] | None, option: str) -> dict:
    """KEY=VALUE pairs, values read as YAML (numbers, true/false, lists)."""
    import yaml

    out = {}
    for pair in pairs or []:
        key, eq, value = pair.partition("=")
        if not eq or not key.strip():
            raise typer.BadParameter(f"{option} {pair!r}: expected KEY=VALUE")
        out[key.strip()] = yaml.safe_load(value)
    return out


def crop_box(value: str | None) -> tuple[int, ...] | None:
    """`--crop 25,0,125,50` -> (x, y, w, h) (None when not given); TrainConfig checks the numbers."""
    if value is None:
        return None
    try:
        return tuple(int(v) for v in value.split(","))
    except ValueError:
        raise typer.BadParameter(f"--crop {value!r}: expected four whole numbers x,y,w,h like 25,0,125,50") from None


@app.command()
def text(
    data: Annotated[Path, typer.Argument(help="Folder of images named by their text, or a CSV (file,label).")],
    out: Annotated[Optional[Path], typer.Option(help="Run folder (default: runs/text/<model>-N).")] = None,
    model: Annotated[Optional[str], typer.Option(help="crnn (default; CTC, any length), crnn_large, or cnn (one softmax "
                                                      "per position); crnn_notebook and cnn_notebook: the classic "
                                                      "notebook's two networks.")] = None,
    label_pattern: Annotated[Optional[str], typer.Option(help=r"Regex on the file stem, e.g. '(.+)-\d+$'.")] = None,
    lowercase: Annotated[bool, typer.Option(help="Fold labels to lower case.")] = False,
    charset: Annotated[Optional[str], typer.Option(help="Allowed characters (default: inferred from labels).")] = None,
    epochs: Epochs = None,
    max_minutes: MaxMinutes = None,
    seed: Seed = None,
    resume: Resume = False,
    save_every_epoch: SaveEveryEpoch = False,
    val_dir: ValDir = None,
    test_dir: TestDir = None,
    split: Split = None,
    batch_size: Annotated[Optional[int], typer.Option(help="Images per step.")] = None,
    lr: Annotated[Optional[float], typer.Option(help="Peak learning rate.")] = None,
    schedule: Schedule = None,
    warmup_steps: WarmupSteps = None,
    plateau_factor: PlateauFactor = None,
    plateau_patience: PlateauPatience = None,
    min_lr: MinLr = None,
    monitor: Monitor = None,
    patience: Patience = None,
    fit_input: Annotated[Optional[bool], typer.Option(
        "--fit-input/--no-fit-input", show_default=False,
        help="Choose the crop, height, channels and contrast that --crop, --height, --channels and --stretch leave "
             "open from the training images (default), or read whole images at 32 px in grey.")] = None,
    height: Annotated[Optional[int], typer.Option(help="Input height in pixels (multiple of 16 for crnn; default "
                                                       "chosen from the glyphs' height, else 32).")] = None,
    crop: Annotated[Optional[str], typer.Option(metavar="x,y,w,h", help="Keep only this box of every image (pixels "
                                                "of the original) before resizing, in training and whenever the run "
                                                "reads; smaller images are skipped (default: the ink's box where "
                                                "it leaves out 40% of the canvas).")] = None,
    channels: Annotated[Optional[int], typer.Option(help="1 (grey) or 3 (RGB; default where colour sets the ink "
                                                         "apart better than grey).")] = None,
    stretch: Annotated[Optional[bool], typer.Option(
        "--stretch/--no-stretch", show_default=False,
        help="Stretch each image's range (default for pale ink), or not.")] = None,
    beam_width: Annotated[Optional[int], typer.Option(help="CTC beam width (1 = greedy).")] = None,
    weights: Annotated[Optional[str], typer.Option(
        metavar="RUN", help="Start from this trained reader: a text run folder, or general (the shipped general "
                            "reader); characters it never read get fresh output rows.")] = None,
    from_scratch: Annotated[bool, typer.Option("--from-scratch", help="Train from random weights.")] = False,
    augment: Augment = None,
    optimizer: Optimizer = None,
    model_arg: ModelArgs = None,
    accelerator: Accelerator = None,
    devices: Devices = None,
    num_nodes: NumNodes = None,
    strategy: Strategy = None,
    precision: Precision = None,
    logger: Logger = None,
    config: ConfigFile = None,
) -> None:
    """Train a text-CAPTCHA reader."""
    given = settings_given(locals())
    _train(_config("text", {**given, "split": split_fractions(split), "crop": crop_box(crop),
                            **{k: v for k, v in (("fit_input", fit_input), ("stretch", stretch)) if v is not None},
                            **({"pretrained": False} if from_scratch else {}),
                            "model_args": key_values(model_arg, "--model-arg")}, config), resume)


@app.command()
def image(
    data: Annotated[Path, typer.Argument(help="Class folders (DATA/<class>/*.jpg), a CSV (file,label[,group]), "
                                              "a folder holding labels.csv and images/, or an AffectNet folder "
                                              "(images/ + annotations/*_exp.npy).")],
    out: Annotated[Optional[Path], typer.Option(help="Run folder (default: runs/image/<model>-N).")] = None,
    model: Annotated[Optional[str], typer.Option(help="Default: tf_efficientnet_lite0 fine-tuned when its weights are "
                                                      "installed, else compact from scratch; compact_wide, or any "
                                                      "timm model name.")] = None,
    pretrained: Annotated[bool, typer.Option(help="Start from pretrained weights, looked for offline first: the "
                                                  "weights package, the hub cache, then the hub.")] = False,
    weights: Annotated[Optional[str], typer.Option(help="Pretrained weights: a state dict (.pth/.pt/.safetensors), a "
                                                       "timm or Lightning checkpoint, an image run folder (its head "
                                                       "is dropped), a weights package name, or 'hub'.")] = None,
    freeze_epochs: Annotated[Optional[int], typer.Option(help="Epochs with the body frozen (BatchNorm statistics too) "
                                                              "before it unfreezes.")] = None,
    trainable_layers: Annotated[Optional[int], typer.Option(help="Only the last N layer groups of the body ever train "
                                                                 "(0: the head on frozen features).")] = None,
    body_lr_ratio: Annotated[Optional[float], typer.Option(help="The body's peak learning rate as a fraction of the "
                                                               "head's (fine-tuning default 0.1).")] = None,
    layer_decay: Annotated[Optional[float], typer.Option(help="Layer-wise rate decay instead: each layer group "
                                                             "learns this fraction as fast as the next.")] = None,
    multi_label: Annotated[bool, typer.Option(help="Sigmoid outputs with per-class thresholds tuned on validation.")] = False,
    label_col: Annotated[Optional[str], typer.Option(help="CSV column with the label(s) (default `label`); ';' "
                                                         "separates several.")] = None,
    group_col: Annotated[Optional[str], typer.Option(help="CSV column whose groups never span two splits.")] = None,
    extra_labels: Annotated[Optional[Path], typer.Option(help="CSV (file,label) adding labels to files.")] = None,
    class_weights: Annotated[Optional[str], typer.Option(
        help=f"balanced, sqrt (square root of balanced) or none (default {IMAGE_COMMON['class_weights']}).")] = None,
    sampler: Annotated[Optional[str], typer.Option(help="shuffle (default), or balanced (oversample rare classes).")] = None,
    image_size: Annotated[Optional[int], typer.Option(help="Square input side in pixels (default 112 fine-tuning, "
                                                          "64 from scratch).")] = None,
    epochs: Epochs = None,
    max_minutes: MaxMinutes = None,
    seed: Seed = None,
    resume: Resume = False,
    split: Split = None,
    val_dir: ValDir = None,
    test_dir: TestDir = None,
    limit_per_class: LimitPerClass = None,
    cache: Cache = None,
    batch_size: Annotated[Optional[int], typer.Option(help="Images per step (default 32 fine-tuning, 64 from scratch).")] = None,
    lr: Annotated[Optional[str], typer.Option(help="Peak learning rate of the head (default 2e-3 fine-tuning, 3e-3 "
                                                  "from scratch), or 'auto' for the LR finder.")] = None,
    label_smoothing: Annotated[Optional[float], typer.Option(help="Cross-entropy label smoothing.")] = None,
    mixup: Annotated[Optional[float], typer.Option(help="MixUp/CutMix Beta alpha (0 = off).")] = None,
    augment: Augment = None,
    vflip: Annotated[Optional[float], typer.Option(help="Chance an image is turned upside down.")] = None,
    rotate: Annotated[Optional[float], typer.Option(help="Turn every image by up to this many degrees either way, "
                                                        "instead of --augment's turns (0: none).")] = None,
    shear: Annotated[Optional[float], typer.Option(help="Skew every image sideways by up to this many degrees.")] = None,
    zoom_out: Annotated[Optional[float], typer.Option(help="Shrink every image by up to this fraction (0.3: 30% "
                                                          "smaller) on a canvas of --fill.")] = None,
    fill: Annotated[Optional[float], typer.Option(help="What --rotate, --shear and --zoom-out uncover: 0 black "
                                                      "(default) to 1 white.")] = None,
    brightness: Annotated[Optional[float], typer.Option(help="Brightness factor in [1-B, 1+B], instead of "
                                                            "--augment's.")] = None,
    contrast: Annotated[Optional[float], typer.Option(help="Contrast factor in [1-C, 1+C], instead of "
                                                          "--augment's.")] = None,
    normalize: Annotated[Optional[str], typer.Option(help="Input mean/std: backbone (default; the pretrained "
                                                         "weights') or data (the training split's).")] = None,
    workers: Annotated[Optional[int], typer.Option(help="DataLoader worker processes.")] = None,
    save_every_epoch: SaveEveryEpoch = False,
    faces: Annotated[bool, typer.Option(help="Face stage: 68 landmarks, then a crop with the eyes level.")] = False,
    landmarks: Annotated[Optional[Path], typer.Option(help="Folder of <stem>_lnd.npy (hardsight landmarks); an "
                                                           "AffectNet image's own annotations/ are used without it; "
                                                           "others are detected.")] = None,
    face_detector: Annotated[Optional[str], typer.Option(help="hog (fast) or cnn (more poses, slower).")] = None,
    face_margin: Annotated[Optional[float], typer.Option(help="Crop beyond the landmarks' box, a fraction of its side "
                                                             "on each side (default 0: brows to chin, jaw to jaw).")] = None,
    occluder: Annotated[Optional[str], typer.Option(help="vr-headset, lower-face, eyes-bar or random-patch.")] = None,
    occlusion_prob: Annotated[Optional[float], typer.Option(help="Chance a training face is occluded (online).")] = None,
    schedule: Schedule = None,
    warmup_steps: WarmupSteps = None,
    plateau_factor: PlateauFactor = None,
    plateau_patience: PlateauPatience = None,
    min_lr: MinLr = None,
    monitor: Monitor = None,
    patience: Patience = None,
    optimizer: Optimizer = None,
    loss: Annotated[Optional[str], typer.Option(help="ce (default), or focal (down-weights easy examples).")] = None,
    model_arg: ModelArgs = None,
    accelerator: Accelerator = None,
    devices: Devices = None,
    num_nodes: NumNodes = None,
    strategy: Strategy = None,
    precision: Precision = None,
    logger: Logger = None,
    config: ConfigFile = None,
) -> None:
    """Train an image classifier (CAPTCHA tiles, faces, any classes)."""
    given = settings_given(locals())
    auto = lr is not None and lr.strip().lower() == "auto"
    try:
        lr_value = None if auto or lr is None else float(lr)
    except ValueError:
        raise typer.BadParameter(f"--lr {lr!r}: a number or 'auto'") from None
    flags = {**given, "split": split_fractions(split), "lr": lr_value, "lr_find": auto or None,
             "model_args": key_values(model_arg, "--model-arg")}
    _train(_config("image", flags, config), resume)


def settings_given(params: dict) -> dict:
    """A command's parameters named like TrainConfig settings, as TrainConfig takes them: paths as text, and an
    on/off flag left off (False) as not given, so --config or the defaults decide it. Options whose value needs
    parsing (--split, --lr, --model-arg) are converted by the command itself."""
    from dataclasses import fields

    from hardsight.config import TrainConfig

    names = {f.name for f in fields(TrainConfig)}
    return {k: str(v) if isinstance(v, Path) else v for k, v in params.items()
            if k in names and v is not None and v is not False}


def _train(cfg, resume: bool) -> None:
    from hardsight import train as run_training
    from hardsight.cli.summary import print_train_result

    result = run_training(cfg, resume=resume)
    print_train_result(result)
    console.print(f"run folder: [bold]{result.run.path}[/bold]")


def _config(task: str, flags: dict, config: Path | None):
    """Settings from, lowest first: the task's defaults (config.py), the --config file, the flags given."""
    from hardsight.config import load_config

    return load_config(config, {**flags, "task": task})
