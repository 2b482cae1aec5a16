"""hardsight: train, evaluate and serve recognisers for images that are hard on purpose.

The verbs live in modules named by their noun (`training`, `evaluation`) so that `hardsight.train` and
`hardsight.evaluate` stay the functions, never shadowed by a submodule of the same name.
"""

__version__ = "0.1.0"

from hardsight.config import InputSpec, TrainConfig, load_config  # noqa: E402
from hardsight.errors import ConfigError, DataError, HardsightError, RunError  # noqa: E402


def __getattr__(name: str):
    """Heavy parts (torch, Lightning) load on first use, so `hardsight --help` stays instant."""
    if name == "train":
        from hardsight.training import train

        return train
    if name == "Predictor":
        from hardsight.predict import Predictor

        return Predictor
    if name == "evaluate":
        from hardsight.evaluation import evaluate

        return evaluate
    if name == "inspect_dataset":
        from hardsight.data.inspect import inspect_dataset

        return inspect_dataset
    if name == "solve":
        from hardsight.grid import solve

        return solve
    if name == "balance":
        from hardsight.data.balance import balance

        return balance
    if name == "tune":
        from hardsight.tuning import tune

        return tune
    raise AttributeError(f"module 'hardsight' has no attribute {name!r}")


__all__ = ["ConfigError", "DataError", "HardsightError", "InputSpec", "Predictor", "RunError", "TrainConfig",
           "balance", "evaluate", "inspect_dataset", "load_config", "solve", "train", "tune"]
