"""Fine-tuning a pretrained backbone: which layers train, when the body unfreezes, and how fast each part learns.

Layers are timm's coarse layer groups (`group_matcher`: stem, each stage, the last conv), which our compact CNN
declares too; freezing goes through Lightning's `BaseFinetuning`, with BatchNorm statistics frozen as well.
"""

from __future__ import annotations

import lightning as L
from lightning.pytorch.callbacks import BaseFinetuning
from torch import nn
from torch.nn.modules.batchnorm import _BatchNorm

from hardsight.console import console
from hardsight.errors import ConfigError


def layer_groups(net: nn.Module) -> list[list[nn.Module]]:
    """The body's layer groups, input side first, without the classifier head."""
    from timm.models import group_modules

    if not hasattr(net, "group_matcher"):
        raise ConfigError(f"{type(net).__name__} does not declare its layer groups; --trainable-layers and "
                          "--freeze-epochs need a timm model or one of ours")
    head = net.get_classifier() if hasattr(net, "get_classifier") else None
    head_ids = {id(m) for m in head.modules()} if isinstance(head, nn.Module) else set()
    by_name = dict(net.named_modules())
    groups = []
    for _, names in sorted(group_modules(net, net.group_matcher(coarse=True)).items()):
        mods = [by_name[n] for n in names if n in by_name and id(by_name[n]) not in head_ids]
        if mods:
            groups.append(mods)
    return groups


def always_frozen(net: nn.Module, trainable_layers: int | None) -> list[nn.Module]:
    """The body's modules that never train: all but the last `trainable_layers` groups (None: none frozen; 0: the
    whole body, a linear probe on its features)."""
    if trainable_layers is None:
        return []
    groups = layer_groups(net)
    if trainable_layers > len(groups):
        raise ConfigError(f"trainable_layers {trainable_layers}: {type(net).__name__} has only {len(groups)} "
                          "layer groups")
    return [m for g in groups[:len(groups) - trainable_layers] for m in g]


class FreezeBackbone(BaseFinetuning):
    """The body frozen for the first `freeze_epochs` epochs (the head learns on fixed features, as fastai's
    `fine_tune` does), then unfrozen, except the groups `--trainable-layers` keeps frozen for good. Frozen
    BatchNorm layers run in eval mode, so their running statistics stay the pretrained ones."""

    def __init__(self, body: list[nn.Module], frozen: list[nn.Module], freeze_epochs: int = 0):
        super().__init__()
        self.body, self.frozen, self.freeze_epochs = body, frozen, freeze_epochs
        self._unfrozen = freeze_epochs == 0
        self._frozen_bn = self._batch_norms()

    def _batch_norms(self) -> list[_BatchNorm]:
        """The BatchNorm layers frozen now (worked out when that changes, not every batch)."""
        frozen = self.frozen + ([] if self._unfrozen else self.body)
        return [m for m in BaseFinetuning.flatten_modules(frozen) if isinstance(m, _BatchNorm)]

    def freeze_before_training(self, pl_module: L.LightningModule) -> None:
        self.freeze(self.frozen + ([] if self._unfrozen else self.body), train_bn=False)

    def finetune_function(self, pl_module: L.LightningModule, epoch: int, optimizer) -> None:
        """Called at each epoch's start (also on resume, past the unfreezing epoch)."""
        if not self._unfrozen and epoch >= self.freeze_epochs:
            keep = {id(m) for m in self.frozen}
            self.make_trainable([m for m in self.body if id(m) not in keep])
            self._unfrozen = True
            self._frozen_bn = self._batch_norms()
            console.print(f"epoch {epoch}: backbone unfrozen" + (f" (its first {len(self.frozen)} modules stay "
                                                                 "frozen)" if self.frozen else ""))

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx: int) -> None:
        # Lightning puts the whole module in train mode around validation; frozen BN must keep its statistics
        for m in self._frozen_bn:
            m.eval()


def param_groups(net: nn.Module, lr: float, weight_decay: float, body_lr_ratio: float = 1.0,
                 layer_decay: float | None = None) -> list[dict]:
    """Optimiser groups with their own peak rates: the head at `lr`, the body at `lr * body_lr_ratio`, or with
    `layer_decay` each of timm's layer groups `layer_decay` times slower than the one above it. Frozen
    parameters are included: they join in when the body unfreezes."""
    if layer_decay is not None:
        from timm.optim import param_groups_layer_decay

        groups = param_groups_layer_decay(net, weight_decay=weight_decay, layer_decay=layer_decay)
        return [{"params": g["params"], "weight_decay": g["weight_decay"], "lr": lr * g["lr_scale"]} for g in groups]
    head = net.get_classifier() if hasattr(net, "get_classifier") else None
    head_ids = {id(p) for p in head.parameters()} if isinstance(head, nn.Module) else set()
    body = [p for p in net.parameters() if id(p) not in head_ids]
    top = [p for p in net.parameters() if id(p) in head_ids]
    return [g for g in ({"params": body, "lr": lr * body_lr_ratio, "weight_decay": weight_decay},
                        {"params": top, "lr": lr, "weight_decay": weight_decay}) if g["params"]]
