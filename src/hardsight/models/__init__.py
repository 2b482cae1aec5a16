"""Networks only (nn.Module); importing this package registers every family."""

from hardsight.models import image_classifiers, text_readers  # noqa: F401  (registers)
from hardsight.models.registry import build_model, list_models, register

__all__ = ["build_model", "list_models", "register"]
