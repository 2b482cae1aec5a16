"""Hyperparameter-search benchmark: `hardsight tune` on the reCAPTCHA tiles split against the default config.

Searches the default image space for --minutes (CPU) on `../shared/data/recaptcha_tiles` with the split of
recaptcha_tiles.py (0.765 / 0.085 / 0.15, duplicate-aware, seed 0, 64 px), each trial at most --trial-minutes and
--epochs; then trains the default config (`compact`, AdamW, lr 3e-3, batch 64) with the budget of one trial (or
scores --baseline-run) and prints both, scored the same way on the same test split, as a markdown table.

    python benchmarks/tune.py [--minutes 30] [--trial-minutes 5] [--baseline-run RUN] [--data DIR] [--out TUNE]
"""

from __future__ import annotations

import argparse
import csv
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT.parent / "shared" / "data"


def train_minutes(run: Path) -> float:
    """Training time of a run folder: the elapsed seconds of its last epoch in metrics.csv."""
    rows = list(csv.DictReader((run / "metrics.csv").open()))
    return float(rows[-1]["elapsed_s"]) / 60 if rows else float("nan")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", type=Path, default=DATA / "recaptcha_tiles")
    ap.add_argument("--minutes", type=float, default=30.0, help="budget of the whole search")
    ap.add_argument("--trial-minutes", type=float, default=5.0, help="budget of each trial, and of the baseline")
    ap.add_argument("--epochs", type=int, default=40, help="most epochs of each trial, and of the baseline")
    ap.add_argument("--trials", type=int, default=100, help="most trials (the time budget usually ends it first)")
    ap.add_argument("--space", type=Path, help="search space YAML (default: hardsight's image space)")
    ap.add_argument("--pruner", default="median")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--split", default="0.765,0.085,0.15")
    ap.add_argument("--image-size", type=int, default=64)
    ap.add_argument("--out", type=Path, help="search folder; an existing one is resumed (default: bench-runs/tune-N)")
    ap.add_argument("--baseline-run", type=Path, help="score this run folder as the default config instead of training")
    args = ap.parse_args()
    if not args.data.exists():
        raise SystemExit(f"{args.data}: dataset not found")

    import hardsight
    from hardsight.data.image.prepare import prepare_image_data
    from hardsight.engine.evaluator import image_scores
    from hardsight.engine.image_predictor import ImagePredictor
    from hardsight.runs.folder import RunFolder, next_free
    from hardsight.engine.tuner import tune

    out = args.out or next_free(ROOT / "bench-runs" / "tune")
    base = hardsight.TrainConfig(
        task="image", data=str(args.data.resolve()), model="compact", seed=args.seed,
        split=tuple(float(f) for f in args.split.split(",")), epochs=args.epochs, max_minutes=args.trial_minutes,
        batch_size=64, lr=3e-3, weight_decay=5e-4, image_size=args.image_size)
    if args.baseline_run:  # fail before the search, not after it (the test items are compared again below)
        given = RunFolder.open(args.baseline_run).load_config()
        if (Path(given.data).resolve(), tuple(given.split), given.seed) != (Path(base.data), base.split, base.seed):
            raise SystemExit(f"{args.baseline_run}: trained on {given.data} split {given.split} seed {given.seed}, "
                             f"not the benchmark's {base.data} {base.split} seed {base.seed}")
    result = tune(base, out, args.space, args.trials, args.minutes, args.pruner)
    if result.best_run is None:
        raise SystemExit(f"{out}: no trial completed within {args.minutes:g} min; see {result.report}")

    if args.baseline_run:
        baseline = args.baseline_run
    else:
        baseline = next_free(out / "baseline")
        hardsight.train(base.replace(out=str(baseline)), progress=False)
    data = prepare_image_data(base)  # the benchmark split: same data, split and seed as every trial
    test = data.items["test"]
    saved = RunFolder.open(baseline).load_split()["test"]
    ours = [[str(Path(p).relative_to(args.data.resolve())) for p in it.paths] for it in test]
    if sorted(map(sorted, saved)) != sorted(map(sorted, ours)):
        raise SystemExit(f"{baseline}: trained on another split than the benchmark's; its test scores would not "
                         "compare (train it with the benchmark split, or leave out --baseline-run)")

    rows = []
    for name, run in (("default config", baseline), (f"best of search ({result.best_run.name})", result.best_run)):
        m, _, _ = image_scores(ImagePredictor(run), test, False, None)
        rows.append((name, m, train_minutes(run), run))

    print(f"\nhardsight tune on {args.data.name}: {result.complete} complete, {result.pruned} pruned, "
          f"{result.failed} failed trials in a {args.minutes:g}-minute budget ({args.trial_minutes:g} min, "
          f"at most {args.epochs} epochs a trial); {len(test)} test tiles, split seed {args.seed}; search {out}\n")
    print("| config | accuracy | balanced accuracy | macro-F1 | training minutes | run |\n|---|---|---|---|---|---|")
    for name, m, minutes, run in rows:
        print(f"| {name} | {m.accuracy:.2%} | {m.balanced_accuracy:.2%} | {m.macro_f1:.3f} | {minutes:.1f} | {run} |")
    print("\nbest settings found:\n")
    for key, value in result.best_params.items():
        print(f"- {key}: {value}")
    print(f"\nfull config: {out / 'best.yaml'}; report: {result.report}")


if __name__ == "__main__":
    main()
