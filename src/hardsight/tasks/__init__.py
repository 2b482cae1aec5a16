"""LightningModules, one per task kind; TASKS maps the kind named in config.yaml to its module."""

from hardsight.tasks.image import ImageClassifier
from hardsight.tasks.text import TextReader

TASKS = {"text": TextReader, "image": ImageClassifier}

__all__ = ["TASKS", "ImageClassifier", "TextReader"]
