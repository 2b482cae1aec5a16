"""The `text` task: a reader of strings over a charset (loss, decoding, validation metrics)."""

from __future__ import annotations

import lightning as L
import torch
import torch.nn.functional as F

from hardsight.config import InputSpec
from hardsight.decoding import TextCodec, TextDecoder
from hardsight.distributed import gather_epoch
from hardsight.metrics import text_metrics
from hardsight.models import build_model


class TextReader(L.LightningModule):
    """CTC (crnn*) or per-position cross-entropy (cnn) over a model from the registry."""

    def __init__(self, model: str, charset: str, spec: dict, max_length: int, lr: float = 3e-3,
                 weight_decay: float = 1e-4, schedule: str = "onecycle", beam_width: int = 1, optimizer: str = "adamw",
                 model_args: dict | None = None):
        super().__init__()
        self.save_hyperparameters()
        self.codec = TextCodec(charset)
        self.spec = InputSpec(**{k: tuple(v) if isinstance(v, list) else v for k, v in spec.items()})
        self.ctc = model.startswith("crnn")
        self.decoder = TextDecoder(charset, self.ctc, beam_width)
        self.model = build_model(model, "text", model_args=model_args, num_classes=len(charset), spec=self.spec,
                                 max_length=max_length)
        self._val: list[tuple[str, str]] = []
        self._val_loss: list[float] = []

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Images (B, C, H, W) in [0, 1] -> log-probabilities (B, T, K+1)."""
        return self.model(x).log_softmax(-1)

    def loss(self, log_probs: torch.Tensor, labels: list[str]) -> torch.Tensor:
        targets = [torch.tensor(self.codec.encode(t), dtype=torch.long) for t in labels]
        if self.ctc:
            b, t, _ = log_probs.shape
            return F.ctc_loss(log_probs.transpose(0, 1), torch.cat(targets), torch.full((b,), t, dtype=torch.long),
                              torch.tensor([len(x) for x in targets]), blank=0, zero_infinity=True)
        length = log_probs.shape[1]
        padded = torch.zeros(len(targets), length, dtype=torch.long)
        for i, tgt in enumerate(targets):
            padded[i, : min(length, len(tgt))] = tgt[:length]
        return F.nll_loss(log_probs.reshape(-1, log_probs.shape[-1]), padded.view(-1).to(log_probs.device))

    def decode(self, log_probs: torch.Tensor) -> list[tuple[str, float]]:
        return self.decoder(log_probs)

    def training_step(self, batch, batch_idx: int) -> torch.Tensor:
        x, labels = batch
        loss = self.loss(self(x), labels)
        self.log("train/loss", loss, prog_bar=True, on_step=False, on_epoch=True, batch_size=len(labels),
                 sync_dist=True)
        return loss

    def validation_step(self, batch, batch_idx: int) -> None:
        x, labels = batch
        log_probs = self(x)
        loss = self.loss(log_probs, labels)
        self.log("val/loss", loss, on_epoch=True, batch_size=len(labels), sync_dist=True)
        self._val_loss.append(float(loss) * len(labels))
        self._val += [(text, ref) for (text, _), ref in zip(self.decode(log_probs), labels)]

    def on_validation_epoch_end(self) -> None:
        values = self.validation_metrics()
        if values:
            self.log_dict(values, prog_bar=True, sync_dist=True)  # equal on every rank already

    def validation_metrics(self) -> dict[str, float] | None:
        """This epoch's scores over the whole validation split (under DDP, every rank's predictions gathered first)."""
        pairs, loss_sum = gather_epoch(self._val, self._val_loss)
        self._val, self._val_loss = [], []
        if not pairs:
            return None
        m = text_metrics([p for p, _ in pairs], [r for _, r in pairs])
        mean_loss = loss_sum / len(pairs)
        return {"val/exact_match": m.exact_match, "val/char_accuracy": m.char_accuracy, "val/cer": m.cer,
                "val/objective": val_objective(m.cer, mean_loss)}

    def configure_optimizers(self):
        return make_optimizers(self, self.parameters())


def val_objective(error: float, mean_loss: float) -> float:
    """What checkpoints and early stopping minimise: the task's error first; the loss only breaks ties."""
    return error + 1e-3 * min(mean_loss, 10.0)


OPTIMIZERS = {  # name -> (params, lr, weight_decay) -> optimiser; names are TrainConfig.optimizer's choices
    "adamw": lambda params, lr, wd: torch.optim.AdamW(params, lr=lr, weight_decay=wd),
    "adam": lambda params, lr, wd: torch.optim.Adam(params, lr=lr, weight_decay=wd),
    "sgd": lambda params, lr, wd: torch.optim.SGD(params, lr=lr, momentum=0.9, nesterov=True, weight_decay=wd),
    "rmsprop": lambda params, lr, wd: torch.optim.RMSprop(params, lr=lr, momentum=0.9, weight_decay=wd),
}


def make_optimizers(module: L.LightningModule, params):
    """The optimiser named in the module's hparams (AdamW in runs older than the setting) with one-cycle (per step)
    or reduce-on-plateau (on validation loss)."""
    from hardsight.callbacks import SessionTimer

    hp = module.hparams
    opt = OPTIMIZERS[hp.get("optimizer", "adamw")](params, hp.lr, hp.weight_decay)
    if hp.schedule == "onecycle":
        timer = next((cb for cb in module.trainer.callbacks if isinstance(cb, SessionTimer)), None)
        sched = BudgetOneCycleLR(opt, timer, max_lr=hp.lr, pct_start=0.15,
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
