"""Flip test-time augmentation: the mean of an image and its mirror, on both engines, baked into model.onnx or not."""

from __future__ import annotations

import json

import pytest
import torch

from hardsight.engine.runtimes import (META_PREFIX, ClassProbabilities, OnnxEngine, TorchEngine, applies_tta,
                               classifier_metadata, with_tta)
from hardsight.engine.exporter import export_classifier
from hardsight.tasks.image import ImageClassifier
from hardsight.engine.tta import FlipTTA
from tests.test_cli_text import run_cli
from tests.test_image_task import tiles  # noqa: F401  (the fixture)


@pytest.fixture(scope="module")
def classifier():
    """Random weights, doubled: at the default init every image gets about the same probabilities, flipped or not."""
    torch.manual_seed(0)
    module = ImageClassifier("compact", ["a", "b", "c"], image_size=32).eval()
    with torch.no_grad():
        for p in module.parameters():
            if p.dim() > 1:
                p.mul_(2.0)
    return module


def _images(n: int, seed: int) -> torch.Tensor:
    """Noise over a left-to-right ramp: images whose mirror is a different input."""
    ramp = torch.linspace(0, 1, 32).expand(n, 3, 32, 32)
    return 0.5 * torch.rand(n, 3, 32, 32, generator=torch.Generator().manual_seed(seed)) + 0.5 * ramp


def _batches():
    return [_images(1, 1), _images(5, 2)]


def test_tta_is_the_mean_of_the_image_and_its_mirror(classifier):
    engine = TorchEngine(ClassProbabilities(classifier))
    x = _images(4, 3)
    plain, mirrored = engine(x), engine(x.flip(-1))
    assert (plain - mirrored).abs().max() > 1e-3  # random weights are not mirror-symmetric: the flip matters
    tta = with_tta(engine, True)
    assert isinstance(tta, FlipTTA) and tta.name == "torch" and applies_tta(tta) and not applies_tta(engine)
    assert torch.allclose(tta(x), (plain + mirrored) / 2, atol=1e-7)
    assert with_tta(engine, False) is engine


def test_both_engines_agree_with_tta_applied_at_run_time_or_baked_in(classifier, tmp_path):
    batches = _batches()
    plain = export_classifier(classifier, tmp_path / "plain.onnx", batches, classifier_metadata(classifier, None))
    baked = export_classifier(classifier, tmp_path / "tta.onnx", batches,
                              classifier_metadata(classifier, None, tta=True), tta=True)
    assert plain.to_json()["tta"] == "none" and baked.to_json()["tta"] == "hflip" and baked.max_prob_diff < 1e-4
    x = _images(3, 4)
    ref = FlipTTA(TorchEngine(ClassProbabilities(classifier)))(x)

    runtime = with_tta(OnnxEngine(tmp_path / "plain.onnx"), True)
    assert isinstance(runtime, FlipTTA) and runtime.name == "onnx"
    assert (runtime(x) - ref).abs().max() < 1e-4

    graph = OnnxEngine(tmp_path / "tta.onnx")
    assert graph.metadata[META_PREFIX + "tta"] == "hflip" and applies_tta(graph)
    assert with_tta(graph, True) is graph  # not wrapped again: the graph already flips, a second pass is waste
    assert (graph(x) - ref).abs().max() < 1e-4
    assert (OnnxEngine(tmp_path / "plain.onnx")(x) - ref).abs().max() > 1e-4  # the baked graph really differs


@pytest.fixture(scope="module")
def image_run(tiles, tmp_path_factory):  # noqa: F811
    from hardsight import TrainConfig, train

    run = tmp_path_factory.mktemp("tta") / "run"
    train(TrainConfig(task="image", model="compact", data=str(tiles), out=str(run), epochs=1, image_size=32, batch_size=8,
                      split=(0.6, 0.2, 0.2)), progress=False)
    return run


def test_cli_predict_evaluate_and_export_with_tta(image_run, tiles):  # noqa: F811
    from hardsight.data.io import load_image
    from hardsight.engine.image_predictor import ImagePredictor

    files = sorted(str(f) for f in (tiles / "red").glob("*.png"))[:4]
    out = json.loads(run_cli("predict", image_run, *files, "--tta", "--engine", "torch", "--json").stdout)
    plain = ImagePredictor(image_run, engine="torch")
    assert not plain.tta
    x = torch.stack([plain.prepare(f, lambda p: load_image(p, "RGB"))[0] for f in files]).float() / 255.0
    expected = ((plain.forward(x) + plain.forward(x.flip(-1))) / 2).numpy()
    assert abs(expected - plain.forward(x).numpy()).max() > 1e-4  # so an ignored --tta would fail below
    for row, p in zip(out, expected):
        assert max(abs(row["probabilities"][c] - float(v)) for c, v in zip(plain.classes, p)) < 1e-5

    ev = json.loads(run_cli("evaluate", image_run, tiles, "--tta", "--json").stdout)
    assert ev["tta"] == "hflip" and ev["n"] == 42
    assert json.loads(run_cli("evaluate", image_run, tiles, "--json").stdout)["tta"] == "none"

    result = json.loads(run_cli("export", image_run, "--tta", "--json").stdout)
    assert result["tta"] == "hflip" and result["max_prob_diff"] < 1e-4
    asked = ImagePredictor(image_run, engine="onnx", tta=True)
    assert asked.tta and isinstance(asked.forward, OnnxEngine)  # the graph flips; the runtime does not again
    unasked = ImagePredictor(image_run, engine="onnx")
    assert unasked.tta  # reported: the baked graph gives TTA results without --tta
    onnx_out = [r.probabilities for r in unasked.predict(files)]
    assert max(abs(a[c] - b["probabilities"][c]) for a, b in zip(onnx_out, out) for c in a) < 1e-4


@pytest.mark.parametrize("command", ["predict", "evaluate", "export"])
def test_tta_on_a_text_run_is_a_clear_error(trained_run, captchas, command):
    args = {"predict": [str(next(captchas.glob("*.png")))], "evaluate": [captchas], "export": []}[command]
    proc = run_cli(command, trained_run, *args, "--tta", check=False)
    assert proc.returncode == 2 and "--tta" in proc.stderr and "image classifiers" in proc.stderr
    assert "Traceback" not in proc.stderr


def test_serve_tta_needs_an_image_run(trained_run):
    from hardsight.errors import ConfigError
    from hardsight.serve.handlers import check_runs
    from hardsight.serve.settings import ServeSettings

    with pytest.raises(ConfigError, match="image classifiers"):
        check_runs(ServeSettings(runs=(trained_run,), tta=True))
