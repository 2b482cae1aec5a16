"""Pictures of a folder as data URIs, for pages that load nothing from anywhere else (the model card, `hardsight
report`): a picture is taken from inside its folder only, so a link or `..` cannot send out another file."""

from __future__ import annotations

import base64
from pathlib import Path
from urllib.parse import unquote, urlsplit

from hardsight.errors import RunError

PICTURE_TYPES = {b"\x89PNG\r\n\x1a\n": "image/png", b"\xff\xd8\xff": "image/jpeg"}  # file start -> media type


def inside(folder: Path, name: str | Path) -> Path:
    """`folder/name` resolved, refused when it leads outside `folder` (an absolute path, `..` or a symlink)."""
    path = Path(folder) / name
    resolved = path.resolve()
    if not resolved.is_relative_to(Path(folder).resolve()):
        raise RunError(f"{path}: refused: it leads outside {folder} (through a symlink or ..); only files inside "
                       "the folder are inlined")
    return resolved


def local_name(link: str) -> str:
    """The file a relative link in a page names ('plots/a%20b.png' -> 'plots/a b.png'), refusing other hosts."""
    parts = urlsplit(link)
    if parts.scheme or parts.netloc:
        raise RunError(f"{link}: refused: not a file of the folder (only pictures inside it are inlined)")
    return unquote(parts.path)


def data_uri(folder: Path, name: str | Path) -> str:
    """The PNG or JPEG `folder/name` as a data URI; RunError when it is outside the folder, missing or no picture."""
    path = inside(folder, name)
    try:
        data = path.read_bytes()
    except OSError:
        raise RunError(f"{Path(folder) / name}: missing (named as a picture of {folder})") from None
    kind = next((t for magic, t in PICTURE_TYPES.items() if data.startswith(magic)), None)
    if kind is None:
        raise RunError(f"{Path(folder) / name}: not a PNG or JPEG picture")
    return f"data:{kind};base64,{base64.b64encode(data).decode('ascii')}"
