"""Run folders that ship inside the package, opened by name wherever a run folder is taken (`hardsight evaluate
general DATA`, predict, export, serve, `train text --weights general`).

The installed files stay read-only: on first use a shipped run is copied into a folder of its own under
$HARDSIGHT_CACHE (default ~/.cache/hardsight), named by its checkpoint's digest, and that copy is the run folder that
evaluate and export write beside. A folder of the same name in the working directory wins over the shipped run.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import zipfile
from importlib import resources
from pathlib import Path

import yaml

from hardsight.errors import RunError
from hardsight.jobs.files import cache_root

SHIPPED = {"general": "the general text reader: a CRNN trained on a broad seeded family of synthetic styles over "
                      "0-9a-zA-Z (benchmarks/general_reader.py --train rebuilds it)"}
CHECKPOINT = Path("checkpoints") / "best.ckpt"


def packaged(name: str) -> Path:
    """The installed folder of shipped run `name`."""
    return Path(str(resources.files("hardsight.runs") / "shipped" / name))


def resolve(path: str | Path) -> Path:
    """`path` itself, or for the name of a shipped run with no such folder here, its unpacked copy."""
    name = str(path)
    if name not in SHIPPED or Path(path).exists():
        return Path(path)
    source = packaged(name)
    try:
        digest = hashlib.sha256((source / CHECKPOINT).read_bytes()).hexdigest()[:12]
    except OSError as e:
        raise RunError(f"{name}: the shipped run's weights are missing from this installation ({e.strerror}: "
                       f"{source / CHECKPOINT}); reinstall hardsight") from None
    copy = cache_root() / "shipped" / f"{name}-{digest}"
    if not (copy / CHECKPOINT).is_file():
        partial = copy.with_name(f".{copy.name}-{os.getpid()}.partial")
        shutil.rmtree(partial, ignore_errors=True)
        try:
            shutil.copytree(source, partial)
            os.replace(partial, copy)  # whole or not at all; another process may have won the race
        except OSError as e:
            shutil.rmtree(partial, ignore_errors=True)
            if not (copy / CHECKPOINT).is_file():
                raise RunError(f"{name}: cannot unpack the shipped run into {copy.parent} ({e.strerror}); set "
                               "HARDSIGHT_CACHE to a folder you can write") from None
    return copy


def reader_fits(name: str, model: str | None, height: int | None, model_args: dict | None) -> str | None:
    """Why a new text run cannot start from shipped reader `name` by default, or None when it can: its weights are
    missing or not a checkpoint, or the settings given ask for another network (model, height, shape)."""
    source = packaged(name)
    if not zipfile.is_zipfile(source / CHECKPOINT):  # torch checkpoints are zip archives: a truncated one is not
        return f"the shipped {name} reader's weights are missing or damaged in this installation"
    try:
        saved = yaml.safe_load((source / "config.yaml").read_text())
        reads = json.loads((source / "labels.json").read_text())["input"]["height"]
    except (OSError, ValueError, KeyError, TypeError, yaml.YAMLError) as e:
        return f"the shipped {name} reader's settings cannot be read ({e})"
    if model not in (None, saved["model"]):
        return f"--model {model}: the {name} reader is a {saved['model']}"
    if height not in (None, reads):
        return f"--height {height}: the {name} reader reads {reads}-px images"
    if model_args:
        return f"--model-arg {model_args}: the {name} reader has a shape of its own"
    return None
