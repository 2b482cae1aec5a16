"""hardsight: train, evaluate and serve recognisers for images that are hard on purpose.

The verbs live in the pipeline's stages (`engine.trainer`, `engine.evaluator`, ...), so `hardsight.train` and
`hardsight.evaluate` are the functions, never shadowed by a submodule of the same name. The layout is in
docs/architecture.md.
"""

__version__ = "0.1.0"

from hardsight.config import InputSpec, TrainConfig, load_config  # noqa: E402
from hardsight.errors import ConfigError, DataError, HardsightError, RunError  # noqa: E402


# the public functions and classes that import torch or Lightning, and the module each lives in
_LAZY = {"train": "hardsight.engine.trainer", "Predictor": "hardsight.engine.predictor", "evaluate": "hardsight.engine.evaluator",
         "inspect_dataset": "hardsight.data.inspect", "solve": "hardsight.grid", "balance": "hardsight.data.balance",
         "tune": "hardsight.engine.tuner"}


def __getattr__(name: str):
    """Heavy parts (torch, Lightning) load on first use, so `hardsight --help` stays instant."""
    if name not in _LAZY:
        raise AttributeError(f"module 'hardsight' has no attribute {name!r}")
    import importlib

    return getattr(importlib.import_module(_LAZY[name]), name)


__all__ = ["ConfigError", "DataError", "HardsightError", "InputSpec", "Predictor", "RunError", "TrainConfig",
           "balance", "evaluate", "inspect_dataset", "load_config", "solve", "train", "tune"]
