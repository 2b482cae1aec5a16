"""Image classifiers: the compact CPU CNN of our own, and any timm backbone by name."""

from __future__ import annotations

import difflib
from typing import Any

from torch import nn

from hardsight.errors import ConfigError
from hardsight.models.layers import make_activation
from hardsight.models.registry import MODELS, build_with_args, list_models, register


def _block(c_in: int, c_out: int, activation: str = "leaky_relu") -> nn.Sequential:
    return nn.Sequential(nn.Conv2d(c_in, c_out, 3, padding=1, bias=False), nn.BatchNorm2d(c_out),
                         make_activation(activation))


class CompactCNN(nn.Module):
    """`blocks` stages of `convs_per_block` 3x3 convs (batch norm, activation), max-pool between, widths doubling
    from `filters`; global pool, `dense_layers` hidden dense layers, dropout, linear.

    The defaults are the original network (four stages of two convs, 24 to 192 wide, LeakyReLU, no hidden
    dense layer), with the same parameter names, so older checkpoints load unchanged.
    """

    def __init__(self, num_classes: int, filters: int = 24, blocks: int = 4, convs_per_block: int = 2,
                 activation: str = "leaky_relu", dense_layers: int = 0, dense_units: int = 128,
                 dropout: float = 0.25, in_chans: int = 3):
        super().__init__()
        sizes = {"filters": (filters, 1), "blocks": (blocks, 1), "convs_per_block": (convs_per_block, 1),
                 "dense_layers": (dense_layers, 0), "dense_units": (dense_units, 1)}
        for name, (value, least) in sizes.items():
            if isinstance(value, bool) or not isinstance(value, int) or value < least:
                raise ConfigError(f"model_args.{name} must be an integer of at least {least}, got {value!r}")
        if isinstance(dropout, bool) or not isinstance(dropout, (int, float)) or not 0 <= dropout < 1:
            raise ConfigError(f"model_args.dropout must be in [0, 1), got {dropout!r}")
        layers: list[nn.Module] = []
        c = in_chans
        for i in range(blocks):
            w = filters * 2**i
            layers += [_block(c if j == 0 else w, w, activation) for j in range(convs_per_block)]
            layers += [nn.MaxPool2d(2)] if i < blocks - 1 else []
            c = w
        self.features = nn.Sequential(*layers)
        dense: list[nn.Module] = []
        for _ in range(dense_layers):
            dense += [nn.Linear(c, dense_units), make_activation(activation)]
            c = dense_units
        self.head = nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Flatten(), *dense, nn.Dropout(dropout),
                                  nn.Linear(c, num_classes))

    def forward(self, x):
        return self.head(self.features(x))

    def get_classifier(self) -> nn.Module:
        """The last linear layer (timm's name for it, so weights and fine-tuning treat both kinds alike)."""
        return self.head[-1]

    def group_matcher(self, coarse: bool = False) -> dict:
        """timm's layer-group rules: each conv block is a group (what --trainable-layers counts)."""
        return {"stem": r"^features\.0\.", "blocks": [(r"^features\.(\d+)", None), (r"^head", (99999,))]}


@register("image")
def compact(num_classes: int, **kw) -> CompactCNN:
    """~0.7M parameters; about half a minute an epoch of 8.5k 64 px tiles on two CPU cores."""
    return CompactCNN(num_classes, **kw)


@register("image")
def compact_wide(num_classes: int, **kw) -> CompactCNN:
    return CompactCNN(num_classes, **{"filters": 32, **kw})


def build_image_model(name: str, num_classes: int, model_args: dict[str, Any] | None = None) -> nn.Module:
    """The architecture, from our registry first, then timm, randomly initialised: pretrained weights are put in
    by `models.weights` when training starts, so loading a trained run never looks for them."""
    if name in list_models("image"):
        return build_with_args(name, MODELS[name], model_args, num_classes=num_classes)
    import timm

    if not timm.is_model(name):
        near = difflib.get_close_matches(name, list_models("image") + timm.list_models(), n=3)
        raise ConfigError(f"unknown image model {name!r}; ours: {list_models('image')}, or any timm model"
                          + (f"; close: {near}" if near else ""))
    return build_with_args(name, timm.create_model, model_args, model_name=name, pretrained=False,
                           num_classes=num_classes)


def input_statistics(name: str) -> tuple[tuple[float, ...], tuple[float, ...], int | None]:
    """(mean, std, native side) a backbone's pretrained weights expect, from timm's pretrained config; ImageNet
    statistics and no native size for our own models (what they have always been trained with)."""
    from hardsight.models.weights import IMAGENET_MEAN, IMAGENET_STD

    if name in list_models("image"):
        return IMAGENET_MEAN, IMAGENET_STD, None
    import timm

    cfg = timm.get_pretrained_cfg(name)
    if cfg is None:
        return IMAGENET_MEAN, IMAGENET_STD, None
    return tuple(cfg.mean), tuple(cfg.std), int(cfg.input_size[-1])
