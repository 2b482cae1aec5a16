"""The `text` task: a reader of strings over a charset (loss, decoding, validation metrics)."""

from __future__ import annotations

import math

import lightning as L
import torch
import torch.nn.functional as F

from hardsight.config import InputSpec
from hardsight.decoding import TextCodec, ctc_beam, ctc_greedy, positional
from hardsight.metrics import text_metrics
from hardsight.models import build_model


class TextReader(L.LightningModule):
    """CTC (crnn*) or per-position cross-entropy (cnn) over a model from the registry."""

    def __init__(self, model: str, charset: str, spec: dict, max_length: int, lr: float = 3e-3,
                 weight_decay: float = 1e-4, schedule: str = "onecycle", beam_width: int = 1):
        super().__init__()
        self.save_hyperparameters()
        self.codec = TextCodec(charset)
        self.spec = InputSpec(**{k: tuple(v) if isinstance(v, list) else v for k, v in spec.items()})
        self.ctc = model.startswith("crnn")
        self.model = build_model(model, "text", num_classes=len(charset), spec=self.spec, max_length=max_length)
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
        if not self.ctc:
            raw = positional(log_probs)
        elif self.hparams.beam_width > 1:
            raw = ctc_beam(log_probs, self.hparams.beam_width)
        else:
            raw = ctc_greedy(log_probs)
        return [(self.codec.decode(idx), conf) for idx, conf in raw]

    def training_step(self, batch, batch_idx: int) -> torch.Tensor:
        x, labels = batch
        loss = self.loss(self(x), labels)
        self.log("train/loss", loss, prog_bar=True, on_step=False, on_epoch=True, batch_size=len(labels))
        return loss

    def validation_step(self, batch, batch_idx: int) -> None:
        x, labels = batch
        log_probs = self(x)
        loss = self.loss(log_probs, labels)
        self.log("val/loss", loss, on_epoch=True, batch_size=len(labels))
        self._val_loss.append(float(loss) * len(labels))
        self._val += [(text, ref) for (text, _), ref in zip(self.decode(log_probs), labels)]

    def on_validation_epoch_end(self) -> None:
        if not self._val:
            return
        m = text_metrics([p for p, _ in self._val], [r for _, r in self._val])
        mean_loss = sum(self._val_loss) / len(self._val)
        # checkpoint/early-stopping score: CER first; the loss only breaks ties between equal CERs
        objective = m.cer + 1e-3 * min(mean_loss, 10.0)
        self.log_dict({"val/exact_match": m.exact_match, "val/char_accuracy": m.char_accuracy, "val/cer": m.cer,
                       "val/objective": objective}, prog_bar=True)
        self._val, self._val_loss = [], []

    def configure_optimizers(self):
        return make_optimizers(self, self.parameters())


def make_optimizers(module: L.LightningModule, params):
    """AdamW with one-cycle (per step) or reduce-on-plateau (on validation loss), from the module's hparams.

    Under a `--max-minutes` budget the one-cycle position is the larger of steps done and time spent, so
    the learning rate has annealed when the budget runs out, however fast the machine is.
    """
    from hardsight.callbacks import SessionTimer

    hp = module.hparams
    opt = torch.optim.AdamW(params, lr=hp.lr, weight_decay=hp.weight_decay)
    if hp.schedule == "onecycle":
        total = max(1, int(module.trainer.estimated_stepping_batches))
        timer = next((cb for cb in module.trainer.callbacks if isinstance(cb, SessionTimer)), None)

        def factor(step: int) -> float:
            return one_cycle(max(step / total, timer.fraction_used() if timer else 0.0))

        sched = torch.optim.lr_scheduler.LambdaLR(opt, factor)
        return {"optimizer": opt, "lr_scheduler": {"scheduler": sched, "interval": "step"}}
    sched = torch.optim.lr_scheduler.ReduceLROnPlateau(opt, mode="min", factor=0.5, patience=5)
    return {"optimizer": opt, "lr_scheduler": {"scheduler": sched, "monitor": "val/loss"}}


def one_cycle(progress: float, warmup: float = 0.15, start: float = 0.04, end: float = 1e-4) -> float:
    """LR multiplier: linear warm-up from `start` to 1, then cosine down to `end` (as OneCycleLR)."""
    p = min(max(progress, 0.0), 1.0)
    if p < warmup:
        return start + (1 - start) * p / warmup
    return end + (1 - end) * 0.5 * (1 + math.cos(math.pi * (p - warmup) / (1 - warmup)))
