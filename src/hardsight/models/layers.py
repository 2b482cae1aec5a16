"""Parts shared by model families: activations by name (a `model_args` choice)."""

from __future__ import annotations

from typing import Callable

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
