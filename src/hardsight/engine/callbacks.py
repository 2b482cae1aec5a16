"""Lightning callbacks of our own: one row per epoch in metrics.csv, a per-session time budget, and the checkpoint
that --resume continues from."""

from __future__ import annotations

import csv
import math
import statistics
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


class BestCheckpoint(ModelCheckpoint):
    """`best.ckpt`: the best validation score; while early stopping lands the LR (`landing()` true), a later epoch
    also takes its place when it scores within `tie` of the best seen. Validation error moves in steps of one
    character or image, and the tie-breaking loss drifts up by about 1e-5 while the LR anneals: captcha_v2's seed 1
    kept an epoch from before its landing (test 0.979) over the landed one (0.989)."""

    def __init__(self, *args, landing=lambda: False, tie: float = 1e-4, **kwargs):
        super().__init__(*args, **kwargs)
        self.landing, self.tie = landing, tie
        self.best_seen: float | None = None

    def check_monitor_top_k(self, trainer: L.Trainer, current=None) -> bool:
        better = super().check_monitor_top_k(trainer, current)
        if current is None:
            return better
        value, sign = float(current), 1.0 if self.mode == "min" else -1.0
        if self.best_seen is None or sign * (value - self.best_seen) < 0:
            self.best_seen = value
        if not better and self.landing() and sign * (value - self.best_seen) <= self.tie:
            better = trainer.strategy.reduce_boolean_decision(True)
        return better

    @property
    def state_key(self) -> str:  # as ModelCheckpoint's: runs from before this class resume with their best score
        return super().state_key.replace(type(self).__qualname__, "ModelCheckpoint", 1)


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
    its 5.7 minutes).

    With `land` > 0, once patience runs out under the one-cycle schedule the run does not stop at once: the LR
    anneals from where it is to the floor over `land` of the planned steps (at most what the plan has left), then
    training stops. A reader that learns early otherwise stops at its peak LR, never annealed: captcha_v2's default
    reader read 0.98 of its validation split by epoch 13 of 100 and stopped at epoch 45 at 2.3e-3 (76% of the
    peak), reading 0.968 of its test split (`python benchmarks/text_recipe.py`)."""

    def __init__(self, *args, land: float = 0.0, **kwargs):
        super().__init__(*args, **kwargs)
        self.land = land
        self.landing = False  # the LR is annealing towards the stop

    def on_train_epoch_end(self, trainer: L.Trainer, module: L.LightningModule) -> None:
        self._check(trainer, lambda: super(PatientEarlyStopping, self).on_train_epoch_end(trainer, module))

    def on_validation_end(self, trainer: L.Trainer, module: L.LightningModule) -> None:
        self._check(trainer, lambda: super(PatientEarlyStopping, self).on_validation_end(trainer, module))

    def _check(self, trainer: L.Trainer, check) -> None:
        if _warming_up(trainer):
            return
        before, was_stopping = self.stopped_epoch, trainer.should_stop
        check()
        scheduler = _one_cycle(trainer)
        score = trainer.callback_metrics.get(self.monitor)
        if (self.stopped_epoch == before or not self.land or scheduler is None or score is None
                or not math.isfinite(float(score))):
            return  # no stop of ours, one meant to stop at once, or a diverged run
        trainer.should_stop, self.stopped_epoch = was_stopping, before  # not yet: land first
        if not self.landing:
            steps = min(int(self.land * scheduler.total_steps), scheduler.total_steps - trainer.global_step)
            scheduler.land(trainer.global_step, steps)
            self.landing = True
            console.print(f"early stopping: no better {self.monitor} in {self.patience} epochs; the LR now anneals "
                          f"over {steps:,} steps, then training stops")

    def on_train_batch_end(self, trainer: L.Trainer, module: L.LightningModule, outputs, batch, batch_idx: int) -> None:
        scheduler = _one_cycle(trainer)
        if self.landing and scheduler is not None and trainer.global_step >= scheduler.total_steps:
            trainer.should_stop, self.stopped_epoch = True, max(1, trainer.current_epoch)

    def state_dict(self) -> dict:
        return {**super().state_dict(), "landing": self.landing}

    def load_state_dict(self, state_dict: dict) -> None:
        super().load_state_dict(state_dict)
        self.landing = state_dict.get("landing", False)


def _one_cycle(trainer: L.Trainer):
    """The run's one-cycle schedule (tasks.base.WarmupCosineLR), or None."""
    return next((c.scheduler for c in trainer.lr_scheduler_configs if hasattr(c.scheduler, "warmup_end")), None)


def _warming_up(trainer: L.Trainer) -> bool:
    """Whether the one-cycle schedule (tasks.base.WarmupCosineLR) has yet to reach its peak."""
    scheduler = _one_cycle(trainer)
    return scheduler is not None and trainer.global_step < scheduler.warmup_end


class BudgetPlanner(Callback):
    """Under `--max-minutes`, after each epoch: how many optimiser steps the rest of the budget fits, and the one-cycle
    schedule re-planned to end there (never past the epochs asked for), so it anneals before time runs out instead of
    being cut off at its peak. A plan stays counted in steps: a slower machine gets fewer steps, never a compressed
    warm-up.

    The speed is the median of the latest `window` epochs (training and validation): a first epoch slowed by start-up
    or a passing load does not fix the plan, and a fine-tune whose body unfreezes is re-measured within a few epochs.
    The plan moves both ways, when it is off by more than `slack`: a plan cut short by a slow epoch grows back once
    the machine runs faster. Once the re-planned schedule has run to its end, training stops: the steps that would
    follow run at the floor LR and buy nothing (before this planner, a run under a CPU hog planned 565 steps from its
    first epoch, then spent 1,074 more at the floor)."""

    def __init__(self, timer: SessionTimer, margin: float = 0.95, slack: float = 0.05, window: int = 3):
        self.timer, self.margin, self.slack, self.window = timer, margin, slack, window
        self.planned: int | None = None  # steps the schedule is planned for, after this session's planning
        self.asked: int | None = None  # the steps the epochs asked for: no plan goes beyond them
        self.finished = False  # training stopped because the re-planned schedule ran to its end
        self._last: tuple[int, float] | None = None  # (global step, seconds elapsed) at the previous epoch's end
        self._per_step: list[float] = []  # seconds a step, one entry per epoch of this session

    def on_train_start(self, trainer: L.Trainer, module: L.LightningModule) -> None:
        self.planned = self.asked = int(trainer.estimated_stepping_batches)
        self._last, self._per_step = (trainer.global_step, 0.0), []

    def on_train_epoch_end(self, trainer: L.Trainer, module: L.LightningModule) -> None:
        remaining, used = self.timer.time_remaining(), self.timer.time_elapsed("train")
        step0, used0 = self._last
        steps = trainer.global_step - step0
        if remaining is None or steps <= 0 or used <= used0:
            return
        self._last = (trainer.global_step, used)
        self._per_step.append((used - used0) / steps)
        first = len(self._per_step) == 1
        per_step = statistics.median(self._per_step[-self.window:])
        fits = trainer.strategy.broadcast(trainer.global_step + int(self.margin * remaining / per_step))
        plan = max(min(fits, self.asked), trainer.global_step + 1)
        ms = per_step * 1000
        if plan == self.planned or (not first and abs(plan - self.planned) <= self.slack * self.planned):
            if first:
                console.print(f"budget: {ms:.0f} ms a step; the time budget fits the {self.planned:,} planned steps")
            return
        scheduler = self._scheduler(trainer)
        if getattr(scheduler, "landing", None) is not None:
            return  # early stopping is landing the schedule; the timer still ends a run that outlasts the budget
        fit_text = (f"all {self.asked:,} steps the epochs ask for" if plan == self.asked
                    else f"about {plan:,} of the {self.asked:,} steps the epochs ask for")
        console.print(f"[yellow]budget: {ms:.0f} ms a step{'' if first else ' now'}; the time budget fits {fit_text}"
                      + ("; the LR schedule now ends there" if scheduler else "") + "[/yellow]")
        self.planned = plan
        if scheduler is not None:
            scheduler.total_steps = plan

    def on_train_batch_end(self, trainer: L.Trainer, module: L.LightningModule, outputs, batch, batch_idx: int) -> None:
        scheduler = self._scheduler(trainer)
        if (scheduler is not None and self.planned is not None and self.planned < self.asked
                and getattr(scheduler, "landing", None) is None
                and trainer.global_step >= scheduler.total_steps and not trainer.should_stop):
            self.finished = trainer.should_stop = True
            console.print(f"budget: the schedule of {self.planned:,} steps is complete; training stops here rather "
                          "than go on at its floor LR")

    @staticmethod
    def _scheduler(trainer: L.Trainer):
        return next((c.scheduler for c in trainer.lr_scheduler_configs if hasattr(c.scheduler, "total_steps")), None)
