"""Text default-recipe benchmark: the full default run of `hardsight train text` on captcha_v2, once per seed.

Each seed is a whole default run (its own seeded split, 80/10/10, the default 100-epoch plan, early stopping),
exactly what `hardsight train text DATA --seed S` does; the table gives every seed's test exact match (not the
best), its validation exact match, minutes, epochs and steps, what stopped it, and the epoch CTC's all-blank
plateau ended (the first with validation exact match over 0.3). `--hog` runs a CPU hog beside training (a process
multiplying matrices on 2 threads, as a busy laptop does): with `--max-minutes`, the check that a time budget
buys the same reader on a busier machine, only later. Run it alone: a second torch process slows both tenfold.

    python benchmarks/text_recipe.py [--seeds 0,1,2] [--max-minutes M] [--hog] [--data DIR] [--start scratch|general]
"""

from __future__ import annotations

import argparse
import csv
import multiprocessing as mp
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_DATA = ROOT.parent / "shared" / "data" / "captcha_v2"


def hog(threads: int = 2) -> None:
    """Matrix products without end: the load beside training."""
    import torch

    torch.set_num_threads(threads)
    a = torch.randn(1500, 1500)
    while True:
        a = (a @ a).tanh()


def off_plateau(metrics: Path, above: float = 0.3) -> int | None:
    rows = list(csv.DictReader(metrics.open()))
    return next((i + 1 for i, r in enumerate(rows) if float(r["val/exact_match"] or 0) > above), None)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", type=Path, default=DEFAULT_DATA)
    ap.add_argument("--seeds", default="0,1,2")
    ap.add_argument("--max-minutes", type=float, default=None)
    ap.add_argument("--hog", action="store_true", help="a CPU hog (2 threads of matrix products) beside training")
    ap.add_argument("--out", type=Path, default=None)
    ap.add_argument("--start", choices=("default", "scratch", "general"), default="default",
                    help="the defaults' start, random weights, or the shipped general reader")
    args = ap.parse_args()
    start = {"default": {}, "scratch": {"pretrained": False}, "general": {"weights": "general"}}[args.start]
    if not args.data.is_dir():
        raise SystemExit(f"{args.data}: dataset folder not found (expected ../shared/data/captcha_v2)")

    import hardsight
    from hardsight.runs.folder import next_free

    out = args.out or next_free(ROOT / "bench-runs" / "text_recipe")
    rows = []
    for seed in (int(s) for s in args.seeds.split(",")):
        load = mp.get_context("spawn").Process(target=hog, daemon=True) if args.hog else None
        if load:
            load.start()
            time.sleep(3)  # the hog is at full speed before training starts
        try:
            cfg = hardsight.TrainConfig(task="text", data=str(args.data), out=str(out / f"seed{seed}"), seed=seed,
                                        max_minutes=args.max_minutes, **start)
            result = hardsight.train(cfg, progress=False)
        finally:
            if load:
                load.terminate()
                load.join()
        val = max(float(r["val/exact_match"]) for r in csv.DictReader(result.run.metrics.open()))
        rows.append((seed, result.test.exact_match, result.test.n, val, result.minutes, result.epochs, result.steps,
                     result.stopped_by, off_plateau(result.run.metrics)))

    load_note = "with a CPU hog beside it" if args.hog else "alone"
    budget = f", --max-minutes {args.max_minutes:g}" if args.max_minutes else ""
    print(f"\n{args.data.name}, default recipe, start: {args.start}, {load_note}{budget}")
    print("| seed | test exact match | best val exact match | minutes | epochs | steps | off the plateau (epoch) "
          "| stopped by |")
    print("|---|---|---|---|---|---|---|---|")
    for seed, em, n, val, minutes, epochs, steps, stopped, plateau in rows:
        print(f"| {seed} | {em:.3f} (of {n}) | {val:.3f} | {minutes:.1f} | {epochs} | {steps:,} | {plateau or '-'} "
              f"| {stopped} |")
    worst = min(r[1] for r in rows)
    print(f"worst seed: {worst:.3f}; slowest: {max(r[4] for r in rows):.1f} min")


if __name__ == "__main__":
    main()
