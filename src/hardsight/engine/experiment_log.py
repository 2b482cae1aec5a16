"""Experiment logs beyond metrics.csv: TensorBoard scalars and the run's settings in its HParams view."""

from __future__ import annotations

import importlib.util
import math
import warnings
from typing import Any

import lightning as L
from lightning.pytorch.loggers import Logger, TensorBoardLogger

from hardsight.config import TrainConfig
from hardsight.errors import ConfigError
from hardsight.runs.folder import RunFolder

TENSORBOARD_DIR = "tensorboard"
_TEST_METRICS = ("exact_match", "char_accuracy", "cer", "accuracy", "balanced_accuracy", "macro_f1")


def make_logger(cfg: TrainConfig, run: RunFolder) -> Logger | bool:
    """Lightning's logger for `cfg.logger`; False for csv (metrics.csv is written by EpochMetricsCSV either way)."""
    if cfg.logger == "csv":
        return False
    if importlib.util.find_spec("tensorboard") is None:
        raise ConfigError("--logger tensorboard needs TensorBoard: pip install tensorboard")
    warnings.filterwarnings("ignore", ".*smaller than the logging interval.*")
    # RUN/tensorboard/ itself (no version_N/): a resumed run appends to the same place
    return TensorBoardLogger(save_dir=run.path, name=TENSORBOARD_DIR, version="", default_hp_metric=False)


def hparam_metrics(best_objective: float | None, test: Any) -> dict[str, float]:
    """What the HParams view compares runs by: the best val/objective and the test-split scores."""
    out = {}
    if best_objective is not None and math.isfinite(float(best_objective)):
        out["hp/val_objective"] = float(best_objective)
    for name in _TEST_METRICS:
        value = getattr(test, name, None)
        if isinstance(value, (int, float)):
            out[f"hp/test_{name}"] = float(value)
    return out


def log_hparams(trainer: L.Trainer, cfg: TrainConfig, metrics: dict[str, float]) -> None:
    """The run's settings (TrainConfig, flattened by Lightning) with its final scores, for TensorBoard's HParams."""
    for logger in trainer.loggers:
        if isinstance(logger, TensorBoardLogger):
            logger.log_hyperparams(cfg.to_dict(), metrics=metrics or {"hp/val_objective": float("nan")},
                                   step=trainer.global_step)
            logger.finalize("success")
