"""Decoded text samples in memory and the Lightning DataModule that batches them."""

from __future__ import annotations

import statistics
from dataclasses import dataclass
from pathlib import Path

import lightning as L
import torch
from torch.utils.data import DataLoader, Dataset

from hardsight.config import InputSpec
from hardsight.data.io import UnreadableImage, load_image, parallel_map, read_size
from hardsight.data.text.labels import LabelledFile, Skipped
from hardsight.engine.distributed import eval_sampler, world_size_of
from hardsight.transforms import check_crop, pad_batch, text_augmentation, text_input_width, text_preprocess


@dataclass(frozen=True)
class TextSample:
    path: Path
    label: str
    image: torch.Tensor  # uint8 (C, H, W) at the model's height


MAX_ASPECT = 32.0  # width / height: at the default 32 px height, the widest input a reader takes (1024 px)


def read_sizes(files: list[LabelledFile], workers: int = 4, max_aspect: float = MAX_ASPECT,
               crop: tuple[int, int, int, int] | None = None
               ) -> tuple[list[tuple[LabelledFile, tuple[int, int]]], Skipped]:
    """Image sizes from the headers (cheap), as the reader sees them (the `crop` box's when one is set); files that
    are not images, too big, smaller than the crop box, or far wider than any CAPTCHA (one 8000x1 file would widen
    every padded batch of the run) are reported and dropped."""
    skipped = Skipped()

    def size(f: LabelledFile):
        try:
            w, h = read_size(f.path)
            check_crop(w, h, crop)
        except UnreadableImage as e:
            return f, None, str(e)
        if crop is not None:
            w, h = crop[2:]
        if w > max_aspect * max(h, 1) or h > max_aspect * max(w, 1):
            return f, None, f"{w}x{h} pixels: an aspect ratio over {max_aspect:g}:1 is not a CAPTCHA this reader takes"
        return f, (w, h), None

    ok = []
    for f, sz, err in parallel_map(size, files, workers):
        if err:
            skipped.unreadable.append((str(f.path), err))
        else:
            ok.append((f, sz))
    return ok, skipped


def infer_spec(sizes: list[tuple[int, int]], height: int, width: int | None, channels: int, keep_aspect: bool,
               multiple: int = 4, max_width: int = 1024, crop: tuple[int, int, int, int] | None = None,
               contrast: str | None = None) -> InputSpec:
    """Input contract from the data (sizes as read, after any `crop`): crnn keeps aspect up to the widest image;
    cnn uses the median width."""
    scaled = [w * height / max(h, 1) for w, h in sizes] or [height * 4]
    if width is None:
        target = max(scaled) if keep_aspect else statistics.median(scaled)
        width = min(max_width, max(height, int(-(-target // multiple) * multiple)))
    return InputSpec(height=height, width=width, channels=channels, keep_aspect=keep_aspect,
                     mean=(0.5,) * channels, std=(0.5,) * channels, width_multiple=multiple, crop=crop,
                     contrast=contrast)


def load_samples(files: list[LabelledFile], spec: InputSpec, workers: int = 4,
                 progress: str | None = "decoding") -> tuple[list[TextSample], Skipped]:
    """Decode and resize once; the cache training epochs read from."""
    skipped = Skipped()
    mode = "L" if spec.channels == 1 else "RGB"

    def one(f: LabelledFile):
        try:
            return TextSample(f.path, f.label, text_preprocess(load_image(f.path, mode), spec)), None
        except UnreadableImage as e:
            return f, str(e)

    samples = []
    for item, err in parallel_map(one, files, workers, progress=progress):
        if err:
            skipped.unreadable.append((str(item.path), err))
        else:
            samples.append(item)
    return samples, skipped


class TextSampleDataset(Dataset):
    """Cached samples, augmented at `augment` strength times `share` (a shared-memory scalar, so DataLoader workers
    see it change: AugmentWhenReading raises it from 0 once the reader reads); no `share` is all of it."""

    def __init__(self, samples: list[TextSample], augment: float = 0.0, share: torch.Tensor | None = None):
        self.samples, self.strength, self.share = samples, augment, share
        self._augmentations: dict[float, object] = {}  # by strength, two decimals: a ramp builds about 100

    def __len__(self) -> int:
        return len(self.samples)

    def augmentation(self):
        strength = round(self.strength * (1.0 if self.share is None else float(self.share)), 2)
        if strength not in self._augmentations:
            self._augmentations[strength] = text_augmentation(strength)
        return self._augmentations[strength]

    def __getitem__(self, i: int) -> tuple[torch.Tensor, str]:
        s = self.samples[i]
        x = s.image.float() / 255.0
        augment = self.augmentation() if self.strength > 0 else None
        if augment is not None:
            x = augment(x)
        return x, s.label


def collate_text(multiple: int):
    def collate(batch: list[tuple[torch.Tensor, str]]) -> tuple[torch.Tensor, list[str]]:
        images, labels = zip(*batch)
        return pad_batch(list(images), multiple), list(labels)

    return collate


class TextDataModule(L.LightningDataModule):
    """Batches of (images (B, C, H, W) in [0, 1], labels) from cached samples."""

    def __init__(self, train: list[TextSample], val: list[TextSample], test: list[TextSample], spec: InputSpec,
                 batch_size: int = 32, augment: float = 1.0, workers: int = 0, seed: int = 0):
        super().__init__()
        self.train, self.val, self.test = train, val, test
        self.spec, self.batch_size, self.augment, self.workers, self.seed = spec, batch_size, augment, workers, seed
        self.augment_share = torch.ones(1).share_memory_()  # the part of `augment` in force (AugmentWhenReading)

    def set_augment_share(self, share: float) -> None:
        self.augment_share.fill_(min(1.0, max(0.0, share)))

    def _loader(self, samples: list[TextSample], train: bool) -> DataLoader:
        ds = TextSampleDataset(samples, self.augment, self.augment_share) if train else TextSampleDataset(samples)
        return DataLoader(ds, batch_size=self.batch_size, shuffle=train, sampler=None if train else eval_sampler(self, ds),
                          drop_last=train and len(samples) > self.batch_size * world_size_of(self),
                          num_workers=self.workers, persistent_workers=self.workers > 0,
                          collate_fn=collate_text(self.spec.width_multiple),
                          generator=torch.Generator().manual_seed(self.seed) if train else None)

    def train_dataloader(self) -> DataLoader:
        return self._loader(self.train, True)

    def val_dataloader(self) -> DataLoader:
        return self._loader(self.val, False)

    def test_dataloader(self) -> DataLoader:
        return self._loader(self.test, False)


__all__ = ["TextSample", "TextDataModule", "read_sizes", "infer_spec", "load_samples", "text_input_width"]
