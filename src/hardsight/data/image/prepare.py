"""Everything an image run needs from disk: items, classes, duplicate-aware split, cached tensors, batches."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import lightning as L
import torch
from torch.utils.data import DataLoader, Dataset, WeightedRandomSampler

from hardsight.config import AUGMENT_RANGES, TrainConfig
from hardsight.console import console
from hardsight.data.image.store import CACHE_WORDS, choose_mode
from hardsight.data.image.labels import (ImageDataset, ImageItem, class_counts, decode_labelled_files, limit_per_class,
                                        read_labelled_files, stratified_split)
from hardsight.data.text.labels import Skipped
from hardsight.engine.distributed import eval_sampler, world_size_of
from hardsight.errors import DataError
from hardsight.transforms import image_augmentation

SPLITS = ("train", "val", "test")


@dataclass
class ImageData:
    classes: list[str]
    items: dict[str, list[ImageItem]]
    skipped: Skipped
    duplicates: int
    root: Path
    folders: dict[str, str] = field(default_factory=dict)  # part -> the folder it was given as (--test-dir)
    limited: tuple[int, int, int] | None = None  # --limit-per-class: (per class, files kept, files of DATA)
    cache: str = "ram"  # where the pictures are: ram, disk or none (data/image/store.py)

    def class_weights(self, mode: str) -> list[float]:
        """'balanced': n / (k * count) per class, as scikit-learn's; 'sqrt': its square root, which lifts rare
        classes without trading away as much top-1 accuracy on a long tail; 'none': ones."""
        counts = class_counts(self.items["train"], self.classes)
        if mode == "none":
            return [1.0] * len(self.classes)
        n, k = sum(counts.values()), len(self.classes)
        power = 0.5 if mode == "sqrt" else 1.0
        return [round((n / (k * max(counts[c], 1))) ** power, 4) for c in self.classes]

    def channel_statistics(self) -> tuple[tuple[float, ...], tuple[float, ...]]:
        """Per-channel mean and std of the training split's cached images in [0, 1], for `normalize: data`;
        summed image by image, so a large split is never held as floats at once."""
        total, squares, pixels = torch.zeros(3, dtype=torch.float64), torch.zeros(3, dtype=torch.float64), 0
        for it in self.items["train"]:
            x = it.picture().flatten(1).to(torch.float64) / 255
            total += x.sum(1)
            squares += (x * x).sum(1)
            pixels += x.shape[1]
        mean = total / pixels
        std = (squares / pixels - mean * mean).clamp_min(0).sqrt()
        return tuple(mean.tolist()), tuple(std.tolist())

    def labels_json(self, cfg: TrainConfig) -> dict[str, Any]:
        return {"task": "image", "classes": self.classes, "multi_label": cfg.multi_label,
                "input": {"height": cfg.image_size, "width": cfg.image_size, "channels": 3}}

    def split_json(self, seed: int) -> dict[str, Any]:
        base = self.root if self.root.is_dir() else self.root.parent
        return {"seed": seed, "root": str(self.root),
                **{s: [[_rel(p, base) for p in it.paths] for it in self.items[s]] for s in SPLITS}}


def prepare_image_data(cfg: TrainConfig, saved_split: dict | None = None, saved_labels: dict | None = None,
                       preprocess=None) -> ImageData:
    """Read, merge duplicates, split (or reuse a saved split) and cache at the input size.

    A part given as a folder (--val-dir, --test-dir) is that folder's images, read as DATA is; DATA (after
    --limit-per-class) is split into the other parts, their --split fractions renormalised."""
    data = Path(cfg.data)
    base = data if data.is_dir() else data.parent
    rows, skipped = read_labelled_files(data, cfg.label_col, cfg.group_col,
                                        Path(cfg.extra_labels) if cfg.extra_labels else None)
    read = len(rows)
    where = None
    if saved_split:  # the files the run was split from, and no others: a limited subset is never drawn again
        where = {_rel(Path(p), base): s for s in SPLITS for paths in saved_split[s] for p in paths}
        rows = [row for row in rows if _rel(row[0], base) in where]
    elif cfg.limit_per_class:
        rows = limit_per_class(rows, cfg.limit_per_class, cfg.seed)
    mode = choose_mode(cfg.cache, len(rows), cfg.image_size, cfg.devices)
    ds: ImageDataset = decode_labelled_files(data, rows, skipped, cfg.image_size,
                                             classes=saved_labels["classes"] if saved_labels else None,
                                             workers=cfg.workers or 4, preprocess=preprocess, cache=mode)
    if len(ds.classes) < 2 and not cfg.multi_label:
        raise DataError(f"{cfg.data}: one class only ({ds.classes[0]!r}); a classifier needs at least two "
                        f"(DATA/<class>/*.jpg with a folder per class), or --multi-label for a yes/no label")
    if cfg.group_col and any(it.group in (None, "") for it in ds.items):
        raise DataError(f"{cfg.data}: some rows have an empty {cfg.group_col!r}; every image needs a group")
    given = _given_parts(cfg, ds.classes, where, preprocess, skipped, mode)
    if saved_split:
        items: dict[str, list[ImageItem]] = {s: [] for s in SPLITS}
        for it in ds.items:
            part = next((where[_rel(p, base)] for p in it.paths if _rel(p, base) in where), None)
            if part and part not in given:  # a given part holds its folder's images only
                items[part].append(it)
        items.update(given)
    else:
        rest = _outside(ds.items, given)
        # groups: --group-col (people), or the originals of a balance output's augmented copies
        items = {**stratified_split(rest, _remaining(cfg.split, given), cfg.seed,
                                    grouped=any(it.group for it in rest)), **given}
    if not items["val"]:
        raise DataError(f"{cfg.data}: the validation split is empty; use a split with a validation fraction")
    folders = {part: folder for part, folder in (("val", cfg.val_dir), ("test", cfg.test_dir)) if folder}
    return ImageData(ds.classes, items, skipped, ds.duplicates, data, folders,
                     (cfg.limit_per_class, len(rows), read) if cfg.limit_per_class else None, mode)


def _given_parts(cfg: TrainConfig, classes: list[str], where: dict[str, str] | None, preprocess,
                 skipped: Skipped, mode: str) -> dict[str, list[ImageItem]]:
    """The parts given as folders, read and decoded as DATA is (their groups unread: they are never split); a
    class DATA lacks is an error, since the model could never answer it."""
    data = Path(cfg.data)
    base = data if data.is_dir() else data.parent
    parts = {}
    for part, folder in (("val", cfg.val_dir), ("test", cfg.test_dir)):
        if not folder:
            continue
        folder = Path(folder)
        if data.is_dir() and folder.exists() and _overlap(folder.resolve(), data.resolve()):
            raise DataError(f"{folder}: --{part}-dir overlaps DATA ({data}), so its images would be trained on too; "
                            f"give a folder beside DATA, not inside or around it")
        rows, sk = read_labelled_files(folder, cfg.label_col)
        unknown = sorted({lab for _, labels, _ in rows for lab in labels} - set(classes))
        if unknown:
            raise DataError(f"{folder}: --{part}-dir class(es) {unknown} are not classes of DATA {cfg.data} "
                            f"({', '.join(classes)}); the model could never answer them")
        if where is not None:
            rows = [row for row in rows if _rel(row[0], base) in where]
        ds = decode_labelled_files(folder, rows, sk, cfg.image_size, classes, cfg.workers or 4, preprocess, mode)
        skipped.merge(ds.skipped)
        parts[part] = ds.items
    return parts


def _overlap(a: Path, b: Path) -> bool:
    return a == b or a in b.parents or b in a.parents


def _outside(items: list[ImageItem], given: dict[str, list[ImageItem]]) -> list[ImageItem]:
    """`items` less the pictures a given part also holds (as cached), so no test picture is trained on."""
    taken = {_picture(it) for part in given.values() for it in part}
    kept = [it for it in items if _picture(it) not in taken] if taken else items
    if len(kept) < len(items):
        console.print(f"[yellow]{len(items) - len(kept)} pictures of DATA are also in "
                      f"{' / '.join(f'--{p}-dir' for p in given)}: left out of the parts DATA is split into[/yellow]")
    return kept


def _picture(item: ImageItem) -> str:
    return item.digest  # pixels (RAM cache) or file bytes (streamed): every item of one run has the same kind


def _remaining(split: tuple[float, float, float], given: dict[str, list[ImageItem]]) -> tuple[float, float, float]:
    """The split of what DATA still fills: the fractions of the parts not given, renormalised to sum to 1."""
    if {"val", "test"} <= set(given):
        return 1.0, 0.0, 0.0
    kept = [0.0 if part in given else f for part, f in zip(SPLITS, split)]
    if kept[0] <= 0:
        raise DataError(f"--split {','.join(f'{f:g}' for f in split)} leaves DATA no training fraction")
    return tuple(f / sum(kept) for f in kept)  # type: ignore[return-value]


def _rel(path: Path, base: Path) -> str:
    try:
        return str(path.relative_to(base))
    except ValueError:
        return str(path)


class ImageItemDataset(Dataset):
    """(augmented image in [0, 1], multi-hot target) from cached uint8 tensors; `augment_settings` are the
    TrainConfig settings of config.AUGMENT_RANGES (vflip, rotate, ...), for image_augmentation."""

    def __init__(self, items: list[ImageItem], classes: list[str], size: int, augment: float = 0.0,
                 min_scale: float = 0.35, occluder: str | None = None, occlusion_prob: float = 0.0,
                 augment_settings: dict[str, Any] | None = None):
        self.items = items
        self.occluder, self.occlusion_prob = occluder, occlusion_prob  # drawn from each item's landmarks
        self.index = {c: i for i, c in enumerate(classes)}
        self.num_classes = len(classes)
        self.transform = image_augmentation(size, augment, min_scale, **(augment_settings or {}))

    def __len__(self) -> int:
        return len(self.items)

    def __getitem__(self, i: int) -> tuple[torch.Tensor, torch.Tensor]:
        it = self.items[i]
        y = torch.zeros(self.num_classes)
        y[[self.index[lab] for lab in it.labels]] = 1.0
        image, landmarks = it.picture_and_landmarks()  # held, or read from the disk cache or the file
        if self.occlusion_prob and torch.rand(()) < self.occlusion_prob:
            from hardsight.faces.stage import occlude_tensor

            image = occlude_tensor(image, self.occluder, landmarks, seed=int(torch.randint(2**31, ())))
        return self.transform(image), y


class ImageDataModule(L.LightningDataModule):
    def __init__(self, data: ImageData, cfg: TrainConfig):
        super().__init__()
        self.data, self.cfg = data, cfg

    def dataset(self, split: str, train: bool) -> ImageItemDataset:
        """The images of `split`, augmented and occluded as training draws them when `train` (`hardsight inspect
        --augment` shows that very dataset)."""
        cfg = self.cfg
        return ImageItemDataset(self.data.items[split], self.data.classes, cfg.image_size,
                                cfg.augment if train else 0.0, cfg.min_scale, cfg.occluder,
                                cfg.occlusion_prob if train else 0.0,
                                {name: getattr(cfg, name) for name in AUGMENT_RANGES} if train else None)

    def _loader(self, split: str, train: bool) -> DataLoader:
        cfg = self.cfg
        ds = self.dataset(split, train)
        sampler = None
        if train and cfg.sampler == "balanced":
            freq = Counter(lab for it in ds.items for lab in it.labels)
            weights = [1.0 / min(freq[lab] for lab in it.labels) for it in ds.items]
            # the same seed on every rank: under DDP, Lightning's DistributedSamplerWrapper deals out one draw
            sampler = WeightedRandomSampler(weights, len(weights), generator=torch.Generator().manual_seed(cfg.seed))
        elif not train:
            sampler = eval_sampler(self, ds)
        return DataLoader(ds, batch_size=cfg.batch_size, shuffle=train and sampler is None, sampler=sampler,
                          drop_last=train and len(ds) > cfg.batch_size * world_size_of(self), num_workers=cfg.workers,
                          persistent_workers=cfg.workers > 0,
                          generator=torch.Generator().manual_seed(cfg.seed) if train and sampler is None else None)

    def train_dataloader(self) -> DataLoader:
        return self._loader("train", True)

    def val_dataloader(self) -> DataLoader:
        return self._loader("val", False)

    def test_dataloader(self) -> DataLoader:
        return self._loader("test", False)


def print_image_summary(data: ImageData) -> None:
    n = {k: len(v) for k, v in data.items.items()}
    counts = class_counts(data.items["train"], data.classes)
    ratio = max(counts.values()) / max(1, min(counts.values()))
    given = "".join(f" ({part}: {folder})" for part, folder in data.folders.items())
    limited = ""
    if data.limited:
        per_class, kept, read = data.limited
        limited = f", at most {per_class:,} per class ({kept:,} of DATA's {read:,} files)"
    console.print(f"data: {n['train']} train / {n['val']} val / {n['test']} test images{given}, "
                  f"{len(data.classes)} classes, imbalance {ratio:.0f}:1, {data.duplicates} duplicate files merged"
                  + limited + f", pictures {CACHE_WORDS[data.cache]}"
                  + (f", [yellow]{data.skipped.total} skipped[/yellow]" if data.skipped.total else ""))
    for file, why in (data.skipped.unreadable + data.skipped.bad_label)[:10]:
        console.print(f"  [yellow]skipped[/yellow] {file}: {why}")
