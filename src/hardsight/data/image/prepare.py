"""Everything an image run needs from disk: items, classes, duplicate-aware split, cached tensors, batches."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import lightning as L
import torch
from torch.utils.data import DataLoader, Dataset, WeightedRandomSampler

from hardsight.config import AUGMENT_RANGES, TrainConfig
from hardsight.console import console
from hardsight.data.image.labels import ImageDataset, ImageItem, class_counts, load_image_dataset, stratified_split
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
            x = it.image.flatten(1).to(torch.float64) / 255
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
    """Read, merge duplicates, split (or reuse a saved split) and cache at the input size."""
    ds: ImageDataset = load_image_dataset(Path(cfg.data), cfg.image_size, cfg.label_col, cfg.group_col,
                                          Path(cfg.extra_labels) if cfg.extra_labels else None,
                                          classes=saved_labels["classes"] if saved_labels else None,
                                          workers=cfg.workers or 4, preprocess=preprocess)
    if len(ds.classes) < 2 and not cfg.multi_label:
        raise DataError(f"{cfg.data}: one class only ({ds.classes[0]!r}); a classifier needs at least two "
                        f"(DATA/<class>/*.jpg with a folder per class), or --multi-label for a yes/no label")
    if cfg.group_col and any(it.group in (None, "") for it in ds.items):
        raise DataError(f"{cfg.data}: some rows have an empty {cfg.group_col!r}; every image needs a group")
    if saved_split:
        base = Path(cfg.data) if Path(cfg.data).is_dir() else Path(cfg.data).parent
        where = {_rel(Path(p), base): s for s in SPLITS for paths in saved_split[s] for p in paths}
        items: dict[str, list[ImageItem]] = {s: [] for s in SPLITS}
        for it in ds.items:
            part = next((where[_rel(p, base)] for p in it.paths if _rel(p, base) in where), None)
            if part:
                items[part].append(it)
    else:
        parts = []
        for name, folder in (("val", cfg.val_dir), ("test", cfg.test_dir)):
            if folder:
                parts.append(name)
        if parts:
            raise DataError("--val-dir/--test-dir are for text sets; image sets are split by --split (seeded, "
                            "duplicate-aware)")
        # groups: --group-col (people), or the originals of a balance output's augmented copies
        items = stratified_split(ds.items, cfg.split, cfg.seed, grouped=any(it.group for it in ds.items))
    if not items["val"]:
        raise DataError(f"{cfg.data}: the validation split is empty; use a split with a validation fraction")
    return ImageData(ds.classes, items, ds.skipped, ds.duplicates, Path(cfg.data))


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
        image = it.image
        if self.occlusion_prob and torch.rand(()) < self.occlusion_prob:
            from hardsight.faces.stage import occlude_tensor

            image = occlude_tensor(image, self.occluder, it.landmarks, seed=int(torch.randint(2**31, ())))
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
    console.print(f"data: {n['train']} train / {n['val']} val / {n['test']} test images, {len(data.classes)} classes, "
                  f"imbalance {ratio:.0f}:1, {data.duplicates} duplicate files merged"
                  + (f", [yellow]{data.skipped.total} skipped[/yellow]" if data.skipped.total else ""))
    for file, why in (data.skipped.unreadable + data.skipped.bad_label)[:10]:
        console.print(f"  [yellow]skipped[/yellow] {file}: {why}")
