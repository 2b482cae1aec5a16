"""Every registered text reader: output shapes for fixed and variable widths."""

from __future__ import annotations

import pytest
import torch

from hardsight.config import InputSpec
from hardsight.errors import ConfigError
from hardsight.models import build_model, list_models


@pytest.mark.parametrize("name", list_models("text"))
def test_output_shape(name):
    keep = name.startswith("crnn")
    spec = InputSpec(32, 128, keep_aspect=keep)
    model = build_model(name, "text", num_classes=19, spec=spec, max_length=6).eval()
    out = model(torch.rand(3, 1, 32, 128))
    steps = 32 if keep else 6  # crnn: one step per 4 px of width; cnn: one per position
    assert out.shape == (3, steps, 20)


@pytest.mark.parametrize("name", [n for n in list_models("text") if n.startswith("crnn")])
def test_crnn_accepts_any_width(name):
    model = build_model(name, "text", num_classes=10, spec=InputSpec(32, 512), max_length=0).eval()
    assert model(torch.rand(2, 1, 32, 200)).shape == (2, 50, 11)
    assert model(torch.rand(2, 1, 32, 512)).shape == (2, 128, 11)


def test_unknown_model_names_the_close_one():
    with pytest.raises(ConfigError, match="did you mean 'crnn'"):
        build_model("crn", "text", num_classes=3, spec=InputSpec(32, 128))


def test_a_new_crnn_run_gets_layer_norm_and_old_runs_keep_their_shape():
    from hardsight.models.text_readers import args_from_data

    new_args = args_from_data("crnn", InputSpec(32, 128), 5, {})
    assert new_args == {"layer_norm": True}
    assert args_from_data("crnn", InputSpec(32, 128), 5, {"layer_norm": False}) == {"layer_norm": False}  # given wins
    assert args_from_data("cnn", InputSpec(32, 128), 5, {}) == {}
    new = build_model("crnn", "text", num_classes=19, spec=InputSpec(32, 128), model_args=new_args)
    assert any(isinstance(m, torch.nn.LayerNorm) for m in new.modules())
    # a run built before the choice existed has model_args without it: its checkpoint loads into the old shape
    old = build_model("crnn", "text", num_classes=19, spec=InputSpec(32, 128), model_args={})
    assert not any(isinstance(m, torch.nn.LayerNorm) for m in old.modules())
    assert set(new.state_dict()) - set(old.state_dict()) == {"proj.1.weight", "proj.1.bias"}


def test_transplant_moves_each_output_row_with_its_character_and_adapts_grey_to_rgb():
    from hardsight.models.text_readers import transplant

    torch.manual_seed(0)
    old = build_model("crnn", "text", num_classes=3, spec=InputSpec(32, 128), max_length=0).eval()  # charset "abc"
    new = build_model("crnn", "text", num_classes=3, spec=InputSpec(32, 128, channels=3, mean=(0.5,) * 3,
                                                                     std=(0.5,) * 3), max_length=0).eval()
    fresh_row = new.head.weight[2].clone()  # "x" below: a character the old reader never read
    assert transplant(new, old.state_dict(), "abc", "cxa") == "x"
    assert torch.equal(new.head.weight[0], old.head.weight[0])  # the blank
    assert torch.equal(new.head.weight[1], old.head.weight[3])  # "c"
    assert torch.equal(new.head.weight[2], fresh_row)  # "x" starts fresh
    assert torch.equal(new.head.bias[3], old.head.bias[1])  # "a"
    grey = torch.rand(2, 1, 32, 64)
    with torch.no_grad():  # the same picture as grey and as RGB reads the same through the adapted first conv
        assert torch.allclose(old.features[0](grey), new.features[0](grey.expand(-1, 3, -1, -1)), atol=1e-5)


def test_transplant_refuses_a_reader_of_another_shape():
    from hardsight.models.text_readers import transplant

    small = build_model("crnn", "text", num_classes=3, spec=InputSpec(32, 128), max_length=0)
    taller = build_model("crnn", "text", num_classes=3, spec=InputSpec(64, 128), max_length=0)
    with pytest.raises(ValueError, match="proj"):  # 64-px input: another projection size
        transplant(taller, small.state_dict(), "abc", "abc")
