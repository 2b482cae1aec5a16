"""`inspect`: what a labelled text dataset holds, as numbers and PNG plots."""

from __future__ import annotations

import statistics
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from hardsight.config import TrainConfig, load_config
from hardsight.engine import plots
from hardsight.data.io import UnreadableImage, load_image, parallel_map, read_size
from hardsight.data.text.contract import InkSurvey, InputChoice, choose_input, survey_ink
from hardsight.data.text.labels import Skipped, TextLabelling, read_text_labels
from hardsight.errors import DataError


@dataclass
class Inspection:
    source: Path
    out: Path
    n_images: int
    skipped: Skipped
    length_histogram: dict[int, int]
    char_counts: dict[str, int]
    widths: list[int]
    heights: list[int]
    modes: dict[str, int]
    formats: dict[str, int]
    plots: list[Path] = field(default_factory=list)
    ink: InkSurvey | None = None  # where the text is and how it shows (None: no ink in any image looked at)
    input_choice: InputChoice | None = None  # the input contract `train text` would choose from these images


def inspect_dataset(data: Path | str, out: Path | str | None = None, label_pattern: str | None = None,
                    lowercase: bool = False, samples: int = 16) -> Inspection:
    data = Path(data)
    out = Path(out) if out else Path("runs") / "inspect" / (data.stem if data.is_file() else data.name)
    files, skipped = read_text_labels(data, TextLabelling(label_pattern, lowercase))

    def probe(f):
        try:
            im = load_image(f.path, "RGB")
            from PIL import Image

            with Image.open(f.path) as raw:
                mode, fmt = raw.mode, raw.format or f.path.suffix.lstrip(".").upper()
            return f, im, mode, fmt, None
        except UnreadableImage as e:
            return f, None, None, None, str(e)

    widths, heights, modes, formats, good, thumbs = [], [], Counter(), Counter(), [], []
    for f, im, mode, fmt, err in parallel_map(probe, files, workers=8, progress="reading images"):
        if err:
            skipped.unreadable.append((str(f.path), err))
            continue
        good.append(f)
        widths.append(im.width)
        heights.append(im.height)
        modes[mode] += 1
        formats[fmt] += 1
        if len(thumbs) < samples:
            thumbs.append((np.asarray(im), f.label))
    lengths = Counter(len(f.label) for f in good)
    chars = Counter("".join(f.label for f in good))
    ins = Inspection(data, out, len(good), skipped, dict(sorted(lengths.items())), dict(chars.most_common()),
                     widths, heights, dict(modes), dict(formats))
    if good:
        sizes = list(zip(widths, heights))
        try:
            ins.ink = survey_ink([f.path for f in good], sizes, one_size=sizes[0] if len(set(sizes)) == 1 else None)
            ins.input_choice = choose_input(ins.ink)
        except DataError:
            pass
        ins.plots = [
            plots.bar_chart(lengths, out / "label_lengths.png", "label length", "characters", sort_by_key=True),
            plots.bar_chart(chars, out / "char_frequency.png", "character frequency", "character"),
            plots.image_grid([t for t, _ in thumbs], [lab for _, lab in thumbs], out / "samples.png",
                             title=f"{len(thumbs)} of {len(good)} images"),
            _size_plot(widths, heights, out / "image_sizes.png"),
        ]
    return ins


def _size_plot(widths: list[int], heights: list[int], out: Path) -> Path:
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(4.5, 3.5))
    ax.scatter(widths, heights, s=8, alpha=0.4)
    ax.set(xlabel="width (px)", ylabel="height (px)", title="image sizes")
    ax.grid(alpha=0.3)
    return plots.save_figure(fig, out)


def print_inspection(ins: Inspection) -> None:
    from rich.table import Table

    from hardsight.console import console

    t = Table(title=f"{ins.source}", show_header=False)
    t.add_row("images used", str(ins.n_images))
    t.add_row("skipped", f"{ins.skipped.total} ({len(ins.skipped.unreadable)} unreadable, "
                         f"{len(ins.skipped.bad_label)} bad labels)")
    if ins.n_images:
        t.add_row("label lengths", ", ".join(f"{k}: {v}" for k, v in ins.length_histogram.items()))
        t.add_row("charset", f"{''.join(sorted(ins.char_counts))} ({len(ins.char_counts)})")
        rare = list(ins.char_counts.items())[-3:]
        t.add_row("rarest characters", ", ".join(f"{c!r}: {n}" for c, n in rare))
        t.add_row("width px (min / median / max)", f"{min(ins.widths)} / {statistics.median(ins.widths):g} / {max(ins.widths)}")
        t.add_row("height px (min / median / max)", f"{min(ins.heights)} / {statistics.median(ins.heights):g} / {max(ins.heights)}")
        t.add_row("modes", ", ".join(f"{k}: {v}" for k, v in ins.modes.items()))
        t.add_row("formats", ", ".join(f"{k}: {v}" for k, v in ins.formats.items()))
        if ins.ink is not None:
            t.add_row("glyphs (median height px)", f"{ins.ink.glyph_px:.0f}")
            t.add_row("ink contrast (grey / best channel)", f"{ins.ink.grey_contrast:.2f} / "
                                                            f"{ins.ink.colour_contrast:.2f}")
        else:
            t.add_row("ink", "none found: blank or uniform images")
        if ins.input_choice is not None:
            c = ins.input_choice
            t.add_row("input train text would choose",
                      f"height {c.height}, {'grey' if c.channels == 1 else 'RGB'}"
                      + (f", crop {','.join(map(str, c.crop))}" if c.crop else ", whole image")
                      + (", contrast stretched" if c.contrast == "stretch" else ""))
        t.add_row("plots", str(ins.out))
    console.print(t)
    for reason in ins.input_choice.reasons if ins.input_choice else ():
        console.print(f"  input: {reason}")
    if ins.ink is not None and ins.ink.blank:
        console.print(f"  [yellow]{len(ins.ink.blank)} of the {ins.ink.images} images looked at show no ink[/yellow]"
                      f" (blank or of one colour), e.g. {ins.ink.blank[0]}")
    for f, why in (ins.skipped.unreadable + ins.skipped.bad_label)[:10]:
        console.print(f"  [yellow]skipped[/yellow] {f}: {why}")


@dataclass
class ImageInspection:
    source: Path
    out: Path
    n_images: int
    n_files: int
    class_counts: dict[str, int]
    imbalance_ratio: float
    duplicates: int
    multi_label_items: int
    sizes: dict[str, int]  # "WxH" -> files
    skipped: Skipped
    plots: list[Path] = field(default_factory=list)
    augmented_copies: int = 0  # files a `hardsight balance` job made from another file of the set
    copied_originals: int = 0  # the originals those copies came from


def looks_like_image_classes(data: Path) -> bool:
    """Class folders (no images at the top) or a labels.csv layout mean an image task; else text."""
    from hardsight.data.io import is_image
    from hardsight.errors import DataError

    if not data.exists():
        raise DataError(f"{data}: no such file or folder")
    if data.is_file():
        return False
    if (data / "labels.csv").is_file():
        return True
    top = [p for p in data.iterdir() if p.is_file() and is_image(p)]
    subdirs = [d for d in data.iterdir() if d.is_dir() and any(is_image(p) for p in d.rglob("*"))]
    return not top and len(subdirs) >= 2


def inspect_image_dataset(data: Path | str, out: Path | str | None = None, label_col: str = "label",
                          per_class: int = 6, augment: Path | None = None) -> ImageInspection:
    """Class counts, imbalance, sizes, duplicates (identical pictures) and a sample row per class; with `augment`
    (a YAML file of training settings), what training on them feeds the model (augmented_samples)."""
    from hardsight.data.image.labels import class_counts, load_image_dataset

    data = Path(data)
    out = Path(out) if out else Path("runs") / "inspect" / (data.stem if data.is_file() else data.name)
    from hardsight.data.balance import manifest_rows

    ds = load_image_dataset(data, 64, label_col=label_col, workers=8)
    copies = {row["file"]: row["source"] for _, row in manifest_rows(data) if row.get("kind") == "augmented"}
    counts = class_counts(ds.items, ds.classes)
    sizes: Counter[str] = Counter()
    for it in ds.items:
        for p in it.paths:
            sizes["%dx%d" % read_size(p)] += 1
    nonzero = [v for v in counts.values() if v]
    ins = ImageInspection(data, out, len(ds.items), sum(len(it.paths) for it in ds.items), counts,
                          max(nonzero) / min(nonzero) if nonzero else 0.0, ds.duplicates,
                          sum(len(it.labels) > 1 for it in ds.items), dict(sizes.most_common()), ds.skipped,
                          augmented_copies=len(copies), copied_originals=len(set(copies.values())))
    thumbs, titles = [], []
    for c in ds.classes:
        picks = [it for it in ds.items if c in it.labels][:per_class]
        thumbs += [it.picture().permute(1, 2, 0).numpy() for it in picks] + [np.full((64, 64, 3), 255, np.uint8)] * (per_class - len(picks))
        titles += [c] + [""] * (per_class - 1)
    ins.plots = [plots.bar_chart(counts, out / "class_counts.png", "images per class", "class"),
                 plots.image_grid(thumbs, titles, out / "samples_per_class.png", cols=per_class,
                                  title="samples per class")]
    if augment is not None:
        cfg = load_config(augment, {"task": "image", "data": str(data), "label_col": label_col})
        ins.plots.append(augmented_samples(cfg, out / "augmented_samples.png"))
    return ins


def augmented_samples(cfg: TrainConfig, out: Path, images: int = 4, draws: int = 8) -> Path:
    """A row per training image of `cfg` (one per class, up to `images`): the image as cached, then `draws`
    samples of it from the dataset training itself draws from, so what is shown is what the model sees."""
    import torch

    from hardsight.data.image.prepare import ImageDataModule, prepare_image_data
    from hardsight.faces.stage import face_preprocess

    data = prepare_image_data(cfg, preprocess=face_preprocess(cfg))
    train = ImageDataModule(data, cfg).dataset("train", train=True)
    first: dict[str, int] = {}  # each class's first training image
    for i, it in enumerate(train.items):
        for label in it.labels:
            first.setdefault(label, i)
    picks = list(dict.fromkeys(first[c] for c in data.classes if c in first))[:images]
    torch.manual_seed(cfg.seed)
    thumbs, titles = [], []
    for i in picks:
        thumbs.append(train.items[i].picture().permute(1, 2, 0).numpy())
        titles.append(", ".join(train.items[i].labels))
        for _ in range(draws):
            thumbs.append((train[i][0] * 255).round().clamp(0, 255).to(torch.uint8).permute(1, 2, 0).numpy())
            titles.append("")
    return plots.image_grid(thumbs, titles, out, cols=draws + 1,
                            title=f"training augmentation: each image as cached, then {draws} draws")


def print_image_inspection(ins: ImageInspection) -> None:
    from rich.table import Table

    from hardsight.console import console

    t = Table(title=str(ins.source), show_header=False)
    t.add_row("distinct images", f"{ins.n_images} ({ins.n_files} files)")
    t.add_row("duplicates found", f"{ins.duplicates} files repeat another's pixels "
                                  f"({ins.multi_label_items} images carry several labels)")
    if ins.augmented_copies:
        t.add_row("augmented copies", f"{ins.augmented_copies} files made by `hardsight balance` from "
                                      f"{ins.copied_originals} originals; splits keep each with its original")
    t.add_row("classes", str(len(ins.class_counts)))
    t.add_row("imbalance (largest / smallest)", f"{ins.imbalance_ratio:.1f} : 1")
    t.add_row("sizes", ", ".join(f"{k}: {v}" for k, v in list(ins.sizes.items())[:5]))
    t.add_row("skipped", str(ins.skipped.total))
    t.add_row("plots", str(ins.out))
    console.print(t)
    c = Table("class", "images", "share", title="class counts")
    total = sum(ins.class_counts.values()) or 1
    for k, v in sorted(ins.class_counts.items(), key=lambda kv: -kv[1]):
        c.add_row(k, str(v), f"{v / total:.1%}")
    console.print(c)
    for f, why in (ins.skipped.unreadable + ins.skipped.bad_label)[:10]:
        console.print(f"  [yellow]skipped[/yellow] {f}: {why}")
