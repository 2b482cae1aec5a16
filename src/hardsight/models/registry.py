"""Models by name: one registry, entrypoints register themselves on import (as in timm)."""

from __future__ import annotations

import difflib
from typing import Callable

from torch import nn

from hardsight.errors import ConfigError

_MODELS: dict[str, Callable[..., nn.Module]] = {}
_TASK_OF: dict[str, str] = {}


def register(task: str) -> Callable[[Callable[..., nn.Module]], Callable[..., nn.Module]]:
    """File a model constructor under its function name, for one task kind."""

    def deco(fn: Callable[..., nn.Module]) -> Callable[..., nn.Module]:
        if fn.__name__ in _MODELS:
            raise ValueError(f"model {fn.__name__!r} registered twice")
        _MODELS[fn.__name__] = fn
        _TASK_OF[fn.__name__] = task
        return fn

    return deco


def build_model(name: str, task: str, **kwargs) -> nn.Module:
    known = list_models(task)
    if name not in known:
        near = difflib.get_close_matches(name, known)
        raise ConfigError(f"unknown {task} model {name!r}; known: {known}" + (f"; did you mean {near[0]!r}?" if near else ""))
    return _MODELS[name](**kwargs)


def list_models(task: str | None = None) -> list[str]:
    return sorted(n for n in _MODELS if task is None or _TASK_OF[n] == task)
