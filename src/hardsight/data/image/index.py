"""Content digests of image files from their bytes, cached, so a large folder is indexed once.

Byte-identical files (the same tile filed under two classes) are one picture: found from a fast hash of the file
while listing, without decoding anything. Pictures equal only after decoding (a re-encoded copy) are merged by the
in-RAM cache alone, which decodes every file anyway. The digests of a listing are kept under
$HARDSIGHT_CACHE/index/, keyed by each file's path, size and modification time: a changed file is hashed again.
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

from hardsight.data.io import parallel_map
from hardsight.jobs.files import atomic_write, cache_folder, cache_root

READ = 1 << 20  # bytes hashed per read


def file_digest(path: Path) -> str:
    """blake2b (128 bits) of the file's bytes: hashlib releases the GIL, so threads hash files side by side."""
    h = hashlib.blake2b(digest_size=16)
    with open(path, "rb") as f:
        while chunk := f.read(READ):
            h.update(chunk)
    return h.hexdigest()


def file_digests(paths: list[Path], workers: int = 8) -> list[str | None]:
    """The digest of each file (None for one that cannot be read), from the cached index where it is current."""
    if not paths:
        return []
    index_file = cache_root() / "index" / (hashlib.sha1(str(Path(paths[0]).resolve().parent.parent)
                                                        .encode()).hexdigest()[:20] + ".json")
    try:
        known = json.loads(index_file.read_text())
    except (OSError, ValueError):
        known = {}

    def digest(path: Path) -> tuple[str, list | None]:
        key = str(path)
        try:
            st = os.stat(path)
        except OSError:
            return key, None
        old = known.get(key)
        if old and old[0] == st.st_size and old[1] == st.st_mtime_ns:
            return key, old
        try:
            return key, [st.st_size, st.st_mtime_ns, file_digest(path)]
        except OSError:
            return key, None

    found = parallel_map(digest, list(paths), workers, progress="indexing files")
    fresh = {k: v for k, v in found if v is not None}
    if fresh != {k: known.get(k) for k in fresh}:
        cache_folder(index_file.parent.name)
        with atomic_write(index_file) as tmp:
            tmp.write_text(json.dumps({**known, **fresh}))
    return [v[2] if v else None for _, v in found]
