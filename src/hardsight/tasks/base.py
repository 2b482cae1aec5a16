"""What the text and image tasks share: validation scored over the whole split, the optimiser, the LR schedule."""

from __future__ import annotations

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

    def log_train_loss(self, loss: torch.Tensor, n: int) -> None:
        self.log("train/loss", loss, prog_bar=True, on_step=False, on_epoch=True, batch_size=n, sync_dist=True)

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
    """The optimiser named in the module's hparams with one-cycle (per step)
    or reduce-on-plateau (on validation loss). `params`: tensors, or groups (dicts) with their own peak `lr`."""
    from hardsight.engine.callbacks import SessionTimer

    hp = module.hparams
    opt = OPTIMIZERS[hp.optimizer](params, hp.lr, hp.weight_decay)
    if hp.schedule == "onecycle":
        timer = next((cb for cb in module.trainer.callbacks if isinstance(cb, SessionTimer)), None)
        peaks = [g.get("lr", hp.lr) for g in params] if params and isinstance(params[0], dict) else hp.lr
        sched = BudgetOneCycleLR(opt, timer, max_lr=peaks, pct_start=0.15,
                                 total_steps=max(1, int(module.trainer.estimated_stepping_batches)))
        return {"optimizer": opt, "lr_scheduler": {"scheduler": sched, "interval": "step"}}
    sched = torch.optim.lr_scheduler.ReduceLROnPlateau(opt, mode="min", factor=0.5, patience=5)
    return {"optimizer": opt, "lr_scheduler": {"scheduler": sched, "monitor": "val/loss"}}


class BudgetOneCycleLR(torch.optim.lr_scheduler.OneCycleLR):
    """OneCycleLR that (a) under `--max-minutes` stands at the larger of steps done and share of the time
    budget spent, so the rate has annealed when the budget runs out, and (b) when a run resumes with more
    epochs, keeps the new, longer schedule instead of the checkpoint's."""

    def __init__(self, optimizer, timer, **kwargs):
        self.timer = timer
        super().__init__(optimizer, **kwargs)

    def get_lr(self):
        steps = self.last_epoch
        if self.timer is not None:
            by_time = int(self.timer.fraction_used() * self.total_steps)
            self.last_epoch = min(max(steps, by_time), self.total_steps)
        try:
            return super().get_lr()
        finally:
            self.last_epoch = steps

    def load_state_dict(self, state_dict: dict) -> None:
        keep = {k: self.__dict__[k] for k in ("total_steps", "_schedule_phases")}
        super().load_state_dict({k: v for k, v in state_dict.items() if k != "timer"})
        self.__dict__.update(keep)

    def state_dict(self) -> dict:
        return {k: v for k, v in super().state_dict().items() if k != "timer"}
