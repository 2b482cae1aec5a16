"""Oversampling by augmentation: a new folder with N images per class; the originals are only read.

OUT/<class>/ gets copies of the originals (a seeded random N when a class has more) and augmented
images named after their source, `<stem>_aug<k><ext>`, until the class has N. Each finished file is
appended to OUT/balance_manifest.csv, so an interrupted job resumes where it stopped.

With `shard=(i, n)` (`--shard i/n`, see hardsight.jobs.shards) a job plans the whole OUT as above (so every
shard reads every original once, to check it), then writes only files i, i+n, ... of that plan, listed
in its own OUT/balance_manifest.shard-i-of-n.csv. The n shards' files together are exactly the files an
unsharded job writes. Shards share OUT, so each resumes from every manifest found there.
"""

from __future__ import annotations

import contextlib
import os
import random
import shutil
import zlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterator

from PIL import Image, ImageStat

from hardsight.data.io import UnreadableImage, list_images, load_image, open_image, parallel_map, refuse_out_inside
from hardsight.errors import DataError
from hardsight.jobs.files import atomic_write
from hardsight.jobs.manifest import Manifest, track_progress
from hardsight.jobs.shards import Shard, check_shard, locked, take

MANIFEST = "balance_manifest.csv"
MANIFEST_FIELDS = ["class", "file", "source", "kind"]  # file: relative to OUT; source: relative to DATA
LOCK = ".balance.lock"  # held by shards while they check and claim OUT


@dataclass(frozen=True)
class Planned:
    cls: str
    file: str  # relative to OUT
    source: Path
    kind: str  # "original" or "augmented"
    seed: int = 0  # of the augmentation


@dataclass
class ClassCount:
    originals: int = 0
    augmented: int = 0
    unreadable: int = 0

    @property
    def total(self) -> int:
        return self.originals + self.augmented


@dataclass
class BalanceResult:
    data: Path
    out: Path
    per_class: int
    seed: int
    classes: dict[str, ClassCount]
    unreadable: list[tuple[str, str]] = field(default_factory=list)  # (file, why)
    resumed: int = 0  # files already done, found in the manifest
    shard: Shard | None = None  # (i, n), 0-based: counts are this shard's files; shard 0 reports unreadable ones

    def to_json(self) -> dict[str, Any]:
        return {"data": str(self.data), "out": str(self.out), "per_class": self.per_class, "seed": self.seed,
                "classes": {c: {"originals": n.originals, "augmented": n.augmented, "total": n.total,
                                "unreadable": n.unreadable} for c, n in self.classes.items()},
                "unreadable": [{"file": f, "error": e} for f, e in self.unreadable], "resumed": self.resumed,
                "shard": list(self.shard) if self.shard else None}


def _augmenter(image: Image.Image):
    """Rotation, perspective skew, mirror, brightness and contrast; corners filled with the image's mean colour."""
    from torchvision.transforms import v2

    fill = [round(m) for m in ImageStat.Stat(image).mean]
    fill = fill[0] if len(fill) == 1 else fill
    return v2.Compose([
        v2.RandomHorizontalFlip(p=0.5),
        v2.RandomRotation(degrees=15, fill=fill),
        v2.RandomPerspective(distortion_scale=0.2, p=0.5, fill=fill),
        v2.ColorJitter(brightness=0.3, contrast=0.3),
    ])


def augment(image: Image.Image, seed: int) -> Image.Image:
    """One augmented copy of `image`, the same size and mode, repeatable from `seed`."""
    import torch

    with torch.random.fork_rng(devices=[]):  # seeded per image, so resuming or reordering changes nothing
        torch.manual_seed(seed)
        return _augmenter(image)(image)


def _class_folders(data: Path) -> dict[str, list[Path]]:
    folders = sorted(d for d in data.iterdir() if d.is_dir() and not d.name.startswith("."))
    return {d.name: files for d in folders if (files := list_images(d))}


def _check(path: Path) -> str | None:
    try:
        load_image(path)
        return None
    except UnreadableImage as e:
        return str(e)


def plan(data: Path, per_class: int, seed: int = 0) -> tuple[list[Planned], dict[str, ClassCount],
                                                                 list[tuple[str, str]]]:
    """Every file OUT will hold, in order, with the per-class counts and the unreadable originals."""
    data = Path(data)
    classes = _class_folders(data)
    if not classes:
        raise DataError(f"{data}: expected one folder per class holding images (DATA/<class>/*.jpg)")
    every = [p for files in classes.values() for p in files]
    errors = dict(zip(every, parallel_map(_check, every, workers=min(8, os.cpu_count() or 1),
                                          progress="checking images")))
    planned, counts, unreadable = [], {}, []
    for cls, files in classes.items():
        good = [p for p in files if errors[p] is None]
        unreadable += [(str(p), errors[p]) for p in files if errors[p] is not None]
        rng = random.Random(f"{seed}/{cls}")
        keep = sorted(rng.sample(good, per_class)) if len(good) > per_class else good
        counts[cls] = ClassCount(len(keep), max(0, per_class - len(keep)) if keep else 0, len(files) - len(good))
        planned += [Planned(cls, p.relative_to(data).as_posix(), p, "original") for p in keep]
        taken = {p.file for p in planned}
        next_k = dict.fromkeys(keep, 1)
        for j in range(counts[cls].augmented):
            src = keep[j % len(keep)]
            while (name := _aug_name(src, data, next_k[src])) in taken:  # DATA may itself be a balanced set
                next_k[src] += 1
            next_k[src] += 1
            taken.add(name)
            planned.append(Planned(cls, name, src, "augmented", zlib.crc32(f"{seed}/{name}".encode())))
    return planned, counts, unreadable


NAME_MAX = 255  # bytes in one file name, on the common filesystems


def _aug_name(source: Path, data: Path, k: int) -> str:
    """`<stem>_aug<k><ext>`; a stem too long for that is cut and tagged with its hash, so names stay distinct."""
    rel = source.relative_to(data)
    tail = f"_aug{k}{source.suffix}"
    stem = source.stem
    if len((stem + tail).encode()) > NAME_MAX:
        tag = f"-{zlib.crc32(stem.encode()):08x}"
        room = NAME_MAX - len((tag + tail).encode())
        stem = stem.encode()[:room].decode("utf-8", "ignore") + tag
    return rel.with_name(stem + tail).as_posix()


def _read_manifest(manifest: Manifest, planned: list[Planned], data: Path) -> set[str]:
    """Files already written by an earlier run (or another shard) with the same settings."""
    by_file = {p.file: p for p in planned}
    done = set()
    for path, row in manifest.rows():
        p = by_file.get(row.get("file", ""))
        if p is None or p.kind != row.get("kind") or p.source.relative_to(data).as_posix() != row.get("source"):
            raise DataError(f"{path}: {row.get('file')!r} is not what these settings would write there; "
                            f"resume with the same DATA, --per-class and --seed, or choose a new OUT")
        if (manifest.out / p.file).is_file():
            done.add(p.file)
    return done


def _manifest(out: Path, shard: Shard | None = None) -> Manifest:
    return Manifest(out, Path(MANIFEST).stem, MANIFEST_FIELDS, shard)


def manifest_rows(out: Path) -> Iterator[tuple[Path, dict[str, str]]]:
    """(manifest, row) for every complete row of every manifest of a balance output (the job's and its shards')."""
    return _manifest(out).rows()


def copy_sources(folder: Path) -> dict[Path, str]:
    """Every file a `hardsight balance` job wrote in `folder`, mapped to the original it came from.

    Empty for a folder that is not a balance output. Splits group by this, so an augmented copy always lands on
    the same side as its source (and as the source's other copies): otherwise test images leak into training.
    """
    folder = Path(folder)
    if not folder.is_dir():
        return {}
    return {folder / row["file"]: row["source"] for _, row in manifest_rows(folder)
            if row.get("file") and row.get("source")}


def _write(item: Planned, out: Path) -> None:
    target = out / item.file
    target.parent.mkdir(parents=True, exist_ok=True)
    with atomic_write(target) as tmp:
        if item.kind == "original":
            shutil.copy2(item.source, tmp)
        else:
            im = open_image(item.source)
            fmt = im.format  # the source's real format, whatever its extension says
            image = im if im.mode in ("L", "RGB") else im.convert("RGBA" if "A" in im.getbands() else "RGB")
            augmented = augment(image, item.seed)
            if fmt == "JPEG" and augmented.mode == "RGBA":
                augmented = augmented.convert("RGB")
            extra = {"quality": 95} if fmt in ("JPEG", "WEBP") else {}
            augmented.save(tmp, format=fmt or "PNG", **extra)


def balance(data: Path | str, out: Path | str, per_class: int, seed: int = 0, resume: bool = False,
            progress: bool = True, shard: Shard | None = None) -> BalanceResult:
    """Write OUT with `per_class` images per class of DATA: originals first, augmented copies to fill up.

    Args:
        resume: finish an interrupted job in OUT (files listed in its manifests are kept as they are).
        shard: (i, n), 0-based: write only files i, i+n, ... of the plan; always resumes, as shards share OUT.
    """
    data, out, shard = Path(data), Path(out), check_shard(shard)
    if per_class < 1:
        raise DataError(f"--per-class {per_class}: expected at least 1 image per class")
    if not data.is_dir():
        raise DataError(f"{data}: no such folder; expected DATA/<class>/*.jpg")
    refuse_out_inside(out, data)
    if not shard and out.exists() and any(out.iterdir()):
        if not resume:
            raise DataError(f"{out}: not empty; pass --resume to finish an interrupted job there, or choose a new OUT")
        if not _manifest(out).found():  # never write over files that no balance job of ours made
            raise DataError(f"{out}: not empty and holds no {MANIFEST}, so it is not an interrupted "
                            f"`hardsight balance` job; --resume only finishes one of those; choose a new OUT")
    planned, counts, unreadable = plan(data, per_class, seed)
    manifest = _manifest(out, shard)
    with locked(out / LOCK) if shard else contextlib.nullcontext():
        if shard and out.exists() and (not out.is_dir() or (any(p.name != LOCK for p in out.iterdir())
                                                             and not manifest.found())):
            raise DataError(f"{out}: not empty and not a `hardsight balance` folder; choose a new OUT")
        out.mkdir(parents=True, exist_ok=True)
        manifest.claim()  # before any image is written
    done = _read_manifest(manifest, planned, data) if resume or shard else set()
    mine = take(planned, shard)
    todo = [p for p in mine if p.file not in done]
    if shard:
        counts, unreadable = _shard_counts(mine, counts, shard), unreadable if shard[0] == 0 else []
    with manifest.appending() as append:
        for item in track_progress(todo, len(todo), "writing images", progress):
            _write(item, out)
            append({"class": item.cls, "file": item.file, "source": item.source.relative_to(data).as_posix(),
                    "kind": item.kind})
    return BalanceResult(data, out, per_class, seed, counts, unreadable, len(mine) - len(todo), shard)


def _shard_counts(mine: list[Planned], counts: dict[str, ClassCount], shard: Shard) -> dict[str, ClassCount]:
    """Per class, the files this shard writes; unreadable originals counted by shard 0 only, so shards add up."""
    out = {c: ClassCount(unreadable=n.unreadable if shard[0] == 0 else 0) for c, n in counts.items()}
    for p in mine:
        if p.kind == "original":
            out[p.cls].originals += 1
        else:
            out[p.cls].augmented += 1
    return out


def print_balance(result: BalanceResult) -> None:
    """Per class: originals, augmented, total; then the files skipped."""
    from rich.table import Table

    from hardsight.console import console

    shard = f" (shard {result.shard[0]}/{result.shard[1]})" if result.shard else ""
    table = Table("class", "originals", "augmented", "total", "unreadable", title=f"{result.out}{shard}")
    for cls, n in result.classes.items():
        table.add_row(cls, str(n.originals), str(n.augmented), str(n.total), str(n.unreadable or ""))
    console.print(table)
    empty = [] if result.shard else [c for c, n in result.classes.items() if n.total == 0]  # a shard may get none
    if empty:
        console.print(f"[yellow]no readable images, nothing written for: {', '.join(empty)}[/yellow]")
    for file, why in result.unreadable[:20]:
        console.print(f"  [yellow]skipped[/yellow] {file}: {why}")
    if len(result.unreadable) > 20:
        console.print(f"  ... and {len(result.unreadable) - 20} more unreadable files")
    if result.resumed:
        console.print(f"resumed: {result.resumed} files were already done")
