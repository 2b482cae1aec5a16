"""Assemble the Lightning Trainer (callbacks, budget, resume) and write the run folder."""

from __future__ import annotations

import logging
import os
import sys
import time
import warnings
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path

import lightning as L
import torch
from lightning.pytorch.callbacks import EarlyStopping, ModelCheckpoint, OnExceptionCheckpoint, RichProgressBar

from hardsight.callbacks import EpochMetricsCSV, SessionTimer
from hardsight.config import TrainConfig
from hardsight.console import console
from hardsight.data.text import Skipped
from hardsight.data.text_data import TextData, prepare_text_data
from hardsight.data.text_dataset import TextDataModule
from hardsight.errors import ConfigError, RunError
from hardsight.metrics import TextMetrics
from hardsight.runs import RunFolder
from hardsight.tasks import TextReader

MONITOR = "val/objective"  # CER, ties broken by validation loss (see TextReader)


@dataclass(frozen=True)
class TrainResult:
    run: RunFolder
    test: TextMetrics
    minutes: float
    stopped_by: str  # "early stopping", "time budget", "max epochs" or "interrupted"
    epochs: int
    skipped: Skipped


def quiet_lightning() -> None:
    """Lightning's banner lines (GPU available, TPU available, ...) say nothing a user needs here."""
    for name in ("lightning.pytorch", "lightning.fabric", "lightning"):
        logging.getLogger(name).setLevel(logging.WARNING)
    warnings.filterwarnings("ignore", ".*does not have many workers.*")
    warnings.filterwarnings("ignore", ".*Checkpoint directory .* exists and is not empty.*")
    warnings.filterwarnings("ignore", ".*LeafSpec.*")


def train(cfg: TrainConfig, resume: bool = False, progress: bool | None = None) -> TrainResult:
    """Train a reader from `cfg` into a new run folder (or continue `cfg.out` when resuming)."""
    if cfg.task != "text":
        raise ConfigError(f"task {cfg.task!r} is not available in this version (text only)")
    quiet_lightning()
    torch.set_num_threads(os.cpu_count() or 1)
    if resume:
        if not cfg.out:
            raise RunError("--resume needs --out naming the run folder to continue")
        run = RunFolder.open(cfg.out)
        saved = run.load_config()
        cfg = saved.replace(epochs=cfg.epochs, max_minutes=cfg.max_minutes)
        data = prepare_text_data(cfg, run.load_split(), run.load_labels())
        ckpt = run.checkpoint("last")
    else:
        data = prepare_text_data(cfg)
        run = RunFolder.create(cfg.out, cfg.task, cfg.model)
        cfg = cfg.replace(out=str(run.path))
        run.write_start(cfg, data.labels_json(), data.split_json(cfg.seed))
        ckpt = None
    _print_data_summary(data)
    if not data.samples["val"]:
        raise ConfigError("the validation split is empty: give --val-dir or a split with a validation fraction")

    L.seed_everything(cfg.seed, workers=True, verbose=False)
    module = TextReader(cfg.model, data.charset, data.labels_json()["input"], data.max_length, lr=cfg.lr,
                        weight_decay=cfg.weight_decay, schedule=cfg.schedule, beam_width=cfg.beam_width)
    dm = TextDataModule(data.samples["train"], data.samples["val"], data.samples["test"], data.spec,
                        batch_size=cfg.batch_size, augment=cfg.augment, workers=cfg.workers, seed=cfg.seed)
    show_bar = sys.stderr.isatty() if progress is None else progress
    early = EarlyStopping(MONITOR, patience=cfg.patience, mode="min")
    timer = SessionTimer(duration=timedelta(minutes=cfg.max_minutes) if cfg.max_minutes else None, interval="step")
    callbacks = [
        ModelCheckpoint(dirpath=run.checkpoints, filename="best", monitor=MONITOR, mode="min", save_last=True,
                        enable_version_counter=False),
        OnExceptionCheckpoint(run.checkpoints, filename="last"),
        early, timer, EpochMetricsCSV(run.metrics, echo=not show_bar),
    ] + ([RichProgressBar(leave=False)] if show_bar else [])
    trainer = L.Trainer(max_epochs=cfg.epochs, accelerator="auto", devices=1, logger=False, callbacks=callbacks,
                        enable_progress_bar=show_bar, enable_model_summary=False, num_sanity_val_steps=0,
                        deterministic="warn", default_root_dir=run.path, log_every_n_steps=10,
                        gradient_clip_val=5.0)
    params = sum(p.numel() for p in module.parameters())
    console.print(f"[bold]training[/bold] {cfg.model} ({params / 1e6:.2f}M parameters) into {run.path}"
                  + (f", at most {cfg.max_minutes:g} min" if cfg.max_minutes else ""))
    start = time.monotonic()
    trainer.fit(module, datamodule=dm, **({"ckpt_path": str(ckpt)} if ckpt else {}))
    minutes = (time.monotonic() - start) / 60
    if trainer.interrupted:
        stopped = "interrupted"
    elif timer.ran_out:
        stopped = "time budget"
    elif early.stopped_epoch > 0:
        stopped = "early stopping"
    else:
        stopped = "max epochs"

    from hardsight.evaluate import finish_text_run

    test = finish_text_run(run, data, minutes, stopped, trainer.current_epoch)
    return TrainResult(run, test, minutes, stopped, trainer.current_epoch, data.skipped)


def _print_data_summary(data: TextData) -> None:
    n = {k: len(v) for k, v in data.samples.items()}
    console.print(f"data: {n['train']} train / {n['val']} val / {n['test']} test, charset {data.charset!r} "
                  f"({len(data.charset)}), input {data.spec.height}x{data.spec.width}"
                  + (f", [yellow]{data.skipped.total} skipped[/yellow]" if data.skipped.total else ""))
    for file, why in (data.skipped.unreadable + data.skipped.bad_label)[:10]:
        console.print(f"  [yellow]skipped[/yellow] {file}: {why}")
    if data.skipped.total > 10:
        console.print(f"  ... and {data.skipped.total - 10} more")
