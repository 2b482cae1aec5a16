"""Task kinds: TASKS maps the kind named in config.yaml to its TaskSpec (LightningModule and stage hooks)."""

from __future__ import annotations

from pathlib import Path

from hardsight.errors import RunError
from hardsight.tasks.image import ImageClassifier, ImageTask
from hardsight.tasks.spec import TaskSpec
from hardsight.tasks.text import TextReader, TextTask

TASKS: dict[str, TaskSpec] = {"text": TextTask(), "image": ImageTask()}


def task_of(name: str, where: str | Path = "") -> TaskSpec:
    """The spec of task `name`, or a RunError naming `where` (a run folder) and the kinds this version knows."""
    if name not in TASKS:
        raise RunError(f"{where or 'config'}: task {name!r} is not known to this version of hardsight "
                       f"(it knows: {', '.join(TASKS)})")
    return TASKS[name]


def load_module(run, which: str = "best"):
    """The trained LightningModule of a run folder (its task's module class), on CPU, in eval mode."""
    from hardsight.runs.folder import refusing_pickled_code

    spec = task_of(run.load_config().task, run.path)
    ckpt = run.checkpoint(which)
    with refusing_pickled_code(ckpt):
        try:  # a run folder is user input: weights_only, whatever torch's default or TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD
            module = spec.module.load_from_checkpoint(ckpt, map_location="cpu", weights_only=True)
        except (RuntimeError, KeyError, EOFError) as e:
            raise RunError(f"{ckpt}: cannot load checkpoint ({e})") from None
    return module.eval()


__all__ = ["TASKS", "ImageClassifier", "ImageTask", "TaskSpec", "TextReader", "TextTask", "load_module", "task_of"]
