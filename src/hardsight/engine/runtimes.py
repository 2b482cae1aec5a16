"""Inference engines: a float batch (B, C, H, W) in [0, 1] -> the model's output tensor.

PyTorch runs the checkpoint; ONNX Runtime runs `model.onnx` written by `hardsight export`. Text readers give
log-probabilities (B, T, K+1) and both engines feed the same decoder (`TextDecoder`); classifiers give class
probabilities (B, C). The engines differ only in the forward pass.
"""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

import numpy as np
import torch

from hardsight.config import InputSpec
from hardsight.console import console
from hardsight.tasks.decoding import TextDecoder
from hardsight.errors import ConfigError, RunError
from hardsight.runs.folder import RunFolder
from hardsight.engine.tta import FlipTTA

ENGINES: tuple[str, ...] = ("auto", "onnx", "torch")
META_PREFIX = "hardsight."  # keys of the ONNX metadata that make model.onnx self-describing


class Engine(Protocol):
    name: str

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        """Images (B, C, H, W) in [0, 1] -> log-probabilities (B, T, K+1) or probabilities (B, C)."""
        ...


class TorchEngine:
    """The LightningModule of a checkpoint, in inference mode."""

    name = "torch"

    def __init__(self, module: torch.nn.Module):
        self.module = module.eval()

    @torch.inference_mode()
    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        return self.module(x)


class OnnxEngine:
    """An ONNX Runtime CPU session over `model.onnx`; `metadata` holds what export stored beside the graph."""

    name = "onnx"

    def __init__(self, path: Path, threads: int | None = None):
        import onnxruntime as ort

        opts = ort.SessionOptions()
        opts.intra_op_num_threads = threads or os.cpu_count() or 1
        opts.inter_op_num_threads = 1
        opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        # idle threads sleep rather than spin: on a few cores, spinning starves the threads that decode the
        # next images (and a server's event loop); measured on 2 cores, batch 1 is 2x faster, batch 64 the same
        opts.add_session_config_entry("session.intra_op.allow_spinning", "0")
        try:
            self.session = ort.InferenceSession(str(path), opts, providers=["CPUExecutionProvider"])
        except Exception as e:  # onnxruntime raises its own exception types (Fail, InvalidGraph, NoSuchFile)
            raise RunError(f"{path}: ONNX Runtime cannot load it ({str(e).strip()[:300]}); "
                           "write it again with `hardsight export RUN`") from None
        self.path = path
        self.input = self.session.get_inputs()[0].name
        self.metadata = dict(self.session.get_modelmeta().custom_metadata_map)

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        batch = np.ascontiguousarray(x.detach().cpu().numpy(), dtype=np.float32)
        return torch.from_numpy(self.session.run(None, {self.input: batch})[0])


class ClassProbabilities(torch.nn.Module):
    """An ImageClassifier whose output is probabilities (softmax, or sigmoid for multi-label): what the
    exported graph computes, so both engines hand the predictor the same thing."""

    def __init__(self, classifier: torch.nn.Module):
        super().__init__()
        self.classifier = classifier.eval()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.classifier.probabilities(self.classifier(x))


@dataclass(frozen=True)
class TextRuntime:
    """A loaded reader: input contract, engine and decoder (`read_tensors` calls it like a TextReader)."""

    spec: InputSpec
    engine: Engine
    decode: TextDecoder
    max_length: int = 0

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        return self.engine(x)


def file_sha256(path: Path) -> str:
    with open(path, "rb") as f:
        return hashlib.file_digest(f, "sha256").hexdigest()


def reader_metadata(module, checkpoint: Path | None) -> dict[str, str]:
    """What `model.onnx` needs to be read without the checkpoint: charset, input contract, decoding."""
    hp = module.hparams
    return _metadata({"task": "text", "model": hp.model, "charset": hp.charset, "max_length": str(hp.max_length),
                      "decoder": "ctc" if module.ctc else "positional", "beam_width": str(hp.beam_width),
                      "input": json.dumps({k: list(v) if isinstance(v, tuple) else v
                                           for k, v in vars(module.spec).items()}),
                      "output": "log_probs (batch, steps, classes); class 0 is the CTC blank or 'no character'"},
                     checkpoint)


def classifier_metadata(module, checkpoint: Path | None, tta: bool = False) -> dict[str, str]:
    """What `model.onnx` of an image classifier says of itself: classes, input size, output meaning, and whether
    the graph averages each image with its mirror (`tta`: "hflip" or "none"), so the runtime does not flip again."""
    hp = module.hparams
    size = int(hp.image_size)
    return _metadata({"task": "image", "model": hp.model, "classes": json.dumps(list(hp.classes)),
                      "multi_label": str(bool(hp.multi_label)).lower(),
                      "input": json.dumps({"height": size, "width": size, "channels": 3, "range": "[0, 1]",
                                           "normalised_inside": module.norm.statistics()}),
                      "output": "probabilities (batch, classes): " + ("sigmoid per class" if hp.multi_label
                                                                      else "softmax over classes")
                      + (", averaged with the horizontally flipped image" if tta else ""),
                      "tta": "hflip" if tta else "none"}, checkpoint)


def _metadata(meta: dict[str, str], checkpoint: Path | None) -> dict[str, str]:
    from hardsight import __version__

    meta["version"] = __version__
    if checkpoint is not None:  # lets `auto` tell a stale model.onnx from a current one
        meta["checkpoint"] = checkpoint.name
        meta["checkpoint_sha256"] = file_sha256(checkpoint)
    return {META_PREFIX + k: v for k, v in meta.items()}


def runtime_from_module(module) -> TextRuntime:
    """Wrap a trained TextReader so both engines share one decoder."""
    return TextRuntime(module.spec, TorchEngine(module), TextDecoder(module.codec.charset, module.ctc,
                                                                     int(module.hparams.beam_width)),
                       int(module.hparams.max_length))


def runtime_from_onnx(path: Path, threads: int | None = None) -> TextRuntime:
    """Read `model.onnx` on ONNX Runtime; everything else comes from the metadata export stored in it."""
    engine = OnnxEngine(path, threads)
    meta = {k[len(META_PREFIX):]: v for k, v in engine.metadata.items() if k.startswith(META_PREFIX)}
    missing = {"task", "charset", "input", "decoder"} - set(meta)
    if missing:
        raise RunError(f"{path}: not written by `hardsight export` (metadata lacks {sorted(missing)}); "
                       "export the run again")
    if meta["task"] != "text":
        raise RunError(f"{path}: holds a {meta['task']!r} model, not a text reader")
    spec = InputSpec(**{k: tuple(v) if isinstance(v, list) else v for k, v in json.loads(meta["input"]).items()})
    decoder = TextDecoder(meta["charset"], meta["decoder"] == "ctc", int(meta.get("beam_width", 1)))
    return TextRuntime(spec, engine, decoder, int(meta.get("max_length", 0)))


def onnx_is_current(run: RunFolder, checkpoint: str = "best") -> tuple[bool, str]:
    """Whether `model.onnx` was exported from the checkpoint the run would load now, and why not."""
    if not run.onnx.is_file():
        return False, f"{run.onnx} does not exist (write it with `hardsight export {run.path}`)"
    try:
        ckpt = run.checkpoint(checkpoint)
    except RunError:
        if checkpoint != "best":  # one asked for by name must exist; by default a run may hold model.onnx alone
            raise
        return True, "no checkpoint to compare with"
    import onnx

    try:
        meta = {p.key: p.value for p in onnx.load(str(run.onnx), load_external_data=False).metadata_props}
    except Exception as e:  # protobuf DecodeError and friends: a truncated or foreign file
        return False, f"{run.onnx} cannot be read ({type(e).__name__}); export again with `hardsight export {run.path}`"
    if meta.get(META_PREFIX + "checkpoint_sha256") != file_sha256(ckpt):
        again = f"hardsight export {run.path}" + (f" --checkpoint {checkpoint}" if checkpoint != "best" else "")
        return False, f"{run.onnx} was exported from another checkpoint than {ckpt} (export again with `{again}`)"
    return True, "exported from the current checkpoint"


def resolve_engine(run: RunFolder, engine: str = "auto", checkpoint: str = "best") -> str:
    """"onnx" or "torch" for `engine`; `auto` takes ONNX Runtime only when model.onnx matches the checkpoint."""
    if engine not in ENGINES:
        raise ConfigError(f"unknown engine {engine!r}; choose one of {', '.join(ENGINES)}")
    if engine == "torch":
        return "torch"
    if engine == "onnx" and not run.onnx.is_file():
        raise RunError(f"{run.path}: no model.onnx; write it with `hardsight export {run.path}` "
                       "or use --engine torch")
    current, why = onnx_is_current(run, checkpoint)
    if engine == "onnx" and not current:
        console.print(f"[yellow]warning: {why}[/yellow]")
    if engine == "auto" and not current:
        if run.onnx.is_file():
            console.print(f"[yellow]{why}; reading with PyTorch[/yellow]")
        return "torch"
    return "onnx"


def load_runtime(run: RunFolder, engine: str = "auto", checkpoint: str = "best",
                 threads: int | None = None) -> TextRuntime:
    """The run's reader on the chosen engine (see resolve_engine)."""
    if resolve_engine(run, engine, checkpoint) == "onnx":
        return runtime_from_onnx(run.onnx, threads)
    torch.set_num_threads(threads or os.cpu_count() or 1)
    from hardsight.tasks import load_module

    return runtime_from_module(load_module(run, checkpoint))


def load_classifier_engine(run: RunFolder, engine: str = "auto", checkpoint: str = "best",
                           threads: int | None = None, tta: bool = False) -> Engine:
    """The run's classifier as images -> probabilities (B, C), on the chosen engine (see resolve_engine);
    `tta` averages each image with its mirror (see with_tta)."""
    if resolve_engine(run, engine, checkpoint) == "onnx":
        onnx_engine = OnnxEngine(run.onnx, threads)
        held, own = onnx_engine.metadata.get(META_PREFIX + "task"), run.load_config().task
        if held != own:
            raise RunError(f"{run.onnx}: holds a {held or 'foreign'!r} model, not this {own} run's; "
                           f"export the run again with `hardsight export {run.path}`")
        return with_tta(onnx_engine, tta)
    torch.set_num_threads(threads or os.cpu_count() or 1)
    from hardsight.tasks import load_module

    return with_tta(TorchEngine(ClassProbabilities(load_module(run, checkpoint))), tta)


def applies_tta(engine: Engine) -> bool:
    """Whether `engine` averages each image with its mirror: wrapped in FlipTTA, or a graph exported with --tta."""
    return isinstance(engine, FlipTTA) or getattr(engine, "metadata", {}).get(META_PREFIX + "tta") == "hflip"


def with_tta(engine: Engine, tta: bool) -> Engine:
    """`engine` in FlipTTA when `tta` asks for it, unless it already flips (a graph exported with --tta)."""
    return FlipTTA(engine) if tta and not applies_tta(engine) else engine
