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


def _epoch(planner: BudgetPlanner, trainer, step: int, elapsed: float, remaining: float) -> None:
    trainer.global_step, planner.timer.elapsed, planner.timer.remaining = step, elapsed, remaining
    planner.on_train_epoch_end(trainer, None)


def test_a_budget_that_fits_fewer_steps_replans_the_schedule_and_says_so(capsys):
    sched = _schedule(total=10_000)
    planner = BudgetPlanner(_Timer(elapsed=0.0, remaining=120.0), margin=1.0)
    trainer = _trainer(0, 10_000, sched)
    planner.on_train_start(trainer, None)
    _epoch(planner, trainer, 100, 10.0, 110.0)  # 100 steps in 10 s: 1,100 more fit
    assert planner.planned == sched.total_steps == 1200
    _epoch(planner, trainer, 200, 20.0, 100.0)  # the next 100 steps as fast: 1,000 more fit, as planned
    assert sched.total_steps == 1200
    # then 300 ms a step (a fine-tune's body unfroze): the median of the latest three epochs follows within two
    _epoch(planner, trainer, 300, 50.0, 70.0)  # median 100 ms: 700 more fit
    assert sched.total_steps == 1000
    _epoch(planner, trainer, 400, 80.0, 40.0)  # median 300 ms: 133 more fit
    assert planner.planned == sched.total_steps == 533
    said = capsys.readouterr()
    said = " ".join((said.out + said.err).split())
    assert "fits about 1,200 of the 10,000 steps" in said and "300 ms a step now" in said
    roomy = _schedule(total=1000)
    planner = BudgetPlanner(_Timer(elapsed=0.0, remaining=1000.0))
    trainer = _trainer(0, 1000, roomy)
    planner.on_train_start(trainer, None)
    _epoch(planner, trainer, 100, 10.0, 1000.0)
    assert roomy.total_steps == 1000 and planner.planned == 1000


def test_a_slow_first_epoch_does_not_fix_the_plan(capsys):
    """Under a CPU hog a first epoch ran three times slower than the rest: its plan (565 steps, shorter than the
    warm-up) must grow back once the epochs run faster, never beyond the steps the epochs ask for."""
    sched = _schedule(total=1000)
    planner = BudgetPlanner(_Timer(elapsed=0.0, remaining=90.0), margin=1.0)
    trainer = _trainer(0, 1000, sched)
    planner.on_train_start(trainer, None)
    _epoch(planner, trainer, 100, 30.0, 60.0)  # 300 ms a step: 200 more fit
    assert sched.total_steps == 300
    _epoch(planner, trainer, 200, 40.0, 50.0)  # 100 ms a step now; the median of (300, 100) ms: 250 more fit
    assert sched.total_steps == 450
    _epoch(planner, trainer, 300, 50.0, 40.0)  # the median of (300, 100, 100) ms is 100: 400 more fit
    assert planner.planned == sched.total_steps == 700
    _epoch(planner, trainer, 400, 55.0, 1000.0)  # a budget that fits everything plans what the epochs ask for
    assert planner.planned == sched.total_steps == 1000
    said = capsys.readouterr()
    assert "fits all 1,000 steps the epochs ask for" in " ".join((said.out + said.err).split())


def test_steps_after_a_replanned_schedule_are_not_spent_at_its_floor():
    sched = _schedule(total=1000)
    planner = BudgetPlanner(_Timer(elapsed=0.0, remaining=50.0), margin=1.0)
    trainer = _trainer(0, 1000, sched)
    trainer.should_stop = False
    planner.on_train_start(trainer, None)
    _epoch(planner, trainer, 100, 10.0, 40.0)
    assert sched.total_steps == 500
    for step in (101, 499):
        trainer.global_step = step
        planner.on_train_batch_end(trainer, None, None, None, 0)
        assert not trainer.should_stop
    trainer.global_step = 500
    planner.on_train_batch_end(trainer, None, None, None, 0)
    assert trainer.should_stop and planner.finished
    unplanned = BudgetPlanner(_Timer(elapsed=0.0, remaining=None))  # no budget: max_epochs ends the run as asked
    trainer = _trainer(0, 1000, _schedule(total=1000))
    trainer.should_stop = False
    unplanned.on_train_start(trainer, None)
    trainer.global_step = 1000
    unplanned.on_train_batch_end(trainer, None, None, None, 0)
    assert not trainer.should_stop


def test_a_lightning_run_stops_where_its_replanned_schedule_ends(tmp_path):
    """The stop above holds inside a real Trainer: mid-epoch, at the planned step, with the LR at its floor."""
    import lightning as L
    from torch.utils.data import DataLoader, TensorDataset

    class Tiny(L.LightningModule):
        def __init__(self):
            super().__init__()
            self.layer = torch.nn.Linear(2, 1)

        def training_step(self, batch, batch_idx):
            return self.layer(batch[0]).pow(2).mean()

        def configure_optimizers(self):
            opt = torch.optim.SGD(self.parameters(), lr=0.1)
            return {"optimizer": opt, "lr_scheduler": {"scheduler": WarmupCosineLR(opt, [0.1], 5, 100),
                                                       "interval": "step"}}

    class Replan(L.Callback):  # what BudgetPlanner's epoch-end planning does, at once: a budget that fits 30 steps
        def on_train_start(self, trainer, module):
            trainer.lr_scheduler_configs[0].scheduler.total_steps = 30
            planner.planned = 30

    planner = BudgetPlanner(_Timer(elapsed=0.0, remaining=None))
    trainer = L.Trainer(max_epochs=5, callbacks=[planner, Replan()], logger=False, enable_checkpointing=False,
                        enable_progress_bar=False, enable_model_summary=False, default_root_dir=tmp_path)
    trainer.fit(Tiny(), DataLoader(TensorDataset(torch.randn(40, 2)), batch_size=2))  # 20 steps an epoch
    assert trainer.global_step == 30 and planner.finished
    assert trainer.optimizers[0].param_groups[0]["lr"] == pytest.approx(1e-5)


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


def test_a_landing_anneals_from_the_current_lr_to_the_floor():
    s = _schedule(total=1000)
    at = s.lr_at(300, 1e-2)
    s.land(300, 100)
    assert s.total_steps == 400
    assert s.lr_at(300, 1e-2) == pytest.approx(at)  # no jump where it starts
    lrs = [s.lr_at(i, 1e-2) for i in range(300, 401)]
    assert all(a >= b for a, b in zip(lrs, lrs[1:])) and lrs[-1] == pytest.approx(1e-6)
    resumed = _schedule(total=5000)  # --resume with more epochs: the landing still ends where it was planned
    resumed.load_state_dict(s.state_dict())
    assert resumed.total_steps == 400


def test_early_stopping_lands_the_lr_before_it_stops(tmp_path):
    """Patience runs out at the peak LR: the run goes on while the LR anneals over a tenth of the plan, then stops."""
    import lightning as L
    from torch.utils.data import DataLoader, TensorDataset

    from hardsight.engine.callbacks import BestCheckpoint, PatientEarlyStopping

    class Flat(L.LightningModule):  # a validation score that never improves
        def __init__(self):
            super().__init__()
            self.layer = torch.nn.Linear(2, 1)

        def training_step(self, batch, batch_idx):
            return self.layer(batch[0]).pow(2).mean()

        def validation_step(self, batch, batch_idx):
            self.log("score", 1.0 + 1e-6 * self.current_epoch)  # a tie-breaking loss drifting up: never better

        def configure_optimizers(self):
            opt = torch.optim.SGD(self.parameters(), lr=0.1)
            return {"optimizer": opt, "lr_scheduler": {"scheduler": WarmupCosineLR(opt, [0.1], 10, 1000),
                                                       "interval": "step"}}

    def fit(land: float):
        early = PatientEarlyStopping("score", patience=2, land=land)
        best = BestCheckpoint(dirpath=tmp_path / f"land{land}", filename="best", monitor="score",
                              enable_version_counter=False, landing=lambda: early.landing)
        trainer = L.Trainer(max_epochs=100, callbacks=[early, best], logger=False, enable_progress_bar=False,
                            enable_model_summary=False, default_root_dir=tmp_path)
        data = DataLoader(TensorDataset(torch.randn(20, 2)), batch_size=2)  # 10 steps an epoch, 1,000 planned
        trainer.fit(Flat(), data, data)
        return trainer, early

    trainer, early = fit(0.0)
    at_once = trainer.global_step
    assert early.stopped_epoch > 0 and at_once < 100  # stops at the peak, as before
    trainer, early = fit(0.1)
    assert early.stopped_epoch > 0 and trainer.global_step == at_once + 100  # then a tenth of 1,000 steps
    assert trainer.optimizers[0].param_groups[0]["lr"] == pytest.approx(1e-5)
    # the landed weights are kept as best although their score drifted up by less than the tie
    best = torch.load(tmp_path / "land0.1" / "best.ckpt", weights_only=True)
    assert best["global_step"] == trainer.global_step
    assert torch.load(tmp_path / "land0.0" / "best.ckpt", weights_only=True)["global_step"] == 10  # the first
