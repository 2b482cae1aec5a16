"""The LR schedule and stopping: counted in optimiser steps, planned to what a time budget fits, monitor settings."""

from __future__ import annotations

import csv
from types import SimpleNamespace

import pytest
import torch

from hardsight.config import TrainConfig
from hardsight.engine.callbacks import BudgetPlanner
from hardsight.errors import ConfigError
from hardsight.tasks.base import WarmupCosineLR
from tests.test_cli_text import run_cli


def _schedule(peak: float = 1e-2, warmup: int = 10, total: int = 100) -> WarmupCosineLR:
    opt = torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=peak)
    return WarmupCosineLR(opt, [peak], warmup, total)


def test_one_cycle_warms_up_over_fixed_steps_then_anneals_to_the_plan_end():
    s = _schedule()
    assert s.lr_at(0, 1e-2) == pytest.approx(1e-2 / 25)
    assert s.lr_at(10, 1e-2) == pytest.approx(1e-2)  # the peak after `warmup_steps`, whatever the run's length
    assert _schedule(total=10_000).lr_at(10, 1e-2) == pytest.approx(1e-2)
    assert s.lr_at(100, 1e-2) == pytest.approx(1e-6)
    lrs = [s.lr_at(i, 1e-2) for i in range(10, 101)]
    assert all(a >= b for a, b in zip(lrs, lrs[1:]))  # only down after the warm-up
    s.total_steps = 50  # re-planned (BudgetPlanner): the anneal ends at the new total
    assert s.lr_at(50, 1e-2) == pytest.approx(1e-6) and s.lr_at(30, 1e-2) < _schedule().lr_at(30, 1e-2)


class _Timer:
    def __init__(self, elapsed: float, remaining: float):
        self.elapsed, self.remaining = elapsed, remaining

    def time_elapsed(self, stage: str) -> float:
        return self.elapsed

    def time_remaining(self) -> float:
        return self.remaining


def _trainer(step: int, planned: int, scheduler) -> SimpleNamespace:
    return SimpleNamespace(global_step=step, estimated_stepping_batches=planned,
                           lr_scheduler_configs=[SimpleNamespace(scheduler=scheduler)],
                           strategy=SimpleNamespace(broadcast=lambda x: x))


def test_a_budget_that_fits_fewer_steps_replans_the_schedule_and_says_so(capsys):
    sched = _schedule(total=1000)
    planner = BudgetPlanner(_Timer(elapsed=10.0, remaining=40.0), margin=1.0)  # 100 steps in 10 s: 400 more fit
    trainer = _trainer(0, 1000, sched)
    planner.on_train_start(trainer, None)
    trainer.global_step = 100
    planner.on_train_epoch_end(trainer, None)
    assert planner.planned == sched.total_steps == 500
    planner.timer.elapsed = 20.0  # the next 100 steps as fast, with 30 s left: 300 more fit, as planned
    planner.timer.remaining = 30.0
    planner.on_train_epoch_end(_trainer(200, 1000, sched), None)
    assert sched.total_steps == 500
    planner.timer.elapsed = 40.0  # then 200 ms a step (a fine-tune's body unfroze): 10 s fit 50 more steps
    planner.timer.remaining = 10.0
    planner.on_train_epoch_end(_trainer(300, 1000, sched), None)
    assert planner.planned == sched.total_steps == 350
    said = capsys.readouterr()
    assert "200 ms a step now" in " ".join((said.out + said.err).split())
    roomy = _schedule(total=1000)
    planner = BudgetPlanner(_Timer(elapsed=10.0, remaining=1000.0))
    trainer = _trainer(0, 1000, roomy)
    planner.on_train_start(trainer, None)
    trainer.global_step = 100
    planner.on_train_epoch_end(trainer, None)
    assert roomy.total_steps == 1000 and planner.planned == 1000


def test_plateau_and_monitor_settings_reach_the_schedule_and_the_stopping(captchas, tmp_path):
    run = tmp_path / "run"
    run_cli("train", "text", captchas, "--out", run, "--epochs", "2", "--schedule", "plateau", "--monitor", "accuracy",
            "--plateau-factor", "0.2", "--plateau-patience", "1", "--min-lr", "1e-6", "--patience", "3")
    from hardsight.runs.folder import RunFolder
    from hardsight.tasks import load_module

    folder = RunFolder.open(run)
    cfg = folder.load_config()
    assert (cfg.schedule, cfg.monitor, cfg.plateau_factor, cfg.plateau_patience, cfg.min_lr, cfg.patience) == (
        "plateau", "accuracy", 0.2, 1, 1e-6, 3)
    sched = load_module(folder).configure_optimizers()["lr_scheduler"]
    plateau = sched["scheduler"]
    assert sched["monitor"] == "val/exact_match" and plateau.mode == "max" and plateau.factor == 0.2
    assert plateau.patience == 1 and plateau.min_lrs == [1e-6]
    rows = list(csv.DictReader(folder.metrics.open()))
    assert len(rows) == 2 and all(r["train/exact_match"] != "" for r in rows)  # train accuracy beside val's


def test_schedule_settings_are_checked():
    with pytest.raises(ConfigError, match="plateau_factor"):
        TrainConfig(task="text", data="d", plateau_factor=1.5)
    with pytest.raises(ConfigError, match="monitor must be one of"):
        TrainConfig(task="text", data="d", monitor="val_accuracy")


def test_early_stopping_waits_for_the_warm_up_to_end(captchas, tmp_path):
    """A small set's epochs are a few steps: `patience` epochs must not end a run before its LR has peaked."""
    from hardsight import train

    result = train(TrainConfig(task="text", data=str(captchas), out=str(tmp_path / "r"), epochs=8, patience=1,
                               monitor="accuracy", batch_size=16, seed=0), progress=False)  # exact match stays 0
    assert result.stopped_by == "early stopping"
    assert result.steps > result.planned_steps // 3  # the warm-up's end (700 steps, capped at a third of the run)
