"""The `image` task: single-label (softmax) or multi-label (sigmoid) classification of images."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from hardsight.engine.finetuning import param_groups
from hardsight.engine.metrics import classification_metrics
from hardsight.models.image_classifiers import build_image_model
from hardsight.models.layers import Normalize
from hardsight.models.weights import IMAGENET_MEAN, IMAGENET_STD
from hardsight.tasks.base import Recogniser, make_optimizers, val_objective
from hardsight.tasks.spec import TaskSpec


class ImageClassifier(Recogniser):
    """Loss with class weights, label smoothing and MixUp/CutMix; validation macro-F1 drives checkpoints.

    `mean`/`std` are the input statistics the backbone expects (its pretrained config's): part of the model, so
    export and every engine normalise alike (ImageNet's when none are given). `pretrained`, `freeze`
    and `weights` record how training started; building the module never loads weights.
    """

    def __init__(self, model: str, classes: list[str], image_size: int, multi_label: bool = False,
                 class_weights: list[float] | None = None, label_smoothing: float = 0.1, mixup: float = 0.0,
                 lr: float = 2e-3, weight_decay: float = 5e-4, schedule: str = "onecycle", pretrained: bool = False,
                 freeze: bool = False, optimizer: str = "adamw", loss: str = "ce", model_args: dict | None = None,
                 mean: tuple[float, ...] | None = None, std: tuple[float, ...] | None = None,
                 weights: str | None = None, body_lr_ratio: float = 1.0, layer_decay: float | None = None,
                 schedule_settings: dict | None = None):
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
        focal = self.hparams.loss == "focal"
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
        logits = self(x)
        loss = self.loss(logits, y)
        self.log_train(loss, len(x), (logits.argmax(1) == y.argmax(1)).float().mean())  # top-1 (mixed: the larger share)
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
        return make_optimizers(self, param_groups(self.net, hp.lr, hp.weight_decay, hp.body_lr_ratio, hp.layer_decay))


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


class ImageTask(TaskSpec):
    """Classify an image (single- or multi-label; CAPTCHA tiles, faces), scored by accuracy and macro-F1."""

    name = "image"
    module = ImageClassifier
    objective = "1 - macro-F1"
    finisher = "hardsight.engine.evaluator:finish_image_run"
    evaluator = "hardsight.engine.evaluator:evaluate_image"
    exporter = "hardsight.engine.exporter:export_image_run"
    predictor_class = "hardsight.engine.image_predictor:ImagePredictor"

    def assemble(self, cfg, saved_split=None, saved_labels=None, preprocess=None, prepared=None):
        from hardsight.data.image.prepare import ImageDataModule, prepare_image_data, print_image_summary
        from hardsight.faces.stage import face_preprocess

        data = prepared or prepare_image_data(cfg, saved_split, saved_labels, preprocess or face_preprocess(cfg))
        print_image_summary(data)
        fresh = saved_split is None  # a resumed run keeps the statistics in its labels.json
        module = image_module(cfg, data.classes, data.class_weights(cfg.class_weights), fresh=fresh,
                              saved_input=(saved_labels or {}).get("input"),
                              data_statistics=data.channel_statistics() if fresh and cfg.normalize == "data" else None)
        labels = data.labels_json(cfg)  # the input contract, for readers of the run folder (the model normalises itself)
        labels["input"].update(range="[0, 1], normalised inside the model", **module.norm.statistics())
        return data, labels, module, ImageDataModule(data, cfg)

    def prepare_shared(self, cfg):
        from hardsight.data.image.prepare import prepare_image_data

        return None if cfg.faces else prepare_image_data(cfg)  # a face run crops by its own face settings


def image_module(cfg, classes: list[str], class_weights: list[float], fresh: bool = True,
                 saved_input: dict | None = None,
                 data_statistics: tuple[tuple[float, ...], tuple[float, ...]] | None = None) -> ImageClassifier:
    """The ImageClassifier of `cfg`: on a fresh start with `pretrained`, its weights found (models/weights.py) and
    loaded, and the input statistics they were trained with (a resumed run keeps those in its labels.json);
    `data_statistics` (the training split's mean and std, `normalize: data`) win over those. Frozen layers come
    from the trainer's fine-tuning callbacks."""
    from hardsight.console import console
    from hardsight.models.image_classifiers import input_statistics
    from hardsight.models.weights import load_backbone, resolve_weights

    mean, std, _ = input_statistics(cfg.model)
    if saved_input and "mean" in saved_input:
        mean, std = tuple(saved_input["mean"]), tuple(saved_input["std"])
    weights = None
    if cfg.pretrained and fresh:
        given_run = cfg.weights is not None and Path(cfg.weights).expanduser().is_dir()
        weights = weights_from_run(Path(cfg.weights).expanduser()) if given_run else resolve_weights(cfg.model, cfg.weights)
    if weights is not None and weights.mean is not None:
        mean, std = weights.mean, weights.std
    if data_statistics is not None:
        mean, std = data_statistics
        console.print("normalising by the training split's mean " + ", ".join(f"{v:.3f}" for v in mean)
                      + " and std " + ", ".join(f"{v:.3f}" for v in std))
    module = ImageClassifier(cfg.model, classes, cfg.image_size, cfg.multi_label, class_weights, cfg.label_smoothing,
                             cfg.mixup, lr=cfg.lr, weight_decay=cfg.weight_decay, schedule=cfg.schedule,
                             pretrained=cfg.pretrained, freeze=cfg.freeze, optimizer=cfg.optimizer, loss=cfg.loss,
                             model_args=cfg.model_args, mean=mean, std=std, weights=weights.source if weights else None,
                             body_lr_ratio=cfg.body_lr_ratio, layer_decay=cfg.layer_decay,
                             schedule_settings=cfg.schedule_settings())
    if weights is not None:
        console.print(load_backbone(module.net, weights, classes))
    return module


def weights_from_run(path: Path):
    """`--weights RUN`: the network of another image run (its best checkpoint), with its classes and input
    statistics; its head is kept only where the classes agree (models.weights.load_backbone)."""
    from hardsight.errors import ConfigError, RunError
    from hardsight.models.weights import Weights
    from hardsight.runs.folder import RunFolder
    from hardsight.tasks import load_module

    try:
        run = RunFolder.open(path)
        given = run.load_config().task
        if given != ImageTask.name:
            raise ConfigError(f"--weights {path}: a {given} run; an image model needs the weights of an image run "
                              "(or a state dict file)")
        module = load_module(run, "best")
    except RunError as e:
        raise ConfigError(f"--weights {path}: {e}") from None
    stats = module.norm.statistics()
    return Weights(module.net.state_dict(), f"run {path}", tuple(stats["mean"]), tuple(stats["std"]),
                   list(module.classes))


__all__ = ["ImageClassifier", "ImageTask", "image_module", "mix_batch", "weights_from_run", "sigmoid_focal_loss", "softmax_focal_loss"]
