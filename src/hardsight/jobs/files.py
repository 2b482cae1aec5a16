"""Files that appear under their real name only once complete, so a reader or a resumed job never takes half a one."""

from __future__ import annotations

import contextlib
import os
import zlib
from pathlib import Path
from typing import Iterator


def cache_root() -> Path:
    """Where hardsight keeps what it builds once and reuses: disk caches, file digests, unpacked shipped runs."""
    return Path(os.environ.get("HARDSIGHT_CACHE") or Path.home() / ".cache" / "hardsight")


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
