"""Where an image run's decoded pictures live: in RAM, in a memory-mapped file on disk, or nowhere.

- `ram`: every picture decoded once at the input size and held (the fastest, while the set fits);
- `disk`: decoded once into a memory-mapped uint8 file (`DiskPictures`), built once and reused by every run and
  study condition with the same files, input size and preprocessing; the pages are the OS's, so several DDP ranks
  on one machine share one copy and each reads only the rows of its shard;
- `none`: each read decodes the file again (`FilePictures`), in the DataLoader's workers.

`auto` holds the set in RAM while its pictures fit a quarter of this machine's memory (shared by the processes of
a node), and builds the disk cache otherwise. Caches live under $HARDSIGHT_CACHE (default ~/.cache/hardsight),
never beside the data, whose folders stay read-only. A cache is keyed by its format version, input size,
preprocessing and the files' content digests: a different size or an older format gets a new cache, never a
silently reused one.
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from hardsight.data.io import UnreadableImage, load_image, parallel_map
from hardsight.errors import DataError
from hardsight.jobs.files import cache_folder, cache_root

if TYPE_CHECKING:
    import torch

CACHE_MODES = ("auto", "ram", "disk", "none")
CACHE_WORDS = {"ram": "in RAM", "disk": "in the disk cache", "none": "decoded on each read"}  # for summaries
FORMAT = 1  # of the disk cache's files: a change makes every older cache a miss
RAM_SHARE = 0.25  # of this machine's memory that `auto` lets a set's pictures take
CHUNK = 512  # pictures decoded between two progress marks of a disk build (an interrupted build resumes there)
NO_LANDMARKS = np.full((68, 2), np.nan, np.float32)


def machine_memory() -> int:
    """Bytes of physical memory (cgroup limits aside)."""
    return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")


def choose_mode(mode: str, count: int, size: int, processes: int = 1) -> str:
    """`ram`, `disk` or `none` for `count` pictures of size x size held by `processes` processes of a node."""
    if mode not in CACHE_MODES:
        raise DataError(f"cache {mode!r}: choose from {list(CACHE_MODES)}")
    if mode != "auto":
        return mode
    return "ram" if count * 3 * size * size * processes <= RAM_SHARE * machine_memory() else "disk"


def decode_picture(path: Path, size: int, preprocess=None) -> tuple[torch.Tensor, np.ndarray | None]:
    """The cached form of one file: uint8 (3, size, size) and, after a face stage, its landmarks in those pixels."""
    im = load_image(path, "RGB")
    return cached_form(preprocess(path, im) if preprocess is not None else im, size)


def to_cached_tensor(im, size: int) -> torch.Tensor:
    """Square uint8 tensor (3, size, size): the cached form training and prediction read."""
    from PIL import Image
    from torchvision.transforms.v2 import functional as TF

    return TF.pil_to_tensor(im.resize((size, size), Image.BILINEAR))


def cached_form(im, size: int) -> tuple[torch.Tensor, np.ndarray | None]:
    """A decoded (and preprocessed) PIL image at the input size, with its landmarks moved to those pixels."""
    lm = im.info.get("landmarks")  # set by a face stage, in the preprocessed image's pixels
    if lm is not None:
        lm = ((lm + 0.5) * (size / im.width, size / im.height) - 0.5).astype(np.float32)
    return to_cached_tensor(im, size), lm


def preprocess_key(preprocess) -> str:
    """What a preprocessing step does, for a cache key; a step that cannot say cannot be cached on disk."""
    if preprocess is None:
        return "none"
    key = getattr(preprocess, "cache_key", None)
    if key is None:
        raise DataError(f"the preprocessing step {type(preprocess).__name__} has no cache_key: use cache ram or none")
    return key()


class FilePictures:
    """Pictures decoded from their files on every read (`cache: none`)."""

    def __init__(self, size: int, preprocess=None):
        self.size, self.preprocess = size, preprocess

    def read(self, path: Path) -> tuple[torch.Tensor, np.ndarray | None]:
        try:
            return decode_picture(path, self.size, self.preprocess)
        except UnreadableImage as e:
            raise DataError(f"{path}: {e} (it was readable when the set was listed)") from None


class DiskPictures:
    """A memory-mapped uint8 array (N, 3, S, S) of decoded pictures, with their landmarks, under one folder.

    Pickled into DataLoader workers or DDP ranks as its folder only: each process maps the file itself.
    """

    def __init__(self, folder: Path):
        self.folder = Path(folder)
        meta = json.loads((self.folder / "meta.json").read_text())
        self.size, self.count, self.bad = meta["size"], meta["count"], dict(meta["bad"])
        self._array = self._landmarks = None

    def __getstate__(self) -> dict[str, Any]:
        return {**self.__dict__, "_array": None, "_landmarks": None}

    def array(self) -> np.memmap:
        if self._array is None:
            self._array = np.memmap(self.folder / "pictures.u8", np.uint8, "r",
                                    shape=(self.count, 3, self.size, self.size))
            self._landmarks = np.memmap(self.folder / "landmarks.f32", np.float32, "r", shape=(self.count, 68, 2))
        return self._array

    def read(self, row: int) -> tuple[torch.Tensor, np.ndarray | None]:
        import torch

        picture = torch.from_numpy(np.array(self.array()[row]))  # a copy: the map stays read-only
        lm = np.array(self._landmarks[row])
        return picture, None if np.isnan(lm).all() else lm

    @classmethod
    def build(cls, files: list[Path], digests: list[str], size: int, preprocess=None, workers: int = 4,
              progress: bool = True) -> DiskPictures:
        """The cache of `files` (in this order) at `size`: opened when built before, built (or resumed) otherwise.
        Files that cannot be decoded are recorded in `bad` (row -> why), their rows left black."""
        from filelock import FileLock

        key = hashlib.sha1(json.dumps([FORMAT, size, preprocess_key(preprocess), digests]).encode()).hexdigest()[:20]
        folder = cache_root() / "pictures" / key
        if (folder / "meta.json").is_file():  # built before: reading it needs no write access
            return cls(folder)
        cache_folder("pictures")
        with FileLock(str(folder) + ".lock"):  # DDP ranks of one node: one builds, the others wait and open it
            if (folder / "meta.json").is_file():
                return cls(folder)
            return cls._build(folder, files, size, preprocess, workers, progress)

    @classmethod
    def _build(cls, folder: Path, files: list[Path], size: int, preprocess, workers: int,
               progress: bool) -> DiskPictures:
        partial = folder.with_name(folder.name + ".partial")
        partial.mkdir(parents=True, exist_ok=True)
        state_file = partial / "progress.json"
        state = json.loads(state_file.read_text()) if state_file.is_file() else {"done": 0, "bad": {}}
        # written with plain file writes at each row's offset, not through a map: a written map's pages would count
        # as this process's memory until the whole set is cached
        with open(partial / "pictures.u8", "ab") as pictures, open(partial / "landmarks.f32", "ab") as marks:
            pictures.truncate(len(files) * 3 * size * size)
            marks.truncate(len(files) * NO_LANDMARKS.nbytes)
        with open(partial / "pictures.u8", "r+b") as pictures, open(partial / "landmarks.f32", "r+b") as marks:
            _build_rows(files, state, pictures, marks, state_file, size, preprocess, workers, progress)
        (partial / "meta.json").write_text(json.dumps({"format": FORMAT, "size": size, "count": len(files),
                                                       "bad": state["bad"], "files": [str(f) for f in files]}))
        state_file.unlink()
        partial.rename(folder)
        return cls(folder)


def _build_rows(files, state, pictures, marks, state_file: Path, size: int, preprocess, workers: int,
                progress: bool) -> None:
    """Decode the rows from state["done"] on, a chunk at a time, marking progress after each chunk."""
    from rich.progress import Progress

    from hardsight.console import console

    def decode(i: int):
        try:
            picture, lm = decode_picture(files[i], size, preprocess)
            return i, picture.numpy(), lm, None
        except UnreadableImage as e:
            return i, None, None, str(e)
        except Exception as e:  # a face stage may fail per file; never stop the whole set
            return i, None, None, f"{type(e).__name__}: {e}"

    with Progress(console=console, transient=True, disable=not progress) as bar:
        task = bar.add_task(f"caching {len(files):,} pictures on disk", total=len(files), completed=state["done"])
        for start in range(state["done"], len(files), CHUNK):
            for i, picture, lm, why in parallel_map(decode, list(range(start, min(start + CHUNK, len(files)))),
                                                    workers):
                if why:
                    state["bad"][str(i)] = why
                    continue
                os.pwrite(pictures.fileno(), picture.tobytes(), i * picture.nbytes)
                os.pwrite(marks.fileno(), (NO_LANDMARKS if lm is None else lm).astype(np.float32).tobytes(),
                          i * NO_LANDMARKS.nbytes)
            os.fsync(pictures.fileno())
            os.fsync(marks.fileno())
            state["done"] = min(start + CHUNK, len(files))
            state_file.write_text(json.dumps(state))
            bar.update(task, completed=state["done"])
