"""Models by name: one registry, entrypoints register themselves on import (as in timm)."""

from __future__ import annotations

import difflib
import re
from typing import Any, Callable

from torch import nn

from hardsight.errors import ConfigError

MODELS: dict[str, Callable[..., nn.Module]] = {}
_TASK_OF: dict[str, str] = {}


def register(task: str) -> Callable[[Callable[..., nn.Module]], Callable[..., nn.Module]]:
    """File a model constructor under its function name, for one task kind."""

    def deco(fn: Callable[..., nn.Module]) -> Callable[..., nn.Module]:
        if fn.__name__ in MODELS:
            raise ValueError(f"model {fn.__name__!r} registered twice")
        MODELS[fn.__name__] = fn
        _TASK_OF[fn.__name__] = task
        return fn

    return deco


def build_model(name: str, task: str, *, model_args: dict[str, Any] | None = None, **kwargs) -> nn.Module:
    known = list_models(task)
    if name not in known:
        near = difflib.get_close_matches(name, known)
        raise ConfigError(f"unknown {task} model {name!r}; known: {known}" + (f"; did you mean {near[0]!r}?" if near else ""))
    return build_with_args(name, MODELS[name], model_args, **kwargs)


def build_with_args(name: str, build: Callable[..., nn.Module], model_args: dict[str, Any] | None,
                    **kwargs) -> nn.Module:
    """`build(**kwargs, **model_args)`; an argument the model does not take is a ConfigError naming it."""
    model_args = model_args or {}
    try:
        return build(**{**kwargs, **model_args})
    except TypeError as e:
        bad = re.search(r"unexpected keyword argument '(\w+)'", str(e))
        if not model_args or not bad or bad.group(1) not in model_args:
            raise
        raise ConfigError(f"model {name!r} does not take model_args.{bad.group(1)} "
                          f"(given: {sorted(model_args)})") from None


def list_models(task: str | None = None) -> list[str]:
    return sorted(n for n in MODELS if task is None or _TASK_OF[n] == task)
