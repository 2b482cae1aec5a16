"""Lightning callbacks of our own: one row per epoch in metrics.csv, a per-session time budget, and the checkpoint
that --resume continues from."""

from __future__ import annotations

import csv
import math
import time
from pathlib import Path

import lightning as L
from lightning.pytorch.callbacks import Callback, EarlyStopping, ModelCheckpoint, Timer

from hardsight.console import console


class EpochMetricsCSV(Callback):
    """Append one row per epoch (train + val metrics, lr, elapsed) to metrics.csv; resume keeps old rows."""

    def __init__(self, path: Path, echo: bool = True):
        self.path, self.echo = path, echo
        self.start = time.monotonic()

    def on_train_epoch_end(self, trainer: L.Trainer, module: L.LightningModule) -> None:
        if trainer.sanity_checking or not trainer.is_global_zero:
            return
        row = {"epoch": trainer.current_epoch + 1, "step": trainer.global_step,
               "lr": trainer.optimizers[0].param_groups[0]["lr"],
               "elapsed_s": round(time.monotonic() - self.start, 1)}
        row.update({k: round(float(v), 6) for k, v in sorted(trainer.callback_metrics.items())})
        new = not self.path.exists()
        header = list(row) if new else next(csv.reader(self.path.open()))
        with self.path.open("a", newline="") as f:
            w = csv.DictWriter(f, fieldnames=header, extrasaction="ignore")
            if new:
                w.writeheader()
            w.writerow(row)
        if self.echo:
            shown = "  ".join(f"{k}={v:.4g}" for k, v in row.items()
                              if k not in ("step", "lr", "elapsed_s") and isinstance(v, (int, float)) and math.isfinite(v))
            console.print(f"[dim]{shown}  ({row['elapsed_s']:.0f}s)[/dim]")


class LastCheckpoint(ModelCheckpoint):
    """`last.ckpt` after every epoch. ModelCheckpoint's own `save_last` (Lightning 2.6) writes it only when the
    monitored score improved, so `--resume` after epochs without progress would train them again."""

    def __init__(self, dirpath: Path):
        super().__init__(dirpath=dirpath, filename="last", monitor=None, save_top_k=1, every_n_epochs=1,
                         enable_version_counter=False)

    @property
    def state_key(self) -> str:
        return "LastCheckpoint"  # apart from --save-every-epoch's ModelCheckpoint, which has the same settings


class EpochCheckpoint(ModelCheckpoint):
    """--save-every-epoch: `epoch-NNN.ckpt` after every epoch, numbered from 1 as metrics.csv counts epochs (Lightning
    counts from 0), which `--checkpoint epoch-N` and `evaluate --every-epoch` read (RunFolder.epoch_checkpoint)."""

    def __init__(self, dirpath: Path):
        super().__init__(dirpath=dirpath, filename="epoch-{epoch:03d}", auto_insert_metric_name=False, monitor=None,
                         save_top_k=-1, every_n_epochs=1, enable_version_counter=False)

    def format_checkpoint_name(self, metrics: dict, filename: str | None = None, ver: int | None = None,
                               prefix: str | None = None) -> str:
        return super().format_checkpoint_name({**metrics, "epoch": metrics["epoch"] + 1}, filename, ver, prefix)


class SessionTimer(Timer):
    """Lightning's Timer, but `--max-minutes` budgets this session: a resumed run gets its full budget again."""

    def load_state_dict(self, state_dict: dict) -> None:
        pass  # the checkpoint's elapsed time is the earlier sessions': this one starts with its whole budget

    @property
    def ran_out(self) -> bool:
        remaining = self.time_remaining()
        return remaining is not None and remaining <= 0


class SaveOnInterrupt(Callback):
    """Ctrl-C (or any crash) mid-epoch leaves `interrupted.ckpt`, which `--resume` continues from.

    Lightning's OnExceptionCheckpoint deletes its file on a clean teardown and changes fit's default
    ckpt_path, so this small callback is ours.
    """

    def __init__(self, path: Path):
        self.path = path

    def on_exception(self, trainer: L.Trainer, module: L.LightningModule, exception: BaseException) -> None:
        trainer.save_checkpoint(self.path)
        console.print(f"[yellow]stopped; state saved to {self.path} (continue with --resume)[/yellow]")


class PatientEarlyStopping(EarlyStopping):
    """Early stopping that never stops during the one-cycle warm-up: epochs of a small set are a few steps each,
    so `patience` epochs can end before the learning rate has even peaked, on the plateau a CTC reader sits on
    at first (`python benchmarks/assess.py` before this: captcha_v2's 100-label point stopped at 0% after 1.8 of
    its 5.7 minutes)."""

    def on_train_epoch_end(self, trainer: L.Trainer, module: L.LightningModule) -> None:
        if not _warming_up(trainer):
            super().on_train_epoch_end(trainer, module)

    def on_validation_end(self, trainer: L.Trainer, module: L.LightningModule) -> None:
        if not _warming_up(trainer):
            super().on_validation_end(trainer, module)


def _warming_up(trainer: L.Trainer) -> bool:
    """Whether the one-cycle schedule (tasks.base.WarmupCosineLR) has yet to reach its peak."""
    scheduler = next((c.scheduler for c in trainer.lr_scheduler_configs if hasattr(c.scheduler, "warmup_end")), None)
    return scheduler is not None and trainer.global_step < scheduler.warmup_end


class BudgetPlanner(Callback):
    """Under `--max-minutes`, after each epoch: how many optimiser steps the budget fits at the speed of the latest
    epoch (training and validation), said after the first; when fewer than planned, the one-cycle schedule is
    planned for those, so it anneals before time runs out instead of being cut off at its peak. The speed is the
    latest epoch's, not the first's: a fine-tune's first epoch trains the head alone and runs several times faster
    than the epochs after it. A plan is only ever shortened (by more than `slack`), and stays counted in steps: a
    slower machine gets fewer steps, never a compressed warm-up."""

    def __init__(self, timer: SessionTimer, margin: float = 0.95, slack: float = 0.05):
        self.timer, self.margin, self.slack = timer, margin, slack
        self.planned: int | None = None  # steps the schedule is planned for, after this session's planning
        self._last: tuple[int, float] | None = None  # (global step, seconds elapsed) at the previous epoch's end

    def on_train_start(self, trainer: L.Trainer, module: L.LightningModule) -> None:
        self.planned = int(trainer.estimated_stepping_batches)
        self._last = (trainer.global_step, 0.0)

    def on_train_epoch_end(self, trainer: L.Trainer, module: L.LightningModule) -> None:
        remaining, used = self.timer.time_remaining(), self.timer.time_elapsed("train")
        (step0, used0), first = self._last, self._last[1] == 0.0
        steps = trainer.global_step - step0
        if remaining is None or steps <= 0 or used <= used0:
            return
        self._last = (trainer.global_step, used)
        per_step = (used - used0) / steps
        fits = trainer.strategy.broadcast(trainer.global_step + int(self.margin * remaining / per_step))
        ms = per_step * 1000
        if fits >= self.planned * (1 - (0 if first else self.slack)):
            if first:
                console.print(f"budget: {ms:.0f} ms a step; the time budget fits the {self.planned:,} planned steps")
            return
        scheduler = next((c.scheduler for c in trainer.lr_scheduler_configs if hasattr(c.scheduler, "total_steps")),
                         None)
        console.print(f"[yellow]budget: {ms:.0f} ms a step{'' if first else ' now'}; the time budget fits about "
                      f"{fits:,} of the {self.planned:,} planned steps"
                      + ("; the LR schedule now ends there" if scheduler else "") + "[/yellow]")
        self.planned = fits
        if scheduler is not None:
            scheduler.total_steps = max(fits, trainer.global_step + 1)
