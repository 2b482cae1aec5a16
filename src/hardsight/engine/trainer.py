"""Assemble the Lightning Trainer (callbacks, budget, resume) and write the run folder."""

from __future__ import annotations

import logging
import signal
import sys
import time
import warnings
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path

import lightning as L
import torch
from lightning.pytorch.callbacks import RichProgressBar

from hardsight.engine import distributed
from hardsight.engine.callbacks import (BestCheckpoint, BudgetPlanner, EpochCheckpoint, EpochMetricsCSV, LastCheckpoint,
                                        PatientEarlyStopping, SaveOnInterrupt, SessionTimer)
from hardsight.config import SESSION_SETTINGS, TrainConfig
from hardsight.console import console
from hardsight.data.io import refuse_out_inside
from hardsight.data.text.labels import Skipped
from hardsight.data.image.prepare import ImageData
from hardsight.data.text.prepare import TextData
from hardsight.errors import RunError
from hardsight.engine.experiment_log import hparam_metrics, log_hparams, make_logger
from hardsight.engine.metrics import ClassificationMetrics, TextMetrics
from hardsight.runs.folder import RunFolder, refusing_pickled_code
from hardsight.tasks import task_of



@dataclass(frozen=True)
class TrainResult:
    run: RunFolder
    test: TextMetrics | ClassificationMetrics | None  # None on ranks other than 0, and without a test split
    minutes: float
    stopped_by: str  # "early stopping", "time budget" or "max epochs", and for a budget: the steps it allowed
    epochs: int
    skipped: Skipped
    steps: int = 0  # optimiser steps done (all sessions)
    planned_steps: int = 0  # what the schedule was planned for (after the time budget's planning)

    @property
    def converged(self) -> bool:
        """Early stopping ended it, or the whole planned schedule ran: not cut off by the budget mid-schedule."""
        return self.stopped_by == "early stopping" or self.steps >= 0.95 * self.planned_steps


def quiet_lightning() -> None:
    """Lightning's banner lines (GPU available, TPU available, ...) say nothing a user needs here."""
    for name in ("lightning.pytorch", "lightning.fabric", "lightning"):
        logging.getLogger(name).setLevel(logging.WARNING)
    warnings.filterwarnings("ignore", ".*does not have many workers.*")
    warnings.filterwarnings("ignore", ".*Checkpoint directory .* exists and is not empty.*")
    warnings.filterwarnings("ignore", ".*LeafSpec.*")


@contextmanager
def interrupt_as_keyboard_interrupt(trainer: L.Trainer):
    """Lightning answers Ctrl-C with sys.exit(1) after its checkpoint callbacks ran; callers (and the shell,
    which expects 130) should see the interrupt itself."""
    try:
        yield
    except SystemExit:
        if trainer.interrupted:
            signal.signal(signal.SIGINT, signal.default_int_handler)  # Lightning set it to ignore for its teardown
            raise KeyboardInterrupt from None
        raise


def train(cfg: TrainConfig, resume: bool = False, progress: bool | None = None, preprocess=None,
          prepared: ImageData | TextData | None = None, extra_callbacks: list | None = None) -> TrainResult:
    """Train from `cfg` into a new run folder (or continue `cfg.out` when resuming).

    Args:
        preprocess: image tasks only, `(path, PIL image) -> PIL image` applied before caching (e.g. a face crop);
            with `cfg.faces` and none given, the face stage (landmarks, aligned crop).
        prepared: the task's data already read and split (ImageData, TextData): the occlusion study builds its
            conditions so, `hardsight assess` its nested subsets.
        extra_callbacks: more Lightning callbacks (`hardsight tune` reports each epoch to its trial so).
    """
    quiet_lightning()
    distributed.quiet_other_ranks()
    torch.set_num_threads(distributed.threads_per_process(cfg.devices))
    saved_split = saved_labels = ckpt = None
    if resume:
        if not cfg.out:
            raise RunError("--resume needs --out naming the run folder to continue")
        run = RunFolder.open(cfg.out)
        cfg = run.load_config().replace(**{k: getattr(cfg, k) for k in SESSION_SETTINGS})
        saved_split, saved_labels, ckpt = run.load_split(), run.load_labels(), run.checkpoint("resume")
    from hardsight.faces.stage import RUN_LANDMARKS, face_preprocess

    preprocess = preprocess or face_preprocess(cfg, Path(cfg.out) if resume else None)
    if not resume and Path(cfg.data).is_dir():  # the run's plots and samples would be read as data by the next run
        refuse_out_inside(Path(cfg.out or "runs"), Path(cfg.data), "a later run would read this run's files as data")
    L.seed_everything(cfg.seed, workers=True, verbose=False)  # before the model exists: its init is seeded too
    data, labels, module, dm = assemble(cfg, saved_split, saved_labels, preprocess, prepared)
    out_given = bool(cfg.out)
    if not resume:  # the same path on every rank; rank 0 creates it once the Trainer knows the ranks
        run = RunFolder(distributed.planned_run_path(cfg.out, cfg.task, cfg.model))
        cfg = cfg.replace(out=str(run.path))

    show_bar = sys.stderr.isatty() if progress is None else progress
    monitor, mode = module.monitored(cfg.monitor)
    early = PatientEarlyStopping(monitor, patience=cfg.patience, mode=mode, land=cfg.land)
    timer = SessionTimer(duration=timedelta(minutes=cfg.max_minutes) if cfg.max_minutes else None, interval="step")
    planner = BudgetPlanner(timer)
    callbacks = [
        BestCheckpoint(dirpath=run.checkpoints, filename="best", monitor=monitor, mode=mode,
                       enable_version_counter=False, landing=lambda: early.landing), LastCheckpoint(run.checkpoints),
        SaveOnInterrupt(run.interrupted), early, timer, EpochMetricsCSV(run.metrics, echo=not show_bar), planner,
    ] + ([RichProgressBar(leave=False)] if show_bar else [])
    callbacks += finetuning_callbacks(cfg, module) + list(extra_callbacks or [])
    if cfg.save_every_epoch:
        callbacks.append(EpochCheckpoint(run.checkpoints))
    trainer = L.Trainer(max_epochs=cfg.epochs, accelerator=cfg.accelerator, devices=cfg.devices,
                        num_nodes=cfg.num_nodes, strategy=cfg.strategy, precision=cfg.precision, logger=make_logger(cfg, run),
                        callbacks=callbacks, enable_progress_bar=show_bar, enable_model_summary=False,
                        num_sanity_val_steps=0, deterministic="warn", default_root_dir=run.path, log_every_n_steps=10,
                        gradient_clip_val=5.0)
    distributed.check_launch(trainer, out_given)
    if trainer.is_global_zero:  # the only writer of the run folder
        if not resume:
            run = RunFolder.create(run.path, cfg.task, cfg.model)
            run.write_start(cfg, labels, data.split_json(cfg.seed))
            if hasattr(preprocess, "save_cache"):  # a face run keeps its landmarks, for predict and --resume
                preprocess.save_cache(run.path / RUN_LANDMARKS)
        distributed.mark_run_folder(trainer, run)
    else:
        distributed.join_run_folder(trainer, run, data.split_json(cfg.seed), wait=not resume)
    if cfg.lr_find and ckpt is None:
        cfg = _find_lr(trainer, module, dm, cfg, run)
    params = sum(p.numel() for p in module.parameters())
    console.print(f"[bold]training[/bold] {cfg.model} ({params / 1e6:.2f}M parameters) into {run.path}"
                  + (f", at most {cfg.max_minutes:g} min" if cfg.max_minutes else ""))
    start = time.monotonic()
    with distributed.sharing_run_folder(run):  # Lightning may start the other ranks from this command line
        with refusing_pickled_code(ckpt), interrupt_as_keyboard_interrupt(trainer):
            # --resume reads RUN/checkpoints/last.ckpt: user input too, so weights_only
            trainer.fit(module, datamodule=dm, **({"ckpt_path": str(ckpt), "weights_only": True} if ckpt else {}))
    minutes = (time.monotonic() - start) / 60
    steps, planned = trainer.global_step, planner.planned or trainer.global_step
    if planner.finished:
        stopped = f"time budget, after {steps:,} steps (its re-planned schedule complete)"
    elif timer.ran_out and steps >= planned:  # (Ctrl-C never gets here: interrupt_as_keyboard_interrupt raises it)
        stopped = f"time budget, after {steps:,} steps (its schedule of {planned:,} complete)"
    elif timer.ran_out:
        stopped = f"time budget, after {steps:,} of {planned:,} planned steps"
    elif early.stopped_epoch > 0:
        stopped = "early stopping"
    else:
        stopped = "max epochs"

    done = dict(minutes=minutes, stopped_by=stopped, epochs=trainer.current_epoch, skipped=data.skipped, steps=steps,
                planned_steps=planned)
    if not trainer.is_global_zero:  # rank 0 scores the test split and writes the report
        return TrainResult(run, None, **done)
    test = task_of(cfg.task).finish(run, data, minutes, stopped, trainer.current_epoch)
    log_hparams(trainer, cfg, hparam_metrics(trainer.checkpoint_callback.best_model_score, test))
    return TrainResult(run, test, **done)


def assemble(cfg: TrainConfig, saved_split: dict | None = None, saved_labels: dict | None = None, preprocess=None,
             prepared: ImageData | TextData | None = None):
    """Data, labels.json content, LightningModule and DataModule for the task of `cfg` (its TaskSpec builds them)."""
    return task_of(cfg.task).assemble(cfg, saved_split, saved_labels, preprocess, prepared)


def finetuning_callbacks(cfg: TrainConfig, module) -> list:
    """FreezeBackbone when the run freezes any layers (image runs only: text readers have no such settings)."""
    if not (cfg.freeze_epochs or cfg.trainable_layers is not None):
        return []
    from hardsight.engine.finetuning import FreezeBackbone, always_frozen, layer_groups

    body = [m for g in layer_groups(module.net) for m in g]
    return [FreezeBackbone(body, always_frozen(module.net, cfg.trainable_layers), cfg.freeze_epochs)]


def lr_find(cfg: TrainConfig, out: Path) -> tuple[float | None, Path | None]:
    """Lightning's LR range test on the task of `cfg`: the suggested peak LR and a plot in `out`."""
    quiet_lightning()
    torch.set_num_threads(distributed.threads_per_process(1))
    L.seed_everything(cfg.seed, workers=True, verbose=False)
    _, _, module, dm = assemble(cfg)
    out.mkdir(parents=True, exist_ok=True)
    trainer = L.Trainer(max_epochs=1000, logger=False, enable_checkpointing=False, enable_progress_bar=False,
                        enable_model_summary=False, default_root_dir=out)
    return _range_test(trainer, module, dm, out / "lr_find.png")


def _range_test(trainer: L.Trainer, module, dm, plot: Path) -> tuple[float | None, Path | None]:
    """Lightning's LR range test: its suggested rate (None when it has none) and the plot written to `plot`."""
    from lightning.pytorch.tuner import Tuner

    finder = Tuner(trainer).lr_find(module, datamodule=dm, min_lr=1e-5, max_lr=1.0, num_training=60, update_attr=False)
    if finder is None:
        return None, None
    plot.parent.mkdir(parents=True, exist_ok=True)
    finder.plot(suggest=True).savefig(plot)
    suggestion = finder.suggestion()
    return (float(suggestion) if suggestion else None), plot


def _find_lr(trainer: L.Trainer, module, dm, cfg: TrainConfig, run: RunFolder) -> TrainConfig:
    """Lightning's LR finder; the suggestion replaces cfg.lr and is saved in config.yaml."""
    from hardsight.config import save_config

    suggestion, plot = _range_test(trainer, module, dm, run.plots / "lr_find.png")
    if suggestion:
        module.hparams.lr = suggestion
        cfg = cfg.replace(lr=suggestion)
        save_config(cfg, run.config)
        console.print(f"LR finder suggests {suggestion:.2e} (plot: {plot})")
    return cfg
