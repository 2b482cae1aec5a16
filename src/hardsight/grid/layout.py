"""Where the cells of a grid CAPTCHA are: 3x3 grids of nine photos or 4x4 grids cut from one, told apart by their seams.

Where nine photos meet, colours jump along the 1/3 lines; a single photo has no seams at all. Screenshots of the
widget add a border and white (or coloured) lines between cells; those are trimmed and split on when present.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Sequence

import numpy as np
from PIL import Image

from hardsight.data.io import UnreadableImage, load_image, to_mode
from hardsight.errors import ConfigError, DataError

Box = tuple[int, int, int, int]  # (left, top, right, bottom), PIL's crop convention
Run = tuple[int, int]  # [start, end) of a drawn line or border, in pixels along one axis

GRID_SIZES = (3, 4)  # what `auto` chooses between
FLAT_DEVIATION = 20.0  # a row/column whose pixels lie this close (0-255) to its median colour is a drawn line
SEAM_RATIO = 2.0  # a seam's colour jump, over the jumps beside it, above which photos meet there
MIN_CELL_PX = 8


def as_image(image: Image.Image | str | Path) -> Image.Image:
    """A grid given as a PIL image or a file, in RGB (a bad file is a DataError naming it)."""
    if isinstance(image, Image.Image):
        return to_mode(image, "RGB")  # transparency on white, as load_image does for files
    try:
        return load_image(image, "RGB")
    except UnreadableImage as e:
        raise DataError(f"{image}: cannot read the grid image ({e}); pass a PNG or JPEG of the grid") from None


def _flat_runs(a: np.ndarray, axis: int) -> list[Run]:
    """Runs of columns (axis=1) or rows (axis=0) that are each one colour, and the same colour as each other."""
    lines = a if axis == 1 else a.transpose(1, 0, 2)  # (along, across, C): one line per index of `across`
    colour = np.median(lines, axis=0)  # (across, C)
    # JPEG rings around a line: 90% of its pixels, not all, lie close to its colour
    flat = np.percentile(np.abs(lines - colour).max(-1), 90, axis=0) < FLAT_DEVIATION
    runs: list[Run] = []
    start = None
    for i, f in enumerate(flat.tolist()):
        if f and start is not None and np.abs(colour[i] - colour[i - 1]).max() < 2 * FLAT_DEVIATION:
            continue
        if start is not None:
            runs.append((start, i))
        start = i if f else None
    if start is not None:
        runs.append((start, len(flat)))
    merged: list[Run] = []
    for run in runs:  # JPEG shifts the colour of a line's edge pixels: a sliver that touches a run is part of it
        if merged and merged[-1][1] == run[0] and min(run[1] - run[0], merged[-1][1] - merged[-1][0]) <= 2:
            merged[-1] = (merged[-1][0], run[1])
        else:
            merged.append(run)
    return merged


def _border(height: int, width: int, rows: list[Run], cols: list[Run]) -> Box:
    """The box inside a one-colour frame on all four sides (a screenshot's margin); the whole image if none."""
    left = next((e for s, e in cols if s == 0 and e <= 0.1 * width), 0)
    right = next((s for s, e in cols if e == width and s >= 0.9 * width), width)
    top = next((e for s, e in rows if s == 0 and e <= 0.1 * height), 0)
    bottom = next((s for s, e in rows if e == height and s >= 0.9 * height), height)
    # one side alone is not a frame: a photo's sky or road can be as flat as a margin
    if left == 0 or top == 0 or right == width or bottom == height:
        return 0, 0, width, height
    # grids are square: a side that made the box too short has swallowed a flat band of the frame's colour (a
    # pale sky under a white frame); give the band back, at most down to the opposite side's frame
    short = (right - left) - (bottom - top)
    if short > 2:
        top, bottom = _give_back(top, bottom, height, short)
    elif short < -2:
        left, right = _give_back(left, right, width, -short)
    return left, top, right, bottom


def _give_back(start: int, end: int, size: int, amount: int) -> tuple[int, int]:
    """Widen [start, end) by up to `amount` on the side whose frame is wider than the other's."""
    before, after = start, size - end
    if before > after:
        return start - min(amount, before - after), end
    return start, end + min(amount, after - before)


def _lines(flat_runs: list[Run], size: int) -> list[Run]:
    """The drawn lines among one axis's flat runs, kept only if evenly spaced like a grid's."""
    runs = [r for r in flat_runs if r[0] > 0 and r[1] < size and r[1] - r[0] <= 0.06 * size]
    if len(runs) < 2:  # one flat row in the middle is as likely a horizon as a line
        return []
    n, widths = len(runs) + 1, [e - s for s, e in runs]
    period = (size + np.mean(widths)) / n  # a cell and a line
    tolerance = max(2.0, 0.02 * size)
    even = all(abs((s + e) / 2 - (k * period - np.mean(widths) / 2)) <= tolerance
               for k, (s, e) in enumerate(runs, start=1))
    alike = max(widths) <= min(widths) + max(2, min(widths) // 2)
    return runs if even and alike and period - max(widths) >= MIN_CELL_PX else []


def _seam_scores(a: np.ndarray, n: int) -> list[float]:
    """How strongly colours jump along the vertical k/n lines, relative to the jumps just beside them."""
    jumps = np.abs(np.diff(a, axis=1)).sum(-1)  # (H, W-1): jumps[:, x] is between columns x and x+1
    width = a.shape[1]
    scores = []
    for k in range(1, n):
        at = k * width / n
        best = 0.0
        for c in {int(np.floor(at)) - 1, int(np.ceil(at)) - 1}:  # the seam sits between c and c+1
            if 3 <= c < width - 5:
                beside = np.concatenate([jumps[:, c - 3:c - 1], jumps[:, c + 2:c + 4]], axis=1)
                best = max(best, float(jumps[:, c].mean() / (beside.mean() + 1.0)))
        scores.append(best)
    return scores


def _layout(image: Image.Image) -> tuple[np.ndarray, Box, list[Run], list[Run]]:
    """(pixels inside any border, that box, horizontal lines, vertical lines); lines relative to the box."""
    a = np.asarray(image.convert("RGB"), dtype=np.float32)
    if min(a.shape[:2]) < 3 * MIN_CELL_PX:
        raise DataError(f"a {image.width}x{image.height} image is too small to be a grid")
    rows, cols = _flat_runs(a, 0), _flat_runs(a, 1)
    left, top, right, bottom = _border(*a.shape[:2], rows, cols)
    inner = a[top:bottom, left:right]
    if inner.shape != a.shape:
        rows, cols = _flat_runs(inner, 0), _flat_runs(inner, 1)
    return inner, (left, top, right, bottom), _lines(rows, inner.shape[0]), _lines(cols, inner.shape[1])


def detect_grid(image: Image.Image | str | Path) -> tuple[int, int]:
    """(rows, cols): 3x3 or 4x4, from drawn lines when there are any, else from the seams between photos."""
    inner, _, hlines, vlines = _layout(as_image(image))
    rows, cols = len(hlines) + 1, len(vlines) + 1
    if rows in GRID_SIZES and cols in GRID_SIZES:
        return rows, cols
    if rows in GRID_SIZES or cols in GRID_SIZES:  # lines on one axis only (on the other, one ran into a flat sky)
        n = rows if rows in GRID_SIZES else cols
        return n, n
    score = {n: float(np.median(_seam_scores(inner, n) + _seam_scores(inner.transpose(1, 0, 2), n)))
             for n in GRID_SIZES}
    best = max(score, key=score.get)
    if score[best] >= SEAM_RATIO:
        return best, best
    return 4, 4  # no seams: one photo, which is how 4x4 challenges come


def cell_boxes(image: Image.Image | str | Path, rows: int, cols: int) -> list[Box]:
    """Where each cell lies in the image, row-major: inside any border, between any drawn lines."""
    image = as_image(image)
    _, (left, top, right, bottom), hlines, vlines = _layout(image)
    # a grid's lines share one width: where one axis's lines ran into flat content (a pale sky), the other's tell it
    found = (hlines if len(hlines) == rows - 1 else []) + (vlines if len(vlines) == cols - 1 else [])
    width = round(float(np.median([e - s for s, e in found]))) if found else 0
    ys = _spans(bottom - top, rows, hlines, width)
    xs = _spans(right - left, cols, vlines, width)
    if min(e - s for s, e in ys + xs) < MIN_CELL_PX:
        raise DataError(f"a {image.width}x{image.height} image is too small for a {rows}x{cols} grid")
    return [(left + x0, top + y0, left + x1, top + y1) for y0, y1 in ys for x0, x1 in xs]


def _spans(size: int, n: int, lines: list[Run], line_px: int) -> list[Run]:
    """The n cells along one axis: between the drawn lines found, else between evenly placed ones `line_px` wide."""
    if len(lines) != n - 1:
        period = (size + line_px) / n  # a cell and a line
        lines = [(round(k * period) - line_px, round(k * period)) for k in range(1, n)]
    edges = [0] + [e for r in lines for e in r] + [size]
    return list(zip(edges[::2], edges[1::2]))


def split_grid(image: Image.Image | str | Path, rows: int, cols: int) -> list[Image.Image]:
    """The cells of a grid, row-major, without its border or lines."""
    image = as_image(image)
    return [image.crop(box) for box in cell_boxes(image, rows, cols)]


def assemble_grid(tiles: Sequence[Image.Image], rows: int, cols: int, line_px: int = 0,
                  line_color: tuple[int, int, int] = (255, 255, 255), border_px: int = 0) -> Image.Image:
    """A grid image of `tiles` (row-major, each resized to the first's size), lines between cells, a frame."""
    if len(tiles) != rows * cols:
        raise ValueError(f"{rows}x{cols} grid needs {rows * cols} tiles, got {len(tiles)}")
    tw, th = tiles[0].size
    step_x, step_y = tw + line_px, th + line_px
    grid = Image.new("RGB", (cols * step_x - line_px + 2 * border_px, rows * step_y - line_px + 2 * border_px),
                     line_color)
    for i, tile in enumerate(tiles):
        r, c = divmod(i, cols)
        grid.paste(tile.convert("RGB").resize((tw, th)), (border_px + c * step_x, border_px + r * step_y))
    return grid


def parse_grid(grid: str | tuple[int, int]) -> tuple[int, int] | None:
    """"3x3" -> (3, 3); "auto" -> None."""
    if isinstance(grid, tuple):
        return grid
    if grid.strip().lower() == "auto":
        return None
    m = re.fullmatch(r"\s*(\d+)\s*[xX×]\s*(\d+)\s*", grid)
    if not m or min(int(m[1]), int(m[2])) < 1:
        raise ConfigError(f"grid {grid!r}: expected auto or ROWSxCOLS, like 3x3 or 4x4")
    return int(m[1]), int(m[2])
