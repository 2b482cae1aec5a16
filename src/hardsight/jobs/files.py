"""Files that appear under their real name only once complete, so a reader or a resumed job never takes half a one."""

from __future__ import annotations

import contextlib
import os
import tempfile
import zlib
from pathlib import Path
from typing import Iterator

from hardsight.errors import ConfigError


def cache_root() -> Path:
    """Where hardsight keeps what it builds once and reuses: disk caches, file digests, unpacked shipped runs."""
    return Path(os.environ.get("HARDSIGHT_CACHE") or Path.home() / ".cache" / "hardsight")


def cache_folder(name: str) -> Path:
    """`cache_root()/name`, made and checked writable: a cache that cannot be written is a setting to change, not
    a traceback half-way into building it."""
    root = cache_root()
    folder = root / name
    try:
        folder.mkdir(parents=True, exist_ok=True)
        tempfile.TemporaryFile(dir=folder).close()
    except OSError as e:
        where = (f"HARDSIGHT_CACHE={os.environ['HARDSIGHT_CACHE']}" if os.environ.get("HARDSIGHT_CACHE")
                 else f"the cache folder {root} (HARDSIGHT_CACHE unset)")
        raise ConfigError(f"{where}: cannot create or write {folder} ({e.strerror or e}); set HARDSIGHT_CACHE to a "
                          "folder you can write (e.g. HARDSIGHT_CACHE=$HOME/.cache/hardsight)") from None
    return folder


@contextlib.contextmanager
def atomic_write(target: Path) -> Iterator[Path]:
    """A temporary path beside `target` to write; moved onto `target` if the block succeeds, removed if it fails.

    The temporary name is short (a hash of the target's, and the process id, as workers share folders): the
    target's own name may already be at NAME_MAX. It ends in `.partial`, so a leftover one is recognisable.
    """
    target = Path(target)
    tmp = target.with_name(f".{zlib.crc32(target.name.encode()):08x}-{os.getpid()}.partial")
    try:
        yield tmp
        os.replace(tmp, target)
    finally:
        tmp.unlink(missing_ok=True)
