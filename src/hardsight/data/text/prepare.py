"""Everything a text run needs from disk: labelled files, charset, split, input contract, decoded samples."""

from __future__ import annotations

from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from hardsight.config import InputSpec, TrainConfig
from hardsight.console import console
from hardsight.data.splits import random_split
from hardsight.data.text.labels import LabelledFile, Skipped, TextLabelling, filter_charset, infer_charset, read_text_labels
from hardsight.data.text.contract import HEIGHTS, InputChoice, choose_input, survey_ink
from hardsight.data.text.datamodule import TextSample, infer_spec, load_samples, read_sizes
from hardsight.errors import DataError

SPLITS = ("train", "val", "test")


@dataclass
class TextData:
    charset: str
    max_length: int
    spec: InputSpec
    samples: dict[str, list[TextSample]]
    skipped: Skipped
    root: Path
    chosen: tuple[str, ...] = ()  # why the input contract is what it is, where the training images chose it

    def labels_json(self) -> dict[str, Any]:
        return {"task": "text", "charset": self.charset, "max_length": self.max_length,
                "input": {k: list(v) if isinstance(v, tuple) else v for k, v in vars(self.spec).items()}}

    def split_json(self, seed: int) -> dict[str, Any]:
        return {"seed": seed, "root": str(self.root), **{s: [_rel(x.path, self.root) for x in self.samples[s]]
                                                          for s in SPLITS}}


def labelling_of(cfg: TrainConfig) -> TextLabelling:
    return TextLabelling(cfg.label_pattern, cfg.lowercase)


def prepare_text_data(cfg: TrainConfig, saved_split: dict | None = None, saved_labels: dict | None = None,
                      start_height: tuple[int, str] | None = None) -> TextData:
    """Read, filter, split and decode; with a saved split and labels (resume), reproduce them exactly.
    `start_height`: (pixels, whose) where a trained reader the run starts from fixes the input height."""
    labelling = labelling_of(cfg)
    root = Path(cfg.data)
    files, skipped = read_text_labels(root, labelling)
    parts: dict[str, list[LabelledFile]] = {}
    for name, folder in (("val", cfg.val_dir), ("test", cfg.test_dir)):
        if folder:
            parts[name], sk = read_text_labels(Path(folder), labelling)
            skipped.merge(sk)

    if saved_labels:
        charset = saved_labels["charset"]
    else:
        charset = cfg.charset or infer_charset([f.label for f in files] + [f.label for p in parts.values() for f in p])
    if not files and skipped.bad_label and labelling.label_pattern:
        raise DataError(f"{root}: --label-pattern {labelling.label_pattern!r} matches none of its "
                        f"{len(skipped.bad_label)} images (e.g. {Path(skipped.bad_label[0][0]).stem!r})")
    if not charset:
        raise DataError(f"{root}: no labels to learn a charset from")
    labelled = len(files)
    files = filter_charset(files, charset, skipped)
    if cfg.charset and len(files) < labelled / 2:
        raise DataError(f"{root}: --charset {charset!r} leaves out {labelled - len(files)} of its {labelled} labels "
                        "(they hold other characters); widen it, or leave it out to learn it from the labels")
    parts = {k: filter_charset(v, charset, skipped) for k, v in parts.items()}

    sized, sk = read_sizes(files + [f for p in parts.values() for f in p], workers=cfg.workers or 4, crop=cfg.crop)
    skipped.merge(sk)
    readable = {f.path for f, _ in sized}
    files = [f for f in files if f.path in readable]
    parts = {k: [f for f in v if f.path in readable] for k, v in parts.items()}
    if not files:
        raise DataError(f"{root}: none of the images could be used ({skipped.total} skipped)")

    split = _split(files, parts, cfg, saved_split, root)
    train_paths = {f.path for f in split["train"]}
    chosen: tuple[str, ...] = ()
    if saved_labels:
        spec = InputSpec(**{k: tuple(v) if isinstance(v, list) else v for k, v in saved_labels["input"].items()})
        max_length = saved_labels["max_length"]
    else:
        train_sized = [(f, sz) for f, sz in sized if f.path in train_paths]
        choice = _input_choice(cfg.replace(height=cfg.height or (start_height and start_height[0])), train_sized,
                               {sz for _, sz in sized})
        if start_height and not cfg.height and cfg.fit_input:
            choice = replace(choice, reasons=choice.reasons + (f"height {start_height[0]}: {start_height[1]}",))
        chosen, sizes = choice.reasons, [sz for _, sz in train_sized]
        if choice.crop is not None and cfg.crop is None:  # every image has the one size; the reader sees the box's
            sizes = [choice.crop[2:]] * len(sizes)
        spec = infer_spec(sizes, choice.height, cfg.width, choice.channels, keep_aspect=cfg.model.startswith("crnn"),
                          crop=choice.crop, contrast=None if choice.contrast == "none" else choice.contrast)
        max_length = max(len(f.label) for part in split.values() for f in part)

    samples: dict[str, list[TextSample]] = {}
    for name in SPLITS:
        samples[name], sk = load_samples(split[name], spec, workers=cfg.workers or 4, progress=f"decoding {name}")
        skipped.merge(sk)
    if not samples["val"]:
        raise DataError("the validation split is empty: give --val-dir or a split with a validation fraction")
    return TextData(charset, max_length, spec, samples, skipped, root, chosen)


def _input_choice(cfg: TrainConfig, train: list[tuple[LabelledFile, tuple[int, int]]],
                  all_sizes: set[tuple[int, int]]) -> InputChoice:
    """What the survey of the training images chooses (fit_input), the user's settings winning; else today's
    whole image at 32 px in grey."""
    contrast = None if cfg.stretch is None else ("stretch" if cfg.stretch else "none")
    if not cfg.fit_input:
        return InputChoice(cfg.crop, cfg.height or HEIGHTS[0], cfg.channels or 1, contrast, ())
    survey = survey_ink([f.path for f, _ in train], [sz for _, sz in train], seed=cfg.seed,
                        one_size=next(iter(all_sizes)) if len(all_sizes) == 1 else None, workers=cfg.workers or 4,
                        crop=cfg.crop)
    if survey.blank:
        names = ", ".join(Path(b).name for b in survey.blank[:5])
        console.print(f"[yellow]{len(survey.blank)} of the {survey.images} training images looked at show no ink "
                      f"(blank or of one colour): {names}{', ...' if len(survey.blank) > 5 else ''}[/yellow]")
    return choose_input(survey, cfg.height, cfg.crop, cfg.channels, contrast)


def _split(files: list[LabelledFile], parts: dict[str, list[LabelledFile]], cfg: TrainConfig,
           saved: dict | None, root: Path) -> dict[str, list[LabelledFile]]:
    if saved:
        by_rel = {_rel(f.path, root): f for f in files + [f for p in parts.values() for f in p]}
        missing = [r for s in SPLITS for r in saved[s] if r not in by_rel]
        if missing:
            console.print(f"[yellow]{len(missing)} files of the saved split are gone, e.g. {missing[0]}[/yellow]")
        return {s: [by_rel[r] for r in saved[s] if r in by_rel] for s in SPLITS}
    fr_train, fr_val, fr_test = cfg.split
    if "val" in parts and "test" in parts:
        return {"train": files, "val": parts["val"], "test": parts["test"]}
    if "val" in parts or "test" in parts:
        given = "val" if "val" in parts else "test"
        other_fraction = fr_test if given == "val" else fr_val
        rest = other_fraction / (fr_train + other_fraction)
        train, _, other = random_split(files, (1 - rest, 0.0, rest), cfg.seed)
        return {"train": train, given: parts[given], ("test" if given == "val" else "val"): other}
    train, val, test = random_split(files, cfg.split, cfg.seed)
    return {"train": train, "val": val, "test": test}


def _rel(path: Path, root: Path) -> str:
    try:
        return str(path.relative_to(root if root.is_dir() else root.parent))
    except ValueError:
        return str(path)


def print_text_summary(data: TextData) -> None:
    """The split, charset and input size a text run trains on, and the first files skipped."""
    n = {k: len(v) for k, v in data.samples.items()}
    spec = data.spec
    console.print(f"data: {n['train']} train / {n['val']} val / {n['test']} test, charset {data.charset!r} "
                  f"({len(data.charset)}), input {spec.height}x{spec.width} {'grey' if spec.channels == 1 else 'RGB'}"
                  + (f" of the box {','.join(map(str, spec.crop))}" if spec.crop else "")
                  + (", contrast stretched" if spec.contrast == "stretch" else "")
                  + (f", [yellow]{data.skipped.total} skipped[/yellow]" if data.skipped.total else ""))
    for reason in data.chosen:
        console.print(f"  input from the training images: {reason}")
    for file, why in (data.skipped.unreadable + data.skipped.bad_label)[:10]:
        console.print(f"  [yellow]skipped[/yellow] {file}: {why}")
    if data.skipped.total > 10:
        console.print(f"  ... and {data.skipped.total - 10} more")
