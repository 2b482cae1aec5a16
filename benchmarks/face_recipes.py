"""Face recipes benchmark: which crop and augmentation an expression model trained from scratch on TFEID likes.

On `../shared/data/faces_tfeid`, with the occlusion study's split (70/10/20 by performer, seed 0) and only its
clean condition, trains `compact` at 64 px for --minutes per recipe (one seed each: differences of a few points
are within run-to-run noise on 216 test faces from a handful of performers):

- `earlier`: the crop and augmentation of earlier versions (face margin 0.15, augmentation 1.0, crops >= 60%);
- `tight crop`: face margin 0 (brows to chin, jaw to jaw), the earlier augmentation;
- `tight crop, light aug` (today's default): face margin 0, augmentation 0.5, crops >= 80%.

As a reference that involves no network, it also fits HOG features (scikit-image) with a logistic regression
(scikit-learn; C chosen on the validation split) on the aligned crops at both margins. Prints one table: test
accuracy and macro-F1 of each. Landmarks are found once (dlib) into the output folder.

    pip install -e '.[bench]'   # scikit-image, for the HOG reference
    python benchmarks/face_recipes.py [--minutes 3] [--precision bf16-mixed] [--out DIR]
"""

from __future__ import annotations

import argparse
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT.parent / "shared" / "data"

RECIPES = {
    "earlier": {"face_margin": 0.15, "augment": 1.0, "min_scale": 0.6},
    "tight crop": {"face_margin": 0.0, "augment": 1.0, "min_scale": 0.6},
    "tight crop, light aug (default)": {},
}


def hog_reference(cfg, margin: float) -> tuple[float, float, float]:
    """(C, test accuracy, test macro-F1) of HOG + logistic regression on the study's aligned crops at `margin`."""
    import dataclasses

    import numpy as np
    from skimage.feature import hog
    from sklearn.linear_model import LogisticRegression
    from sklearn.metrics import f1_score
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    from hardsight.data.image.prepare import prepare_image_data
    from hardsight.faces.stage import FaceStage

    train_cfg = dataclasses.replace(cfg, settings={"face_margin": margin}).train_config()
    data = prepare_image_data(train_cfg, preprocess=FaceStage.for_config(train_cfg))

    def features(part: str):
        x = [hog(it.image.float().mean(0).numpy(), orientations=9, pixels_per_cell=(8, 8), cells_per_block=(2, 2))
             for it in data.items[part]]
        return np.array(x), np.array([data.classes.index(it.labels[0]) for it in data.items[part]])

    (xt, yt), (xv, yv), (xs, ys) = features("train"), features("val"), features("test")
    fits = {c: make_pipeline(StandardScaler(), LogisticRegression(C=c, max_iter=3000)).fit(xt, yt)
            for c in (0.01, 0.1, 1.0)}
    c = max(fits, key=lambda k: (fits[k].predict(xv) == yv).mean())
    pred = fits[c].predict(xs)
    return c, float((pred == ys).mean()), float(f1_score(ys, pred, average="macro"))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", type=Path, default=DATA / "faces_tfeid")
    ap.add_argument("--minutes", type=float, default=3.0, help="training budget of each recipe")
    ap.add_argument("--epochs", type=int, default=100)
    ap.add_argument("--precision", default="bf16-mixed", help="32, or bf16-mixed (CPUs with AVX512-BF16 or AMX)")
    ap.add_argument("--out", type=Path, help="benchmark folder (default: a new bench-runs/face_recipes-N)")
    args = ap.parse_args()
    if not args.data.is_dir():
        raise SystemExit(f"{args.data}: dataset folder not found")

    from hardsight.faces.jobs import find_landmarks
    from hardsight.runs.folder import next_free
    from hardsight.faces.study import StudyConfig, occlusion_study

    out = args.out or next_free(ROOT / "bench-runs" / "face_recipes")
    landmarks = out / "landmarks"
    find_landmarks(args.data, landmarks, progress=False)  # a rerun skips what is done

    def study(name: str, recipe: dict) -> StudyConfig:
        return StudyConfig(str(args.data), str(out / name.replace(" ", "_").replace(",", "")), "vr-headset",
                           label_col="expression", group_col="performer", landmarks=str(landmarks),
                           epochs=args.epochs, max_minutes=args.minutes, conditions=("clean",),
                           settings={"precision": args.precision, **recipe})

    rows = []
    for name, recipe in RECIPES.items():
        cell = occlusion_study(study(name, recipe), progress=False).cell("clean", "clean")
        rows.append((name, cell.accuracy, cell.macro_f1, f"{cell.epochs} epochs, {cell.train_minutes:.1f} min"))
    try:
        for margin in (0.15, 0.0):
            c, acc, f1 = hog_reference(study("hog", {}), margin)
            rows.append((f"HOG + logistic regression, face margin {margin:g}", acc, f1, f"C={c:g} (chosen on val)"))
    except ImportError:
        rows.append(("HOG + logistic regression", float("nan"), float("nan"), "pip install -e '.[bench]'"))

    print(f"\nface_recipes: clean TFEID faces, the occlusion study's split; folder {out}\n")
    print("| recipe | test accuracy | macro-F1 | training |\n|---|---|---|---|")
    for name, acc, f1, how in rows:
        print(f"| {name} | {acc:.1%} | {f1:.3f} | {how} |")


if __name__ == "__main__":
    main()
