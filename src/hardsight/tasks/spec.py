"""TaskSpec: everything the pipeline asks of a task kind, so no stage branches on the task's name.

A stage (training, evaluation, export, predict, serve) looks the run's task up in `TASKS` and calls the spec;
adding a kind means one file in `tasks/` with its LightningModule and a TaskSpec subclass, one row in TASKS, and
its defaults in config.py. How the kind builds its data and module is code in its file (it depends only on data
and model code); what it does in a later stage is named by import path ("module:function") and imported on first
use, as entry points are: the stages depend on the table, never the table on the stages, so there is no circle.
"""

from __future__ import annotations

import importlib
from pathlib import Path
from typing import Any, ClassVar, Sequence


class TaskSpec:
    """One task kind. Subclasses set the class attributes and implement `assemble`."""

    name: ClassVar[str]
    module: ClassVar[type]  # the LightningModule that checkpoints of this kind hold
    objective: ClassVar[str]  # what `val/objective` measures, in words (reports, `hardsight tune`)
    # the stages' code for this kind, as "module:function"
    finisher: ClassVar[str]  # (run, data, minutes, stopped_by, epochs) -> test metrics; writes the report
    # (run, data, batch_size, engine, threads, tta, checkpoints) -> one evaluation of a labelled set per checkpoint
    evaluator: ClassVar[str]
    exporter: ClassVar[str]  # (run, module, checkpoint, samples, opset, tolerance, tta) -> ExportResult
    predictor_class: ClassVar[str]  # the Predictor subclass that reads files with a run of this kind

    def assemble(self, cfg, saved_split: dict | None = None, saved_labels: dict | None = None, preprocess=None,
                 prepared=None) -> tuple[Any, dict, Any, Any]:
        """(prepared data, labels.json content, LightningModule, LightningDataModule) for `cfg`."""
        raise NotImplementedError

    def prepare_shared(self, cfg):
        """Data read and split once that several runs of `cfg`'s data can train on (`prepared` of assemble), or
        None where each run reads its own (`hardsight tune` shares it between trials)."""
        return None

    def finish(self, run, data, minutes: float, stopped_by: str, epochs: int):
        """Score the best checkpoint on the test split; write report.md, plots and test_metrics.json."""
        return _named(self.finisher)(run, data, minutes, stopped_by, epochs)

    def evaluate(self, run: str | Path, data: str | Path, batch_size: int, engine: str, threads: int | None,
                 tta: bool, checkpoints: Sequence[str] = ("best",)) -> list:
        """Score a run on a labelled folder or CSV (`hardsight evaluate`), once per checkpoint (best, last, epoch-N,
        a .ckpt path), reading the images once."""
        return _named(self.evaluator)(run, data, batch_size, engine, threads, tta, checkpoints)

    def export(self, run, module, checkpoint: str, samples: int, opset: int, tolerance: float, tta: bool):
        """Write RUN/model.onnx from `module` (loaded from `checkpoint`), checked against PyTorch."""
        return _named(self.exporter)(run, module, checkpoint, samples, opset, tolerance, tta)

    def predictor(self) -> type:
        return _named(self.predictor_class)


def _named(path: str):
    """The object at "package.module:attribute"."""
    module, _, attribute = path.partition(":")
    return getattr(importlib.import_module(module), attribute)
