"""Test-time augmentation for image classifiers: average an image's class probabilities with its mirror's."""

from __future__ import annotations

import torch


class FlipTTA(torch.nn.Module):
    """Mean of `engine(x)` and `engine(x.flip(-1))`: most classes look alike mirrored, so two views cancel some of
    a model's left/right quirks for the price of a second forward pass.

    Wraps an Engine at run time (either runtime), or ClassProbabilities before export, so the graph flips itself.
    `name` stays the wrapped engine's ("torch", "onnx").
    """

    def __init__(self, engine):
        super().__init__()
        self.engine = engine
        self.name = getattr(engine, "name", "torch")

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return (self.engine(x) + self.engine(x.flip(-1))) / 2
