"""Image classifiers: the compact CPU CNN of our own, and any timm backbone by name."""

from __future__ import annotations

import difflib
from typing import Any

from torch import nn

from hardsight.errors import ConfigError
from hardsight.models.layers import make_activation
from hardsight.models.registry import _MODELS, build_with_args, list_models, register


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


@register("image")
def compact(num_classes: int, **kw) -> CompactCNN:
    """~0.7M parameters; about half a minute an epoch of 8.5k 64 px tiles on two CPU cores."""
    return CompactCNN(num_classes, **kw)


@register("image")
def compact_wide(num_classes: int, **kw) -> CompactCNN:
    return CompactCNN(num_classes, **{"filters": 32, **kw})


def build_image_model(name: str, num_classes: int, pretrained: bool = False, freeze: bool = False,
                      model_args: dict[str, Any] | None = None) -> nn.Module:
    """Our registry first, then timm; pretrained weights need the network, and say so when it is missing."""
    if name in list_models("image"):
        if pretrained:
            raise ConfigError(f"{name!r} has no pretrained weights; drop --pretrained or pick a timm model")
        return build_with_args(name, _MODELS[name], model_args, num_classes=num_classes)
    import timm

    if not timm.is_model(name):
        near = difflib.get_close_matches(name, list_models("image") + timm.list_models(), n=3)
        raise ConfigError(f"unknown image model {name!r}; ours: {list_models('image')}, or any timm model"
                          + (f"; close: {near}" if near else ""))
    try:
        model = build_with_args(name, timm.create_model, model_args, model_name=name, pretrained=pretrained,
                                num_classes=num_classes)
    except ConfigError:
        raise
    except Exception as e:  # hub download errors come in many types
        if pretrained:
            raise ConfigError(f"could not load pretrained weights for {name!r} ({type(e).__name__}: {e}); "
                              "offline? train from scratch without --pretrained") from None
        raise
    if freeze:
        head = set(id(p) for p in model.get_classifier().parameters())
        stages = [m for n, m in model.named_children() if n.startswith(("layer4", "stages", "blocks", "conv_head"))]
        keep = set(id(p) for m in stages[-1:] for p in m.parameters()) | head
        for p in model.parameters():
            p.requires_grad = id(p) in keep
    return model
