"""Finding and decoding images: one place that knows formats, transparency and bad files."""

from __future__ import annotations

import contextlib
import io
import os
import warnings
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Callable, Iterable, Iterator, TypeVar

from PIL import Image, UnidentifiedImageError

IMAGE_EXTENSIONS = (".png", ".jpg", ".jpeg", ".webp", ".bmp", ".gif", ".tif", ".tiff")
MAX_PIXELS = 64_000_000  # refuse decompression bombs long before they exhaust memory

T = TypeVar("T")


class UnreadableImage(Exception):
    """An image file that cannot be decoded; the message says why."""


def is_image(path: Path) -> bool:
    return path.suffix.lower() in IMAGE_EXTENSIONS and not path.name.startswith(".")


def list_images(folder: Path) -> list[Path]:
    """Image files below `folder`, recursively, in a stable order.

    Names that are not valid UTF-8 are left out and reported: they cannot be written to the UTF-8 manifests,
    split files and reports that record every file, and a label read from such a name would not be text."""
    good, bad = [], []
    for p in sorted(p for p in folder.rglob("*") if p.is_file() and is_image(p)):
        (good if _utf8_name(p) else bad).append(p)
    if bad:
        from hardsight.console import console

        shown = os.fsencode(bad[0]).decode("utf-8", "backslashreplace")
        console.print(f"[yellow]skipped {len(bad)} file(s) in {folder} whose names are not valid UTF-8 "
                      f"(first: {shown}); rename them to use them[/yellow]")
    return good


def _utf8_name(path: Path) -> bool:
    try:
        str(path).encode("utf-8")
        return True
    except UnicodeEncodeError:  # os.fsdecode turned undecodable bytes into lone surrogates
        return False


def read_csv_text(path: Path) -> io.StringIO:
    """A CSV's text for csv.reader, decoded as UTF-8 (with or without a BOM); another encoding is a one-line error."""
    from hardsight.errors import DataError

    try:
        return io.StringIO(Path(path).read_bytes().decode("utf-8-sig"), newline="")
    except UnicodeDecodeError as e:
        raise DataError(f"{path}: not UTF-8 text (byte 0x{e.object[e.start]:02x} at offset {e.start}); "
                        "save it as UTF-8") from None


def refuse_out_inside(out: Path, data: Path, why: str = "originals are only read") -> None:
    """Outputs never go inside the data they come from: a later run would read them as data."""
    from hardsight.errors import DataError

    out, data = Path(out).resolve(), Path(data).resolve()
    if out == data or data in out.parents:
        raise DataError(f"{out}: is inside DATA ({data}); choose an output folder outside it ({why})")


def expand_paths(items: Iterable[str | Path]) -> list[Path]:
    """Files, folders (recursively) and globs, in the order given; missing ones are an error."""
    from hardsight.errors import DataError

    out: list[Path] = []
    for item in items:
        p = Path(item)
        if p.is_dir():
            found = list_images(p)
            if not found:
                raise DataError(f"{item}: the folder holds no images ({', '.join(sorted(IMAGE_EXTENSIONS))})")
            out.extend(found)
        elif p.is_file():
            out.append(p)
        else:
            matches = sorted(Path().glob(str(item))) if not p.is_absolute() else sorted(
                Path(p.anchor).glob(str(p.relative_to(p.anchor))))
            files = [m for m in matches if m.is_file() and is_image(m)]
            if not files:
                raise DataError(f"{item}: no such file, folder or matching images")
            out.extend(files)
    return out


def load_image(path: Path | str, mode: str = "RGB") -> Image.Image:
    """Decode an image file to `mode` ('L' or 'RGB'); transparency is composited on white."""
    return to_mode(open_image(path), mode)


FORMATS = ("PNG", "JPEG", "GIF", "BMP", "WEBP", "TIFF")  # the only decoders PIL may pick: never EPS (Ghostscript)


def open_image(path: Path | str) -> Image.Image:
    """Decode an image file as stored (mode, format and JPEG tables kept); a bad or huge file is UnreadableImage."""
    with _checked_open(path) as im:
        im.load()
        return im


def read_size(path: Path | str) -> tuple[int, int]:
    """(width, height) from the header alone; full decoding errors surface later in load_image."""
    with _checked_open(path) as im:
        return im.size


@contextlib.contextmanager
def _checked_open(path: Path | str) -> Iterator[Image.Image]:
    """PIL's open with this toolkit's limits: the allowed formats, at most MAX_PIXELS (from the header, before any
    pixel is decoded); every failure, while opening or inside the block, is UnreadableImage."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(path, formats=FORMATS) as im:
                if im.width * im.height > MAX_PIXELS:
                    raise UnreadableImage(f"{im.width}x{im.height} pixels is over the {MAX_PIXELS:,} limit")
                yield im
    except UnreadableImage:
        raise
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError, Image.DecompressionBombError,
            Image.DecompressionBombWarning) as e:
        reason = "not an image" if isinstance(e, UnidentifiedImageError) else str(e) or type(e).__name__
        raise UnreadableImage(reason) from None


def to_mode(im: Image.Image, mode: str) -> Image.Image:
    """Convert any PIL image to 'L' or 'RGB', flattening alpha onto white."""
    if im.mode in ("RGBA", "LA", "PA") or (im.mode == "P" and "transparency" in im.info):
        rgba = im.convert("RGBA")
        white = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        im = Image.alpha_composite(white, rgba)
    return im.convert(mode)


def parallel_map(fn: Callable[[Path], T], paths: list[Path], workers: int = 4,
                 progress: str | None = None) -> list[T]:
    """Map over files with threads (decoding releases the GIL), with an optional progress bar."""
    from rich.progress import track

    with ThreadPoolExecutor(max_workers=max(1, workers)) as pool:
        results = pool.map(fn, paths)
        if progress and len(paths) > 200:
            results = track(results, total=len(paths), description=progress, transient=True)
        return list(results)
