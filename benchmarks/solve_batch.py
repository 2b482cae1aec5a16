"""Batch solving benchmark: `hardsight solve RUN grids.csv` (one process, the model loaded once) against one
`hardsight solve RUN GRID` process per grid, on the 100 shared 3x3 grids.

Each grid's target is the class that fills most of its cells (Other left out) by the pseudo-labels of
`../shared/data/recaptcha_grids/grids_3x3_cells.csv`, and its true cells are the cells of that class. Both ways run
the same run folder on the same grids, so their answers and solve rates must agree; the table gives seconds, seconds
per grid, the solve rate with its 95% interval, and the speed-up. Without `--run` a small compact classifier is
trained on the tiles first (`--train-minutes`, default 3), which is enough to time solving, not a figure of accuracy.
`--calls N` times N single calls (the first N grids) and scales the per-call time to all grids, saying so.
Run it alone: a second torch process slows both.

    python benchmarks/solve_batch.py [--run RUN] [--calls 100] [--train-minutes 3]
"""

from __future__ import annotations

import argparse
import csv
import json
import subprocess
import sys
import time
from collections import Counter, defaultdict
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT.parent / "shared" / "data"
GRIDS = DATA / "recaptcha_grids"


def write_answers(out: Path) -> Path:
    """grids.csv of file,target,cells from the shared per-cell pseudo-labels."""
    cells: dict[str, dict[int, str]] = defaultdict(dict)
    for row in csv.DictReader((GRIDS / "grids_3x3_cells.csv").open()):
        cells[row["grid"]][int(row["cell_index_rowmajor"])] = row["nearest_tile_class"]
    rows = []
    for grid, by_cell in sorted(cells.items(), key=lambda kv: int(kv[0].split("_")[1].split(".")[0])):
        counts = Counter(c for c in by_cell.values() if c != "Other")
        target = counts.most_common(1)[0][0]
        rows.append((str(GRIDS / "grids_3x3" / grid), target,
                     " ".join(str(i) for i, c in sorted(by_cell.items()) if c == target)))
    path = out / "grids.csv"
    with path.open("w", newline="") as f:
        csv.writer(f).writerows([("file", "target", "cells"), *rows])
    return path


def hardsight(*args: str) -> tuple[str, float]:
    start = time.perf_counter()
    proc = subprocess.run([sys.executable, "-m", "hardsight", *args], capture_output=True, text=True)
    if proc.returncode:
        raise SystemExit(f"hardsight {' '.join(args)} failed:\n{proc.stdout}{proc.stderr}")
    return proc.stdout, time.perf_counter() - start


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--run", type=Path, default=None, help="an image run folder (default: train a small one)")
    ap.add_argument("--calls", type=int, default=100, help="single calls timed (the first N grids)")
    ap.add_argument("--train-minutes", type=float, default=3.0)
    ap.add_argument("--out", type=Path, default=None)
    args = ap.parse_args()
    if not (GRIDS / "grids_3x3_cells.csv").is_file():
        raise SystemExit(f"{GRIDS}: the shared grids are not here (expected ../shared/data/recaptcha_grids)")
    from hardsight.runs.folder import next_free

    out = args.out or next_free(ROOT / "bench-runs" / "solve_batch")
    out.mkdir(parents=True, exist_ok=True)
    run = args.run
    if run is None:
        run = out / "tiles"
        hardsight("train", "image", str(DATA / "recaptcha_tiles"), "--out", str(run), "--model", "compact",
                  "--max-minutes", f"{args.train_minutes:g}")
        hardsight("export", str(run))
    answers = write_answers(out)
    rows = list(csv.DictReader(answers.open()))

    stdout, batch_s = hardsight("solve", str(run), str(answers), "--json")
    *batch, summary = [json.loads(line) for line in stdout.splitlines()]
    summary = summary["summary"]

    single, single_s = [], 0.0
    for row in rows[:args.calls]:
        stdout, seconds = hardsight("solve", str(run), row["file"], "--target", row["target"], "--json")
        single.append(json.loads(stdout))
        single_s += seconds
    agree = all(b["selected"] == s["selected"] for b, s in zip(batch, single))
    truth = [set(map(int, r["cells"].split())) for r in rows[:len(single)]]
    single_solved = sum(set(s["selected"]) == t for s, t in zip(single, truth))
    batch_solved_same = sum(b["solved"] for b in batch[:len(single)])
    scaled = single_s / len(single) * len(rows)

    from hardsight.intervals import wilson

    low, high = summary["solve_rate_interval"]
    s_low, s_high = wilson(single_solved, len(single))
    print(f"\n{len(rows)} shared 3x3 grids, run {run}")
    print("| way | grids | seconds | s/grid | solve rate [95% interval] |")
    print("|---|---|---|---|---|")
    print(f"| one process (`solve RUN grids.csv`) | {len(rows)} | {batch_s:.1f} | {batch_s / len(rows):.3f} | "
          f"{summary['solve_rate']:.1%} [{low:.1%}, {high:.1%}] |")
    note = "" if len(single) == len(rows) else f" (timed on {len(single)}, scaled to {len(rows)})"
    print(f"| one process per grid{note} | {len(single)} | {single_s:.1f} | {single_s / len(single):.3f} | "
          f"{single_solved / len(single):.1%} [{s_low:.1%}, {s_high:.1%}] |")
    print(f"speed-up: {scaled / batch_s:.1f}x; answers agree on the {len(single)} grids: {agree}; "
          f"solved there: {batch_solved_same} batch, {single_solved} single")


if __name__ == "__main__":
    main()
