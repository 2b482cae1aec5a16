"""What the text and image tasks share: validation scored over the whole split, the optimiser, the LR schedule."""

from __future__ import annotations

import math

import lightning as L
import torch

from hardsight.engine.distributed import gather_epoch


class Recogniser(L.LightningModule):
    """A task's LightningModule. `validation_step` hands each batch's outputs to `keep_val`; at the epoch's end
    `score_epoch` turns the outputs of the whole split (under DDP, every rank's, gathered) into the logged metrics."""

    def __init__(self):
        super().__init__()
        self._val: list = []
        self._val_loss: list[float] = []  # loss x images, per batch

    def log_train(self, loss: torch.Tensor, n: int, accuracy: float | torch.Tensor) -> None:
        """The epoch's training loss and accuracy (as the task's validation accuracy counts it), so the train and
        validation curves show over-fitting side by side."""
        self.log("train/loss", loss, prog_bar=True, on_step=False, on_epoch=True, batch_size=n, sync_dist=True)
        self.log(self.accuracy_metric.replace("val/", "train/"), accuracy, on_step=False, on_epoch=True,
                 batch_size=n, sync_dist=True)

    def keep_val(self, outputs: list, loss: torch.Tensor, n: int) -> None:
        self.log("val/loss", loss, on_epoch=True, batch_size=n, sync_dist=True)
        self._val_loss.append(float(loss) * n)
        self._val += outputs

    def on_validation_epoch_end(self) -> None:
        values = self.validation_metrics()
        if values:
            self.log_dict(values, prog_bar=True, sync_dist=True)  # equal on every rank already

    def validation_metrics(self) -> dict[str, float] | None:
        """This epoch's scores over the whole validation split (under DDP, every rank's outputs gathered first)."""
        outputs, loss_sum = gather_epoch(self._val, self._val_loss)
        self._val, self._val_loss = [], []
        return self.score_epoch(outputs, loss_sum) if outputs else None

    def score_epoch(self, outputs: list, loss_sum: float) -> dict[str, float]:
        """The task's metrics (at least `val/objective`) from the epoch's outputs and summed loss."""
        raise NotImplementedError

    def configure_optimizers(self):
        return make_optimizers(self, [p for p in self.parameters() if p.requires_grad])

    accuracy_metric = "val/accuracy"  # the task's accuracy, for `monitor: accuracy`

    @classmethod
    def monitored(cls, monitor: str) -> tuple[str, str]:
        """(logged metric, "min" or "max") of a `monitor` setting: objective, val_loss or accuracy."""
        return {"objective": ("val/objective", "min"), "val_loss": ("val/loss", "min"),
                "accuracy": (cls.accuracy_metric, "max")}[monitor]


def val_objective(error: float, mean_loss: float) -> float:
    """What checkpoints and early stopping minimise: the task's error first; the loss only breaks ties."""
    return error + 1e-3 * min(mean_loss, 10.0)


OPTIMIZERS = {  # name -> (params, lr, weight_decay) -> optimiser; names are TrainConfig.optimizer's choices
    "adamw": lambda params, lr, wd: torch.optim.AdamW(params, lr=lr, weight_decay=wd),
    "adam": lambda params, lr, wd: torch.optim.Adam(params, lr=lr, weight_decay=wd),
    "sgd": lambda params, lr, wd: torch.optim.SGD(params, lr=lr, momentum=0.9, nesterov=True, weight_decay=wd),
    "rmsprop": lambda params, lr, wd: torch.optim.RMSprop(params, lr=lr, momentum=0.9, weight_decay=wd),
}


def make_optimizers(module: L.LightningModule, params: list):
    """The optimiser named in the module's hparams with its LR schedule: one-cycle counted in optimiser steps (a fixed
    warm-up, then a cosine over the planned steps, which engine.callbacks.BudgetPlanner may shorten to what the time
    budget fits), or reduce-on-plateau on the monitored score. `params`: tensors, or groups (dicts) with their own
    peak `lr`."""
    from hardsight.config import schedule_defaults

    hp = module.hparams
    # a run trained before the schedule settings existed: its `schedule`, and the defaults it trained with
    schedule = {**schedule_defaults(), "schedule": hp.schedule, **(hp.get("schedule_settings") or {})}
    opt = OPTIMIZERS[hp.optimizer](params, hp.lr, hp.weight_decay)
    if schedule["schedule"] == "onecycle":
        peaks = [g.get("lr", hp.lr) for g in params] if params and isinstance(params[0], dict) else [hp.lr]
        sched = WarmupCosineLR(opt, peaks, int(schedule["warmup_steps"]),
                               max(1, int(module.trainer.estimated_stepping_batches)))
        return {"optimizer": opt, "lr_scheduler": {"scheduler": sched, "interval": "step"}}
    metric, mode = module.monitored(schedule["monitor"])
    sched = torch.optim.lr_scheduler.ReduceLROnPlateau(opt, mode=mode, factor=schedule["plateau_factor"],
                                                       patience=schedule["plateau_patience"], min_lr=schedule["min_lr"])
    return {"optimizer": opt, "lr_scheduler": {"scheduler": sched, "monitor": metric}}


class WarmupCosineLR(torch.optim.lr_scheduler.LRScheduler):
    """One cycle counted in optimiser steps: from a 25th of each group's peak up to it over `warmup_steps` (cosine),
    then a cosine down to a 10,000th of it at `total_steps`. Written here rather than torch's OneCycleLR, whose warm-up
    is a share of the whole run (a short run's is short) and whose length cannot be re-planned
    once a time budget turns out to fit fewer steps. Resuming with more epochs keeps the new, longer plan."""

    def __init__(self, optimizer, peaks: list[float], warmup_steps: int, total_steps: int):
        self.peaks, self.warmup_steps, self.total_steps = list(peaks), warmup_steps, total_steps
        self.landing: tuple[int, float] | None = None  # (step, share of the peak there): an early end, see `land`
        super().__init__(optimizer)

    def land(self, step: int, steps: int) -> None:
        """End the cycle early: from the LR at `step` down to the floor over `steps` more, along a cosine (early
        stopping's landing, engine.callbacks.PatientEarlyStopping)."""
        self.landing = (step, self.lr_at(step, 1.0))
        self.total_steps = step + max(1, steps)

    @property
    def warmup_end(self) -> int:
        """The step the peak is reached at: `warmup_steps`, or a third of a run too short for them."""
        return min(self.warmup_steps, self.total_steps // 3)  # a very short run still anneals

    def lr_at(self, step: int, peak: float) -> float:
        start, end = peak / 25, peak / 1e4
        if self.landing is not None and step >= self.landing[0]:
            begin, share = self.landing
            done = min(1.0, (step - begin) / max(1, self.total_steps - begin))
            return end + (peak * share - end) * (1 + math.cos(math.pi * done)) / 2
        warmup = self.warmup_end
        if step < warmup:
            return start + (peak - start) * (1 - math.cos(math.pi * step / warmup)) / 2
        done = min(1.0, (step - warmup) / max(1, self.total_steps - warmup))
        return end + (peak - end) * (1 + math.cos(math.pi * done)) / 2

    def get_lr(self) -> list[float]:
        return [self.lr_at(self.last_epoch, peak) for peak in self.peaks]

    def load_state_dict(self, state_dict: dict) -> None:
        keep = {k: self.__dict__[k] for k in ("total_steps", "peaks", "warmup_steps")}
        if state_dict.get("landing") is not None:  # a landing's end is where it was planned, whatever --epochs says
            keep.pop("total_steps")
        super().load_state_dict(state_dict)
        self.__dict__.update(keep)
