"""`--shard i/n`: split a long preprocessing job over the tasks of a cluster array job.

Shards are 0-based, like SLURM_ARRAY_TASK_ID from 0: shard i of n takes items i, i+n, i+2n, ... of the job's
sorted item list (round-robin, so every shard gets a similar mix of classes). The n shards together cover
every item exactly once, and each writes its own manifest, so they can share one OUT folder.
"""

from __future__ import annotations

import contextlib
import os
import re
from pathlib import Path
from typing import Iterator, Sequence, TypeVar

from filelock import FileLock

from hardsight.errors import ConfigError

T = TypeVar("T")
Shard = tuple[int, int]  # (index from 0, count)


def parse_shard(text: str | None) -> Shard | None:
    """`i/n` (0 <= i < n), `auto` (from SLURM's array variables), or None for the whole job."""
    if text is None or text.strip() in ("", "0/1"):
        return None
    text = text.strip()
    if text == "auto":
        return _from_slurm()
    m = re.fullmatch(r"(\d+)\s*/\s*(\d+)", text)
    if not m:
        raise ConfigError(f"--shard {text!r}: expected i/n with 0 <= i < n (e.g. 0/4 ... 3/4, 0-based), or auto")
    return check_shard((int(m.group(1)), int(m.group(2))))


def check_shard(shard: Shard | None) -> Shard | None:
    """The shard itself, after checking 0 <= i < n; (0, 1) means the whole job."""
    if shard is None:
        return None
    i, n = shard
    if n < 1:
        raise ConfigError(f"--shard {i}/{n}: the number of shards must be at least 1")
    if not 0 <= i < n:
        hint = f"; shards are 0-based, so the last of {n} is {n - 1}/{n}" if i == n else ""
        raise ConfigError(f"--shard {i}/{n}: expected 0 <= i < {n}{hint}")
    return None if n == 1 else (i, n)


def _from_slurm() -> Shard | None:
    """SLURM_ARRAY_TASK_ID counted from SLURM_ARRAY_TASK_MIN (0 if unset), of SLURM_ARRAY_TASK_COUNT."""
    env = {k: os.environ.get(f"SLURM_ARRAY_TASK_{k}") for k in ("ID", "COUNT", "MIN")}
    if env["ID"] is None or env["COUNT"] is None:
        raise ConfigError("--shard auto: SLURM_ARRAY_TASK_ID and SLURM_ARRAY_TASK_COUNT are not set (not inside a "
                          "SLURM array job); pass --shard i/n instead")
    try:
        i, n, low = int(env["ID"]), int(env["COUNT"]), int(env["MIN"] or 0)
    except ValueError:
        raise ConfigError(f"--shard auto: SLURM array variables are not integers: {env}") from None
    # shards cover a contiguous 0..n-1 range: `--array=0-7` (or 1-8), not a stepped or sparse list
    return check_shard((i - low, n))


def take(items: Sequence[T], shard: Shard | None) -> list[T]:
    """Shard i of n: items i, i+n, i+2n, ... (all of them when `shard` is None)."""
    if shard is None:
        return list(items)
    i, n = shard
    return list(items[i::n])


def manifest_path(out: Path, stem: str, shard: Shard | None) -> Path:
    """Where a job appends what it finished: OUT/<stem>.csv, or OUT/<stem>.shard-i-of-n.csv (0-based) for a shard."""
    return out / (f"{stem}.csv" if shard is None else f"{stem}.shard-{shard[0]}-of-{shard[1]}.csv")


def manifests(out: Path, stem: str) -> list[Path]:
    """Every manifest of a job in OUT that exists: the whole job's, then each shard's (of any shard count)."""
    return [p for p in [out / f"{stem}.csv", *sorted(out.glob(f"{stem}.shard-*-of-*.csv"))] if p.is_file()]


def complete_lines(path: Path) -> str:
    """A manifest's text up to its last newline: another shard may be halfway through appending a row."""
    text = path.read_text(encoding="utf-8")
    return text if text.endswith("\n") else text[: text.rfind("\n") + 1]


def open_for_append(path: Path):
    """A job's own manifest, opened to append rows after its last complete line.

    A row cut off by an interrupt is dropped first (its file is redone), so the next row never glues onto it.
    Only this job (or shard) appends to `path`, so no one else is halfway through writing that line."""
    if path.is_file():
        data = path.read_bytes()
        keep = data if data.endswith(b"\n") else data[: data.rfind(b"\n") + 1]
        if len(keep) != len(data):
            with path.open("r+b") as fh:
                fh.truncate(len(keep))
    return path.open("a", newline="", encoding="utf-8")


@contextlib.contextmanager
def locked(path: Path) -> Iterator[None]:
    """Hold an exclusive lock on `path` (created, with its folder, if missing) between processes.

    filelock uses flock where it exists, Windows' own locks there, and a lock file where the file system lacks flock."""
    with FileLock(path):
        yield
