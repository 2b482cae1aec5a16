"""Parts shared by model families: input normalisation, and activations by name (a `model_args` choice)."""

from __future__ import annotations

from typing import Callable

import torch
from torch import nn

from hardsight.errors import ConfigError

ACTIVATIONS: dict[str, Callable[[], nn.Module]] = {
    "relu": lambda: nn.ReLU(inplace=True),
    "leaky_relu": lambda: nn.LeakyReLU(0.1, inplace=True),
    "gelu": nn.GELU,
}


def make_activation(name: str) -> nn.Module:
    if name not in ACTIVATIONS:
        raise ConfigError(f"unknown activation {name!r} in model_args; choose from {list(ACTIVATIONS)}")
    return ACTIVATIONS[name]()


class Normalize(nn.Module):
    """Images arrive in [0, 1]; the model owns its normalisation so exported graphs are self-contained."""

    def __init__(self, mean: tuple[float, ...], std: tuple[float, ...]):
        super().__init__()
        self.register_buffer("mean", torch.tensor(mean).view(1, -1, 1, 1), persistent=False)
        self.register_buffer("std", torch.tensor(std).view(1, -1, 1, 1), persistent=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return (x - self.mean) / self.std

    def statistics(self) -> dict[str, list[float]]:
        """{"mean": [...], "std": [...]} per channel, as labels.json and the ONNX metadata record them."""
        return {k: [round(v, 6) for v in getattr(self, k).flatten().tolist()] for k in ("mean", "std")}
