"""Labelled image sets for classification: class folders, CSV or AffectNet, duplicates merged, seeded splits.

The same picture (identical pixels) filed under two classes is one multi-label example, and it sits
on one side of a split only: otherwise test images leak into training.
"""

from __future__ import annotations

import csv
import hashlib
import random
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

from typing import TYPE_CHECKING, Any

import numpy as np

from hardsight.data.balance import copy_sources
from hardsight.data.image.affectnet import ANNOTATIONS, IMAGES, LAYOUT, is_affectnet, read_affectnet
from hardsight.data.image.store import cached_form
from hardsight.data.io import UnreadableImage, is_image, list_images, load_image, parallel_map, read_csv_text
from hardsight.data.text.labels import Skipped
from hardsight.errors import DataError

if TYPE_CHECKING:  # torch loads on first decode, so listing files (`hardsight landmarks`) stays quick
    import torch

LABEL_SEPARATORS = (";", "|")


@dataclass(frozen=True)
class Occlusion:
    """An occluder drawn on a picture when it is read (the occlusion study's occluded faces), so an occluded
    version costs no second copy of the picture."""

    occluder: str
    seed: int
    area: float = 0.2

    def draw(self, picture: torch.Tensor, landmarks: np.ndarray | None) -> torch.Tensor:
        from hardsight.faces.stage import occlude_tensor

        return occlude_tensor(picture, self.occluder, landmarks, self.seed, self.area)


@dataclass
class ImageItem:
    """One distinct picture: every file holding it, all its labels, its group (e.g. a person), and where its
    decoded picture is: held (`image`), or read on demand from `source` (data/image/store.py)."""

    paths: list[Path]
    labels: list[str]
    group: str | None = None
    image: torch.Tensor | None = None  # uint8 (3, S, S) at the model's input size, when held in RAM
    landmarks: np.ndarray | None = None  # (68, 2) in the cached image's pixels, when a face stage found them
    source: tuple[Any, Any] | None = None  # (reader, key): reader.read(key) -> (picture, landmarks), when not held
    occlusion: Occlusion | None = None  # drawn on every read
    digest: str | None = None  # content digest (pixels when decoded up front, file bytes otherwise)

    @property
    def path(self) -> Path:
        return self.paths[0]

    def picture_and_landmarks(self) -> tuple[torch.Tensor, np.ndarray | None]:
        """The picture as training sees it (occluded when this is an occluded version) and its landmarks."""
        if self.image is not None:
            picture, landmarks = self.image, self.landmarks
        else:
            reader, key = self.source
            picture, read = reader.read(key)
            landmarks = self.landmarks if self.landmarks is not None else read
        if self.occlusion is not None:
            picture = self.occlusion.draw(picture, landmarks)
        return picture, landmarks

    def picture(self) -> torch.Tensor:
        return self.picture_and_landmarks()[0]


@dataclass
class ImageDataset:
    items: list[ImageItem]
    classes: list[str]
    skipped: Skipped
    duplicates: int = 0  # files merged into another file's item
    unknown_classes: dict[str, int] = field(default_factory=dict)  # label -> files, when classes were given


def read_labelled_files(source: Path, label_col: str = "label", group_col: str | None = None,
                        extra_labels: Path | None = None) -> tuple[list[tuple[Path, list[str], str | None]], Skipped]:
    """(file, labels, group) from class folders, a CSV, a folder holding labels.csv (+ images/), or AffectNet's
    images/ + annotations/."""
    source = Path(source)
    skipped = Skipped()
    if not source.exists():
        raise DataError(f"{source}: no such file or folder")
    if source.is_dir() and (source / "labels.csv").is_file() and not is_affectnet(source):
        source = source / "labels.csv"  # the faces layout: labels.csv beside images/
    if source.is_file():
        rows = _read_csv(source, label_col, group_col, skipped)
    elif is_affectnet(source):
        _refuse_mixed_layout(source)
        rows = read_affectnet(source, skipped)
    else:
        classes = _class_dirs(source)
        if not classes:
            raise DataError(f"{source}: expected one folder per class (DATA/<class>/*.jpg), a CSV manifest, or "
                            f"AffectNet's images/ + {LAYOUT}")
        sources = copy_sources(source)  # a balance output: each augmented copy is grouped with its original
        rows = [(p, [d.name], sources.get(p)) for d in classes for p in list_images(d)]
        if not rows:
            raise DataError(f"{source}: the class folders hold no images")
    if extra_labels:
        rows = _add_extra_labels(rows, Path(extra_labels), source)
    return rows, skipped


def _class_dirs(folder: Path, skip: tuple[str, ...] = ()) -> list[Path]:
    return sorted(d for d in folder.iterdir() if d.is_dir() and not d.name.startswith(".") and d.name not in skip
                  and any(is_image(p) for p in d.rglob("*")))


def _refuse_mixed_layout(folder: Path) -> None:
    """An AffectNet folder that also holds class folders or labels.csv: which labels count would be a guess."""
    others = [f"{d.name}/" for d in _class_dirs(folder, skip=(IMAGES, ANNOTATIONS))]
    others += ["labels.csv"] if (folder / "labels.csv").is_file() else []
    if others:
        raise DataError(f"{folder}: holds both AffectNet labels ({LAYOUT}) and {', '.join(others[:5])}"
                        f"{' ...' if len(others) > 5 else ''}; keep one layout per folder")


def _read_csv(path: Path, label_col: str, group_col: str | None, skipped: Skipped):
    with read_csv_text(path) as f:
        reader = csv.DictReader(f)
        cols = [c.strip() for c in reader.fieldnames or []]
        for need in ["file", label_col] + ([group_col] if group_col else []):
            if need not in cols:
                raise DataError(f"{path}: no column {need!r} (columns: {cols}); set --label-col/--group-col")
        merged: dict[Path, tuple[list[str], str | None]] = {}
        for lineno, row in enumerate(reader, start=2):
            row = {k.strip(): (v or "").strip() for k, v in row.items() if k}
            file = resolve_listed(path.parent, row["file"])
            labels = _split_labels(row[label_col])
            if file is None:
                skipped.unreadable.append((f"{path}:{lineno}", f"{row['file']}: no such file"))
            elif not labels:
                skipped.bad_label.append((f"{path}:{lineno}", f"{row['file']}: empty {label_col!r}"))
            else:
                old = merged.get(file, ([], None))[0]
                merged[file] = (old + [lab for lab in labels if lab not in old], row.get(group_col) if group_col else None)
    return [(p, labs, g) for p, (labs, g) in merged.items()]


def resolve_listed(base: Path, name: str) -> Path | None:
    """CSV paths resolve relative to the CSV's folder, then its images/ subfolder."""
    for cand in (base / name, base / "images" / name):
        if cand.is_file():
            return cand
    return None


def _split_labels(value: str) -> list[str]:
    for sep in LABEL_SEPARATORS:
        if sep in value:
            return [v.strip() for v in value.split(sep) if v.strip()]
    return [value] if value else []


def _add_extra_labels(rows, extra: Path, source: Path):
    """A label-correction CSV (file,label) adds labels to files already in the set."""
    if not extra.is_file():
        raise DataError(f"{extra}: no such label-correction CSV")
    base = source if source.is_dir() else source.parent
    by_path = {p.resolve(): (p, labs, g) for p, labs, g in rows}
    with read_csv_text(extra) as f:
        for lineno, row in enumerate(csv.DictReader(f), start=2):
            file = resolve_listed(base, (row.get("file") or "").strip()) or resolve_listed(extra.parent, (row.get("file") or "").strip())
            if file is None or file.resolve() not in by_path:
                raise DataError(f"{extra}:{lineno}: {row.get('file')!r} is not a file of the dataset")
            p, labs, g = by_path[file.resolve()]
            for lab in _split_labels((row.get("label") or "").strip()):
                if lab not in labs:
                    labs.append(lab)
    return list(by_path.values())


def load_image_dataset(source: Path, size: int, label_col: str = "label", group_col: str | None = None,
                       extra_labels: Path | None = None, classes: list[str] | None = None,
                       workers: int = 4, preprocess=None) -> ImageDataset:
    """Decode every file once (cached at `size`), merge identical pictures, keep known classes."""
    rows, skipped = read_labelled_files(source, label_col, group_col, extra_labels)
    return decode_labelled_files(source, rows, skipped, size, classes, workers, preprocess)


def limit_per_class(rows: list[tuple[Path, list[str], str | None]], n: int,
                    seed: int) -> list[tuple[Path, list[str], str | None]]:
    """A seeded subset of at most `n` files per class, in the rows' order: files are drawn in an order shuffled by
    `seed` (from their names, so the same files, n and seed always give the same subset), each kept while every
    one of its classes has room."""
    order = sorted(range(len(rows)), key=lambda i: str(rows[i][0]))
    random.Random(seed).shuffle(order)
    taken: Counter[str] = Counter()
    kept = set()
    for i in order:
        if all(taken[lab] < n for lab in rows[i][1]):
            taken.update(rows[i][1])
            kept.add(i)
    return [row for i, row in enumerate(rows) if i in kept]


def decode_labelled_files(source: Path, rows: list[tuple[Path, list[str], str | None]], skipped: Skipped, size: int,
                          classes: list[str] | None = None, workers: int = 4, preprocess=None,
                          cache: str = "ram") -> ImageDataset:
    """`rows` of read_labelled_files(source) as items, identical pictures merged, known classes kept.

    Args:
        cache: ram (decoded now and held; pictures equal after decoding are merged), disk (decoded once into a
            memory-mapped cache file, reused by later runs) or none (decoded on every read); the last two merge
            byte-identical files, found from their digests without decoding (data/image/store.py).
    """
    if cache == "ram":
        items, duplicates = _decoded_items(rows, skipped, size, workers, preprocess)
    else:
        items, duplicates = _streamed_items(rows, skipped, size, workers, preprocess, cache)
    unknown: Counter[str] = Counter()
    if classes is not None:
        known = set(classes)
        kept = []
        for it in items:
            unknown.update(lab for lab in it.labels if lab not in known)
            it.labels = [lab for lab in it.labels if lab in known]
            if it.labels:
                kept.append(it)
            else:
                skipped.bad_label.append((str(it.path), "none of its classes is known to the model"))
        items = kept
    else:
        classes = sorted({lab for it in items for lab in it.labels})
    if not items:
        raise DataError(f"{source}: no usable images ({skipped.total} skipped)")
    return ImageDataset(items, classes, skipped, duplicates, dict(unknown))


def _merge(item: ImageItem, path: Path, labels: list[str]) -> None:
    item.paths.append(path)
    item.labels += [lab for lab in labels if lab not in item.labels]


def _decoded_items(rows, skipped: Skipped, size: int, workers: int, preprocess) -> tuple[list[ImageItem], int]:
    """Every file decoded now and held in RAM; files with the same decoded pixels are one item."""
    def decode(row):
        path, labels, group = row
        try:
            im = load_image(path, "RGB")
            if preprocess is not None:
                im = preprocess(path, im)
            digest = hashlib.sha1(np.asarray(im).tobytes() + str(im.size).encode()).hexdigest()  # at full size
            picture, lm = cached_form(im, size)
            return row, digest, picture, None, lm
        except UnreadableImage as e:
            return row, None, None, str(e), None
        except Exception as e:  # a face stage may fail per file; never stop the whole set
            return row, None, None, f"{type(e).__name__}: {e}", None

    by_digest: dict[str, ImageItem] = {}
    duplicates = 0
    for (path, labels, group), digest, tensor, err, lm in parallel_map(decode, rows, workers, progress="decoding images"):
        if err:
            skipped.unreadable.append((str(path), err))
        elif digest in by_digest:
            duplicates += 1
            _merge(by_digest[digest], path, labels)
        else:
            by_digest[digest] = ImageItem([path], list(labels), group, tensor, lm, digest=digest)
    return list(by_digest.values()), duplicates


def _streamed_items(rows, skipped: Skipped, size: int, workers: int, preprocess,
                    cache: str) -> tuple[list[ImageItem], int]:
    """Items whose pictures are read on demand: from the disk cache (built here when missing) or the files."""
    from hardsight.data.image.index import file_digests
    from hardsight.data.image.store import DiskPictures, FilePictures
    from hardsight.data.io import read_size

    by_digest: dict[str, ImageItem] = {}
    duplicates = 0
    for (path, labels, group), digest in zip(rows, file_digests([r[0] for r in rows], workers)):
        if digest is None:
            skipped.unreadable.append((str(path), "cannot be read"))
        elif digest in by_digest:
            duplicates += 1
            _merge(by_digest[digest], path, labels)
        else:
            by_digest[digest] = ImageItem([path], list(labels), group, digest=digest)
    items = list(by_digest.values())
    if cache == "disk":
        store = DiskPictures.build([it.path for it in items], [it.digest for it in items], size, preprocess, workers)
        for row, it in enumerate(items):
            it.source = (store, row)
        bad = {int(row) for row in store.bad}
        skipped.unreadable += [(str(items[row].path), store.bad[str(row)]) for row in sorted(bad)]
        return [it for row, it in enumerate(items) if row not in bad], duplicates

    def readable(it: ImageItem) -> str | None:
        try:
            read_size(it.path)  # the header only: a file that is not an image is left out now, not mid-epoch
        except UnreadableImage as e:
            return str(e)
        return None

    reader, kept = FilePictures(size, preprocess), []
    for it, why in zip(items, parallel_map(readable, items, workers)):
        if why:
            skipped.unreadable.append((str(it.path), why))
        else:
            it.source = (reader, it.path)
            kept.append(it)
    return kept, duplicates


def stratified_split(items: list[ImageItem], fractions: tuple[float, float, float], seed: int,
                     grouped: bool = False) -> dict[str, list[ImageItem]]:
    """Seeded split stratified by each item's rarest label; with groups, no group spans two parts."""
    from sklearn.model_selection import GroupShuffleSplit, train_test_split

    freq = Counter(lab for it in items for lab in it.labels)
    strat = [min(it.labels, key=lambda lab: (freq[lab], lab)) for it in items]
    idx = np.arange(len(items))
    _, f_val, f_test = fractions

    def cut(ix: np.ndarray, frac: float, salt: int) -> tuple[np.ndarray, np.ndarray]:
        if frac <= 0:
            return ix, ix[:0]
        if grouped:
            groups = [items[i].group or str(items[i].path) for i in ix]
            tr, te = next(GroupShuffleSplit(n_splits=1, test_size=frac, random_state=seed + salt).split(ix, groups=groups))
            return ix[tr], ix[te]
        labels = [strat[i] for i in ix]
        counts = Counter(labels)
        ok = min(counts.values()) >= 2 and round(frac * len(ix)) >= len(counts)
        a, b = train_test_split(ix, test_size=frac, random_state=seed + salt, stratify=labels if ok else None)
        return np.asarray(a), np.asarray(b)

    rest, test = cut(idx, f_test, 0)
    train, val = cut(rest, f_val / max(1e-9, 1 - f_test), 1)
    if len(train) == 0:
        raise DataError(f"{len(items)} images are too few for a {fractions} split")
    return {"train": [items[i] for i in sorted(train)], "val": [items[i] for i in sorted(val)],
            "test": [items[i] for i in sorted(test)]}


def class_counts(items: list[ImageItem], classes: list[str]) -> dict[str, int]:
    c = Counter(lab for it in items for lab in it.labels)
    return {k: c.get(k, 0) for k in classes}


