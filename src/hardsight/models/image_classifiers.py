"""Image classifiers: the compact CPU CNN of our own, and any timm backbone by name."""

from __future__ import annotations

import difflib

from torch import nn

from hardsight.errors import ConfigError
from hardsight.models.registry import _MODELS, list_models, register


def _block(c_in: int, c_out: int) -> nn.Sequential:
    return nn.Sequential(nn.Conv2d(c_in, c_out, 3, padding=1, bias=False), nn.BatchNorm2d(c_out),
                         nn.LeakyReLU(0.1, inplace=True))


class CompactCNN(nn.Module):
    """Four stages of two 3x3 convs (batch norm, LeakyReLU), max-pool between, global pool, dropout, linear."""

    def __init__(self, num_classes: int, widths: tuple[int, ...] = (24, 48, 96, 192), dropout: float = 0.25,
                 in_chans: int = 3):
        super().__init__()
        layers: list[nn.Module] = []
        c = in_chans
        for i, w in enumerate(widths):
            layers += [_block(c, w), _block(w, w)] + ([nn.MaxPool2d(2)] if i < len(widths) - 1 else [])
            c = w
        self.features = nn.Sequential(*layers)
        self.head = nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Dropout(dropout), nn.Linear(c, num_classes))

    def forward(self, x):
        return self.head(self.features(x))


@register("image")
def compact(num_classes: int, **kw) -> CompactCNN:
    """~0.7M parameters; about half a minute an epoch of 8.5k 64 px tiles on two CPU cores."""
    return CompactCNN(num_classes)


@register("image")
def compact_wide(num_classes: int, **kw) -> CompactCNN:
    return CompactCNN(num_classes, widths=(32, 64, 128, 256))


def build_image_model(name: str, num_classes: int, pretrained: bool = False, freeze: bool = False) -> nn.Module:
    """Our registry first, then timm; pretrained weights need the network, and say so when it is missing."""
    if name in list_models("image"):
        if pretrained:
            raise ConfigError(f"{name!r} has no pretrained weights; drop --pretrained or pick a timm model")
        return _MODELS[name](num_classes=num_classes)
    import timm

    if not timm.is_model(name):
        near = difflib.get_close_matches(name, list_models("image") + timm.list_models(), n=3)
        raise ConfigError(f"unknown image model {name!r}; ours: {list_models('image')}, or any timm model"
                          + (f"; close: {near}" if near else ""))
    try:
        model = timm.create_model(name, pretrained=pretrained, num_classes=num_classes)
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
