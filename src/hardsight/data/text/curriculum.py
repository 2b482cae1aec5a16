"""Augmentation held off until a text reader reads: the easy images first, the varied ones once it can learn from
them."""

from __future__ import annotations

import lightning as L
from lightning.pytorch.callbacks import Callback

from hardsight.config import TEXT_AUGMENT_FROM, TEXT_AUGMENT_RAMP_STEPS
from hardsight.console import console


class AugmentWhenReading(Callback):
    """A CTC reader first sits on the all-blank plateau, and augmented images make it longer: on captcha_v2 (seeds
    0-2, 16 epochs of the default plan, `python benchmarks/ctc_plateau.py`) the default reader left it at epochs 5,
    5 and 6 with augmentation held off, at 5, 6 and 11 with it from the first step. So the training split is shown
    plain until an epoch reads `start` of it exactly, then the augmentation grows to the full `--augment` over
    `ramp_steps` optimiser steps. Steps, not epochs: a large set's epoch is thousands of them. Works through any
    DataModule with `set_augment_share` (TextDataModule)."""

    def __init__(self, metric: str = "train/exact_match", start: float = TEXT_AUGMENT_FROM,
                 ramp_steps: int = TEXT_AUGMENT_RAMP_STEPS):
        self.metric, self.start, self.ramp_steps = metric, start, ramp_steps
        self.started_at: int | None = None  # the optimiser step the ramp began at; kept in checkpoints (--resume)

    def share(self, step: int) -> float:
        """The part of the augmentation in force at `step`."""
        if self.started_at is None:
            return 0.0
        return min(1.0, (step - self.started_at) / max(1, self.ramp_steps))

    def _apply(self, trainer: L.Trainer) -> None:
        datamodule = trainer.datamodule
        if hasattr(datamodule, "set_augment_share"):
            datamodule.set_augment_share(self.share(trainer.global_step))

    def on_train_start(self, trainer: L.Trainer, module: L.LightningModule) -> None:
        self._apply(trainer)
        if self.started_at is None and getattr(trainer.datamodule, "augment", 0) and trainer.is_global_zero:
            console.print(f"augmentation held off until an epoch reads {self.start:.0%} of the training split exactly")

    def on_train_batch_end(self, trainer: L.Trainer, module: L.LightningModule, outputs, batch, batch_idx: int) -> None:
        if self.started_at is not None and trainer.global_step - self.started_at <= self.ramp_steps:
            self._apply(trainer)

    def on_train_epoch_end(self, trainer: L.Trainer, module: L.LightningModule) -> None:
        read = trainer.callback_metrics.get(self.metric)
        if self.started_at is None and read is not None and float(read) >= self.start:
            self.started_at = trainer.global_step
            if getattr(trainer.datamodule, "augment", 0) and trainer.is_global_zero:
                console.print(f"augmentation on from step {self.started_at:,} ({float(read):.0%} read), at full "
                              f"strength after {self.ramp_steps} more")

    def state_dict(self) -> dict:
        return {"started_at": self.started_at}

    def load_state_dict(self, state_dict: dict) -> None:
        self.started_at = state_dict.get("started_at")
