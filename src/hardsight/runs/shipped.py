"""Run folders that ship inside the package, opened by name wherever a run folder is taken (`hardsight evaluate
general DATA`, predict, export, serve, `train text --weights general`).

The installed files stay read-only: on first use a shipped run is copied into a folder of its own under
$HARDSIGHT_CACHE (default ~/.cache/hardsight), named by its checkpoint's digest, and that copy is the run folder that
evaluate and export write beside. A folder of the same name in the working directory wins over the shipped run.
"""

from __future__ import annotations

import hashlib
import os
import shutil
from importlib import resources
from pathlib import Path

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
