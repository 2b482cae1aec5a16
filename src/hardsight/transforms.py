"""Preprocessing (the model's input contract) and augmentation pipelines per task."""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from PIL import Image, ImageOps
from torchvision.transforms import v2
from torchvision.transforms.v2 import functional as TF

from hardsight.config import InputSpec
from hardsight.data.io import UnreadableImage


class SmallerThanCrop(UnreadableImage):
    """An image that does not hold the reader's crop box: skipped and reported like an unreadable file."""


def check_crop(width: int, height: int, crop: tuple[int, int, int, int] | None) -> None:
    """SmallerThanCrop unless a `width` x `height` image holds the box (x, y, w, h)."""
    if crop is not None and (crop[0] + crop[2] > width or crop[1] + crop[3] > height):
        x, y, w, h = crop
        raise SmallerThanCrop(f"{width}x{height} pixels is smaller than the crop box {x},{y},{w},{h} "
                              f"(needs at least {x + w}x{y + h})")


def text_input_width(spec: InputSpec, width: int, height: int) -> int:
    """Width an image gets at `spec.height`: aspect kept (capped at spec.width) or fixed."""
    if not spec.keep_aspect:
        return spec.width
    w = round(width * spec.height / max(height, 1))
    m = spec.width_multiple
    return int(min(spec.width, max(spec.height, math.ceil(w / m) * m)))


def text_preprocess(image: Image.Image, spec: InputSpec) -> torch.Tensor:
    """PIL image -> uint8 tensor (C, H, W) at the model's height, cut to `spec.crop` first and its contrast
    stretched last where the contract says so; the cached form of a sample. An image smaller than the crop box is
    SmallerThanCrop."""
    if spec.crop is not None:
        check_crop(image.width, image.height, spec.crop)
        x, y, w, h = spec.crop
        image = image.crop((x, y, x + w, y + h))
    mode = "L" if spec.channels == 1 else "RGB"
    if image.mode != mode:
        image = image.convert(mode)
    w = text_input_width(spec, image.width, image.height)
    image = image.resize((w, spec.height), Image.BILINEAR)
    if spec.contrast == "stretch":  # pale ink: the darkest 0.5% of pixels (ink, however little) to black, the
        image = ImageOps.autocontrast(image, cutoff=(0.5, 1))  # lightest 1% to white
    return TF.pil_to_tensor(image)


def pad_batch(images: list[torch.Tensor], multiple: int, fill: float = 1.0) -> torch.Tensor:
    """Float images (C, H, w_i) -> (B, C, H, W) padded on the right with white to a common width."""
    width = max(im.shape[-1] for im in images)
    width = math.ceil(width / multiple) * multiple
    return torch.stack([F.pad(im, (0, width - im.shape[-1]), value=fill) for im in images])


def text_augmentation(strength: float) -> v2.Transform | None:
    """Small affine, blur, noise and contrast changes: what varies between renders of a CAPTCHA."""
    if strength <= 0:
        return None
    s = strength
    return v2.Compose([
        v2.RandomApply([v2.RandomAffine(degrees=3 * s, translate=(0.03 * s, 0.08 * s),
                                        scale=(1 - 0.08 * s, 1 + 0.05 * s), shear=(-8 * s, 8 * s), fill=1.0)], p=0.8),
        v2.RandomApply([v2.GaussianBlur(3, sigma=(0.1, 1.0))], p=0.25 * s),
        v2.RandomApply([v2.ColorJitter(brightness=0.3 * s, contrast=0.4 * s)], p=0.5),
        v2.RandomApply([v2.GaussianNoise(sigma=0.04 * s, clip=True)], p=0.4),
    ])


def image_augmentation(size: int, strength: float, min_scale: float = 0.35, *, vflip: float = 0.0,
                       rotate: float | None = None, shear: float = 0.0, zoom_out: float = 0.0, fill: float = 0.0,
                       brightness: float | None = None, contrast: float | None = None) -> v2.Transform:
    """Crops down to `min_scale` of the tile, flips, small rotations, colour jitter, all scaled by `strength`;
    float output in [0, 1]. The other settings (TrainConfig's) replace the part of that recipe doing the same
    or add to it; their defaults leave it as it is."""
    s = max(strength, 0.0)
    ops: list[v2.Transform] = []
    if s > 0:
        ops += [v2.RandomResizedCrop(size, scale=(min_scale, 1.0), antialias=True), v2.RandomHorizontalFlip()]
    if vflip:
        ops.append(v2.RandomVerticalFlip(vflip))
    if rotate is None and s > 0:
        ops.append(v2.RandomApply([v2.RandomRotation(10 * s)], p=0.3))
    jitter = (0.3 * s if brightness is None else brightness, 0.3 * s if contrast is None else contrast, 0.3 * s)
    if any(jitter):
        ops.append(v2.ColorJitter(*jitter))  # hue jitter would triple the cost
    ops.append(v2.ToDtype(torch.float32, scale=True))
    if rotate or shear or zoom_out:  # one resampling, after the jitter: what it uncovers is exactly `fill`
        ops.append(v2.RandomAffine(rotate or 0.0, scale=(1 - zoom_out, 1.0), shear=(-shear, shear) if shear else None,
                                   interpolation=v2.InterpolationMode.BILINEAR, fill=fill))
    return v2.Compose(ops)
