"""ONNX export reads like PyTorch (dynamic batch, and width for crnn); the two engines give the same answers."""

from __future__ import annotations

import json
import shutil

import numpy as np
import onnx
import onnxruntime as ort
import pytest
import torch
from typer.testing import CliRunner

from hardsight.cli import app
from hardsight.config import InputSpec
from hardsight.engine.runtimes import META_PREFIX
from hardsight.errors import RunError
from hardsight.engine.exporter import ExportError, check_parity, export_classifier, export_reader, write_graph
from hardsight.models import list_models
from hardsight.engine.predictor import Predictor
from hardsight.tasks import load_module
from hardsight.runs.folder import RunFolder
from hardsight.tasks.image import ImageClassifier
from hardsight.tasks.text import TextReader
from tests.serve.runs import exported_run

CHARSET = "2345678abcdefghkmnprwxyz"


@pytest.fixture(scope="module")
def exported(trained_run, tmp_path_factory):
    return exported_run(trained_run, tmp_path_factory)


def test_export_writes_a_checked_self_describing_graph(exported):
    run, result = exported
    assert result["path"] == str(run / "model.onnx") and (run / "model.onnx").is_file()
    assert not list(run.glob("model.onnx.*"))  # no partial or rejected leftovers
    assert result["max_prob_diff"] < 1e-4
    assert result["dynamic_axes"] == ["batch", "width"]
    shapes = result["shapes_checked"]
    assert {s[0] for s in shapes} >= {1} and max(s[0] for s in shapes) > 1 and len({s[3] for s in shapes}) >= 2
    assert "split.json" in result["sample_source"]  # checked on the run's own images, not noise
    meta = {p.key: p.value for p in onnx.load(str(run / "model.onnx")).metadata_props}
    labels = json.loads((run / "labels.json").read_text())
    assert meta[META_PREFIX + "charset"] == labels["charset"]
    assert json.loads(meta[META_PREFIX + "input"])["height"] == labels["input"]["height"]


def test_graph_takes_any_batch_and_width(exported):
    run, _ = exported
    module = load_module(RunFolder(run))
    session = ort.InferenceSession(str(run / "model.onnx"), providers=["CPUExecutionProvider"])
    h, steps = module.spec.height, []
    for batch, width in [(1, 48), (3, 64), (7, 160)]:
        x = torch.rand(batch, 1, h, width, generator=torch.Generator().manual_seed(width))
        out = session.run(None, {"images": x.numpy()})[0]
        with torch.inference_mode():
            ref = module(x).numpy()
        assert out.shape == ref.shape and out.shape[0] == batch and out.shape[2] == len(module.codec.charset) + 1
        assert np.abs(np.exp(out) - np.exp(ref)).max() < 1e-4
        steps.append(out.shape[1])
    assert steps == sorted(set(steps))  # wider images, more CTC steps


@pytest.mark.parametrize("model", list_models("text"))
def test_every_registered_reader_exports_with_same_decoded_text(tmp_path, model):
    """Random weights read non-empty strings, so the decoded comparison is not vacuous (GRU / LSTM + CTC, cnn).

    Fails if any registered reader cannot be exported by either exporter on the installed torch."""
    torch.manual_seed(0)
    keep = model.startswith("crnn")
    spec = InputSpec(32, 128 if keep else 96, keep_aspect=keep)
    module = TextReader(model, CHARSET, vars(spec), max_length=5).eval()
    gen = torch.Generator().manual_seed(1)
    batches = [torch.rand(1, 1, 32, 96, generator=gen), torch.rand(6, 1, 32, 96, generator=gen)]
    if keep:
        batches.append(torch.rand(4, 1, 32, 128, generator=gen))
    result = export_reader(module, tmp_path / "model.onnx", batches)
    assert result.max_prob_diff < 1e-4
    assert result.exporter in ("dynamo", "torchscript") and (result.exporter == "dynamo") == (not result.exporter_note)
    assert result.dynamic_axes == (["batch", "width"] if keep else ["batch"])
    with torch.inference_mode():
        texts = [t for t, _ in module.decode(module(batches[1]))]
    assert any(texts), "random weights should read something"


@pytest.mark.parametrize("model", list_models("image"))
def test_every_registered_classifier_exports_with_same_top_class(tmp_path, model):
    torch.manual_seed(0)
    module = ImageClassifier(model, ["a", "b", "c"], image_size=32).eval()
    gen = torch.Generator().manual_seed(1)
    batches = [torch.rand(1, 3, 32, 32, generator=gen), torch.rand(5, 3, 32, 32, generator=gen)]
    result = export_classifier(module, tmp_path / "model.onnx", batches)
    assert result.max_prob_diff < 1e-4 and result.dynamic_axes == ["batch"]
    session = ort.InferenceSession(str(tmp_path / "model.onnx"), providers=["CPUExecutionProvider"])
    x = torch.rand(3, 3, 32, 32, generator=gen)
    with torch.inference_mode():
        ref = module.probabilities(module(x)).numpy()
    assert np.abs(session.run(None, {"images": x.numpy()})[0] - ref).max() < 1e-4


def test_a_model_neither_exporter_can_write_is_an_export_error(tmp_path):
    class Unexportable(torch.nn.Module):
        def forward(self, x):  # a layer that no tracer gets through, as an unsupported op would behave
            raise RuntimeError("unsupported layer")

    with pytest.raises(ExportError, match="both exporters"):
        write_graph(Unexportable(), tmp_path / "m.onnx", torch.rand(2, 1, 8, 8), False, 18, "out")


def test_a_graph_that_disagrees_is_refused(tmp_path):
    torch.manual_seed(0)
    spec = InputSpec(32, 96, keep_aspect=False)
    module = TextReader("cnn", CHARSET, vars(spec), max_length=5).eval()
    batches = [torch.rand(2, 1, 32, 96)]
    with pytest.raises(ExportError, match="tolerance"):
        export_reader(module, tmp_path / "model.onnx", batches, tolerance=-1.0)
    assert not (tmp_path / "model.onnx").exists() and (tmp_path / "model.onnx.rejected").is_file()

    export_reader(module, tmp_path / "model.onnx", batches)
    with torch.no_grad():  # the checkpoint moves on; the old graph no longer reads like it
        for p in module.parameters():
            p.add_(0.5 * torch.randn_like(p))
    with pytest.raises(ExportError, match="max probability difference"):
        check_parity(module, tmp_path / "model.onnx", batches)


def test_engines_agree_on_every_image(exported, captchas):
    run, _ = exported
    files = sorted(captchas.glob("*.png"))
    torch_reads = Predictor(run, engine="torch").predict(files, batch_size=16)
    onnx_pred = Predictor(run, engine="onnx", threads=1)
    onnx_reads = onnx_pred.predict(files, batch_size=16)
    assert onnx_pred.engine == "onnx"
    assert [r.text for r in onnx_reads] == [r.text for r in torch_reads]
    assert max(abs(a.confidence - b.confidence) for a, b in zip(onnx_reads, torch_reads)) < 1e-4
    assert [r.to_json().keys() for r in onnx_reads] == [r.to_json().keys() for r in torch_reads]


def test_evaluate_and_cli_take_the_engine(exported, captchas):
    import hardsight

    run, _ = exported
    by_onnx = hardsight.evaluate(run, captchas, engine="onnx").metrics
    by_torch = hardsight.evaluate(run, captchas, engine="torch").metrics
    assert by_onnx == by_torch
    files = [str(f) for f in sorted(captchas.glob("*.png"))[:5]]
    outs = [json.loads(CliRunner().invoke(app, ["predict", str(run), *files, "--json", "--engine", e]).stdout)
            for e in ("onnx", "torch")]
    assert [r["text"] for r in outs[0]] == [r["text"] for r in outs[1]] and len(outs[0]) == 5


def test_auto_uses_onnx_only_when_it_matches_the_checkpoint(exported, tmp_path):
    run = tmp_path / "run"
    shutil.copytree(exported[0], run)
    assert Predictor(run).engine == "onnx"
    model = onnx.load(str(run / "model.onnx"))
    for p in model.metadata_props:
        if p.key == META_PREFIX + "checkpoint_sha256":
            p.value = "0" * 64  # as if the run had trained on after the export
    onnx.save(model, str(run / "model.onnx"))
    assert Predictor(run).engine == "torch"
    (run / "model.onnx").unlink()
    assert Predictor(run).engine == "torch"
    with pytest.raises(RunError, match="hardsight export"):
        Predictor(run, engine="onnx")
    result = CliRunner().invoke(app, ["predict", str(run), str(run), "--engine", "tensorrt"])
    assert result.exit_code == 2 and "unknown engine" in result.output
