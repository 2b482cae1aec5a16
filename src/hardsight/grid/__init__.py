"""Grid CAPTCHAs: split a challenge image into cells, classify each, answer "which cells show X".

Two kinds of challenge: 3x3 grids of nine separate photos, and 4x4 grids cut from one photo. `detect_grid`
tells them apart by the seams: where nine photos meet, colours jump along the 1/3 lines; a single photo has
no seams at all. Screenshots of the widget add a border and white (or coloured) lines between cells; those
are trimmed and split on when present.
"""

from hardsight.grid.layout import assemble_grid, cell_boxes, detect_grid, parse_grid, split_grid
from hardsight.grid.solve import GridSolution, annotate, print_solution, solve
from hardsight.grid.targets import resolve_target

__all__ = ["GridSolution", "annotate", "assemble_grid", "cell_boxes", "detect_grid", "parse_grid", "print_solution",
           "resolve_target", "solve", "split_grid"]
