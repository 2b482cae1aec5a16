"""Solving a grid: each cell classified, the cells over the target's threshold chosen, and the answer drawn."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol, Sequence

from PIL import Image, ImageDraw, ImageFont

from hardsight.errors import ConfigError
from hardsight.grid.decision import choose_cells, prior_of
from hardsight.grid.layout import Box, as_image, cell_boxes, detect_grid, parse_grid
from hardsight.grid.targets import resolve_target


class ImagePredictionLike(Protocol):
    probabilities: dict[str, float]  # class -> probability
    label: str  # top class


class ImageClassifier(Protocol):
    """What `solve` needs from a classifier; `hardsight.Predictor` on an image run is one."""

    classes: list[str]  # class names in output order
    thresholds: dict[str, float]  # per-class decision threshold tuned on validation, saved in the run
    # optional: `grid_thresholds`, per class the threshold tuned for grid solve rate (solve prefers it)

    def predict_images(self, images: list[Image.Image],
                       names: list[str] | None = None) -> Sequence[ImagePredictionLike]: ...


@dataclass(frozen=True)
class GridSolution:
    target: str  # the class name, as the run spells it
    rows: int
    cols: int
    selected: list[int]  # 0-based row-major indices of the chosen cells
    positions: list[tuple[int, int]]  # 1-based (row, col) of each chosen cell
    scores: list[float]  # target probability of every cell, row-major
    threshold: float
    boxes: list[Box]  # where each cell was cut from the grid image, row-major
    prior: tuple[int, int] | None = None  # (fewest, most) cells the answer was cut to, where the grid has a prior

    def to_json(self) -> dict[str, Any]:
        return {"target": self.target, "rows": self.rows, "cols": self.cols, "selected": list(self.selected),
                "positions": [list(p) for p in self.positions], "scores": [round(s, 6) for s in self.scores],
                "threshold": self.threshold, "prior": list(self.prior) if self.prior else None,
                "boxes": [list(b) for b in self.boxes]}




def solve(classifier: ImageClassifier, image: Image.Image | str | Path, target: str,
          grid: str | tuple[int, int] = "auto", threshold: float | None = None, prior: bool = True) -> GridSolution:
    """Which cells of a grid show `target`: each cell's probability against the run's grid threshold for the class
    (tuned for the solve rate on validation grids; its tile threshold for runs from before), the count cut to the
    grid's prior where it has one (a 3x3 shows its target in 1 to 4 cells).

    Args:
        grid: "auto" (3x3 or 4x4, detected), "RxC", or (rows, cols).
        threshold: overrides the threshold the run tuned for the target class.
        prior: False chooses by the threshold alone.
    """
    pil = as_image(image)
    name = resolve_target(target, classifier.classes)
    rows, cols = parse_grid(grid) or detect_grid(pil)
    if threshold is None:
        tuned = getattr(classifier, "grid_thresholds", None) or classifier.thresholds
        threshold = float(tuned.get(name, 0.5))
    if not 0.0 <= threshold <= 1.0:
        raise ConfigError(f"threshold {threshold}: expected a probability between 0 and 1")
    boxes = cell_boxes(pil, rows, cols)
    cells = [pil.crop(b) for b in boxes]
    predictions = classifier.predict_images(cells, [f"r{i // cols + 1}c{i % cols + 1}" for i in range(len(cells))])
    scores = [float(p.probabilities[name]) for p in predictions]
    bounds = prior_of(rows, cols) if prior else None
    selected = choose_cells(scores, threshold, bounds)
    return GridSolution(name, rows, cols, selected, [(i // cols + 1, i % cols + 1) for i in selected], scores,
                        float(threshold), boxes, bounds)


def annotate(image: Image.Image | str | Path, solution: GridSolution, out_path: str | Path) -> Path:
    """Draw the chosen cells (green frame) and every cell's score on a copy of the grid; returns the file."""
    out_path = Path(out_path)
    if not isinstance(image, Image.Image) and Path(image).resolve() == out_path.resolve():
        raise ConfigError(f"{out_path}: would overwrite the grid image; pass another --annotate path")
    base = as_image(image).convert("RGBA")
    overlay = Image.new("RGBA", base.size, (0, 0, 0, 0))
    draw = ImageDraw.Draw(overlay)
    width = max(2, min(base.size) // 100)
    font = ImageFont.load_default(size=max(10, min(base.size) // (6 * max(solution.rows, solution.cols))))
    for i, (box, score) in enumerate(zip(solution.boxes, solution.scores)):
        chosen = i in solution.selected
        if chosen:
            draw.rectangle(box, fill=(0, 200, 80, 70), outline=(0, 230, 90, 255), width=width)
        text = f"{score:.2f}"
        x, y = box[0] + width + 2, box[1] + width + 2
        tb = draw.textbbox((x, y), text, font=font)
        draw.rectangle((tb[0] - 2, tb[1] - 2, tb[2] + 2, tb[3] + 2), fill=(0, 0, 0, 160))
        draw.text((x, y), text, font=font, fill=(0, 255, 100, 255) if chosen else (255, 255, 255, 255))
    out_path.parent.mkdir(parents=True, exist_ok=True)
    fmt = None if out_path.suffix.lower() in Image.registered_extensions() else "PNG"  # no known suffix: PNG
    Image.alpha_composite(base, overlay).convert("RGB").save(out_path, format=fmt)
    return out_path


def print_solution(solution: GridSolution, title: str, annotated: Path | None = None) -> None:
    """The grid of scores as a table, chosen cells in green, then the cells to click."""
    from rich.table import Table

    from hardsight.console import console

    table = Table(*(f"col {c + 1}" for c in range(solution.cols)), show_lines=True, title=title,
                  caption=f"{solution.rows}x{solution.cols} grid, threshold {solution.threshold:.2f}"
                  + (f", {solution.prior[0]}-{solution.prior[1]} cells" if solution.prior else ""))
    for r in range(solution.rows):
        cells = range(r * solution.cols, (r + 1) * solution.cols)
        table.add_row(*(f"[bold green]{solution.scores[i]:.2f} ✓[/bold green]" if i in solution.selected
                        else f"{solution.scores[i]:.2f}" for i in cells))
    console.print(table)
    picks = ", ".join(f"({r}, {c})" for r, c in solution.positions)
    console.print(f"select (row, col): {picks}" if picks else "no cell passes the threshold: skip this grid")
    if annotated:
        console.print(f"annotated: {annotated}")
