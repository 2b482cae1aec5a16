"""LightningModules, one per task kind; TASKS maps the kind named in config.yaml to its module."""

from hardsight.tasks.text import TextReader

TASKS = {"text": TextReader}

__all__ = ["TASKS", "TextReader"]
