"""Lightning callbacks of our own: one row per epoch in metrics.csv, a per-session time budget, and the checkpoint
that --resume continues from."""

from __future__ import annotations

import csv
import math
import time
from pathlib import Path

import lightning as L
from lightning.pytorch.callbacks import Callback, ModelCheckpoint, Timer

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


class SessionTimer(Timer):
    """Lightning's Timer, but `--max-minutes` budgets this session: a resumed run gets its full budget again."""

    _rank0_used: float | None = None  # under DDP: rank 0's share, so every rank anneals the LR alike

    def load_state_dict(self, state_dict: dict) -> None:
        pass

    def on_train_start(self, trainer: L.Trainer, module: L.LightningModule) -> None:
        super().on_train_start(trainer, module)
        self._rank0_used = 0.0 if trainer.world_size > 1 else None

    def _check_time_remaining(self, trainer: L.Trainer) -> None:
        """Lightning broadcasts rank 0's stop decision each step; under DDP broadcast rank 0's share of the budget
        instead (clocks differ a little; LRs must not) and derive the stop from it: one broadcast, not two."""
        if self._rank0_used is None:
            return super()._check_time_remaining(trainer)
        self._rank0_used = float(trainer.strategy.broadcast(self._own_fraction()))
        trainer.should_stop = trainer.should_stop or self._rank0_used >= 1.0

    def fraction_used(self) -> float:
        """Share of the budget spent this session (0 without a budget); under DDP rank 0's, as of the last step."""
        if not self._duration:
            return 0.0
        return self._own_fraction() if self._rank0_used is None else self._rank0_used

    def _own_fraction(self) -> float:
        return min(1.0, self.time_elapsed("train") / self._duration)

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
