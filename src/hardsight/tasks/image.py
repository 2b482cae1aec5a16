"""The `image` task: single-label (softmax) or multi-label (sigmoid) classification of images."""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F

from hardsight.finetuning import param_groups
from hardsight.metrics import classification_metrics
from hardsight.models.image_classifiers import build_image_model
from hardsight.models.layers import Normalize
from hardsight.models.weights import IMAGENET_MEAN, IMAGENET_STD
from hardsight.tasks.base import Recogniser, make_optimizers, val_objective


class ImageClassifier(Recogniser):
    """Loss with class weights, label smoothing and MixUp/CutMix; validation macro-F1 drives checkpoints.

    `mean`/`std` are the input statistics the backbone expects (its pretrained config's): part of the model, so
    export and every engine normalise alike; runs older than the setting used ImageNet's. `pretrained`, `freeze`
    and `weights` record how training started; building the module never loads weights.
    """

    def __init__(self, model: str, classes: list[str], image_size: int, multi_label: bool = False,
                 class_weights: list[float] | None = None, label_smoothing: float = 0.1, mixup: float = 0.0,
                 lr: float = 2e-3, weight_decay: float = 5e-4, schedule: str = "onecycle", pretrained: bool = False,
                 freeze: bool = False, optimizer: str = "adamw", loss: str = "ce", model_args: dict | None = None,
                 mean: tuple[float, ...] | None = None, std: tuple[float, ...] | None = None,
                 weights: str | None = None, body_lr_ratio: float = 1.0, layer_decay: float | None = None):
        super().__init__()
        self.save_hyperparameters()
        self.classes = list(classes)
        self.norm = Normalize(tuple(mean or IMAGENET_MEAN), tuple(std or IMAGENET_STD))
        self.net = build_image_model(model, len(classes), model_args=model_args)
        self.register_buffer("class_weights", torch.tensor(class_weights or [1.0] * len(classes), dtype=torch.float32))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Images (B, 3, S, S) in [0, 1] -> logits (B, C)."""
        return self.net(self.norm(x))

    def probabilities(self, logits: torch.Tensor) -> torch.Tensor:
        return logits.sigmoid() if self.hparams.multi_label else logits.softmax(-1)

    def loss(self, logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        """targets: (B, C) multi-hot (or mixed) label weights; hparams.loss 'focal' down-weights easy examples."""
        focal = self.hparams.get("loss", "ce") == "focal"  # runs older than the setting trained with "ce"
        if self.hparams.multi_label:
            if focal:
                return sigmoid_focal_loss(logits, targets, self.class_weights)
            return F.binary_cross_entropy_with_logits(logits, targets, pos_weight=self.class_weights)
        soft = targets / targets.sum(1, keepdim=True).clamp_min(1e-6)  # an image with 2 labels is half each
        if focal:
            return softmax_focal_loss(logits, soft, self.class_weights, self.hparams.label_smoothing)
        return F.cross_entropy(logits, soft, weight=self.class_weights, label_smoothing=self.hparams.label_smoothing)

    def setup(self, stage: str) -> None:
        # channels-last convolutions: on two CPU cores a training step at batch 64 is ~10% faster for compact (64 px)
        # and ~28% for EfficientNet-Lite0 (96 px), measured alone (benchmarks/precision.py times the same choice);
        # here, before DDP wraps the module (converting after would break its gradient buckets)
        if stage == "fit":
            self.net.to(memory_format=torch.channels_last)

    def training_step(self, batch, batch_idx: int) -> torch.Tensor:
        x, y = batch
        x = x.contiguous(memory_format=torch.channels_last)
        if self.hparams.mixup > 0 and np.random.rand() < 0.5:
            x, y = mix_batch(x, y, self.hparams.mixup)
        loss = self.loss(self(x), y)
        self.log_train_loss(loss, len(x))
        return loss

    def validation_step(self, batch, batch_idx: int) -> None:
        x, y = batch
        logits = self(x)
        batch_out = (self.probabilities(logits).float().cpu().numpy(), y.cpu().numpy())  # (probabilities, multi-hot)
        self.keep_val([batch_out], self.loss(logits, y), len(x))

    def score_epoch(self, outputs: list[tuple[np.ndarray, np.ndarray]], loss_sum: float) -> dict[str, float]:
        probs = np.concatenate([p for p, _ in outputs])
        truth = np.concatenate([t for _, t in outputs])
        m = classification_metrics([list(np.flatnonzero(t)) for t in truth], probs, self.classes, self.hparams.multi_label)
        values = {"val/accuracy": m.accuracy, "val/balanced_accuracy": m.balanced_accuracy, "val/macro_f1": m.macro_f1,
                  "val/objective": val_objective(1.0 - m.macro_f1, loss_sum / len(probs))}
        if m.mean_average_precision is not None:
            values["val/map"] = m.mean_average_precision
        return values

    def configure_optimizers(self):
        hp = self.hparams
        return make_optimizers(self, param_groups(self.net, hp.lr, hp.weight_decay, hp.get("body_lr_ratio", 1.0),
                                                  hp.get("layer_decay")))


def softmax_focal_loss(logits: torch.Tensor, soft: torch.Tensor, weight: torch.Tensor, label_smoothing: float = 0.0,
                       gamma: float = 2.0) -> torch.Tensor:
    """Focal loss (Lin et al. 2017) on soft targets (B, C): cross-entropy with each class term scaled by
    (1 - p)^gamma; gamma 0 is F.cross_entropy with the same weight and smoothing."""
    if label_smoothing:
        soft = soft * (1 - label_smoothing) + label_smoothing / soft.shape[1]
    log_p = logits.log_softmax(-1)
    return -(weight * soft * (1 - log_p.exp()).pow(gamma) * log_p).sum(1).mean()


def sigmoid_focal_loss(logits: torch.Tensor, targets: torch.Tensor, pos_weight: torch.Tensor,
                       gamma: float = 2.0) -> torch.Tensor:
    """Multi-label focal loss: the weighted binary cross-entropy of each output scaled by (1 - p_t)^gamma."""
    bce = F.binary_cross_entropy_with_logits(logits, targets, pos_weight=pos_weight, reduction="none")
    p = logits.sigmoid()
    p_t = p * targets + (1 - p) * (1 - targets)
    return ((1 - p_t).pow(gamma) * bce).mean()


def mix_batch(x: torch.Tensor, y: torch.Tensor, alpha: float) -> tuple[torch.Tensor, torch.Tensor]:
    """MixUp or CutMix (half each) with multi-hot targets, which torchvision's versions do not take."""
    lam = float(np.random.beta(alpha, alpha))
    perm = torch.randperm(len(x))
    if np.random.rand() < 0.5:
        return lam * x + (1 - lam) * x[perm], lam * y + (1 - lam) * y[perm]
    h, w = x.shape[-2:]
    ch, cw = int(h * np.sqrt(1 - lam)), int(w * np.sqrt(1 - lam))
    cy, cx = np.random.randint(h), np.random.randint(w)
    y0, y1, x0, x1 = max(cy - ch // 2, 0), min(cy + ch // 2, h), max(cx - cw // 2, 0), min(cx + cw // 2, w)
    x = x.clone()
    x[..., y0:y1, x0:x1] = x[perm][..., y0:y1, x0:x1]
    lam = 1 - (y1 - y0) * (x1 - x0) / (h * w)
    return x, lam * y + (1 - lam) * y[perm]


__all__ = ["ImageClassifier", "mix_batch", "sigmoid_focal_loss", "softmax_focal_loss"]
