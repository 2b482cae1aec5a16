"""Occlusion study benchmark: the VR-headset experiment on TFEID, trained from scratch (or fine-tuned) on CPU.

Runs the occlusion study on `../shared/data/faces_tfeid` (7 posed expressions; split 70/10/20 by performer,
seeded, the same for every condition; faces cropped tight and aligned from dlib landmarks; `compact` at 64 px with
light augmentation and bf16 mixed precision):
four train conditions (clean, occluded, mixed, mixed-unique) scored on four test conditions (clean, occluded,
mixed-unique: each face once, half occluded, the study's mixed test set; mixed: both versions of each face).
Prints the study table, the study's four tables in its layout (one per train condition: epoch, validation loss and
accuracy of each checkpoint beside its test accuracy and change against its own test), training minutes per
condition and the targets (on the first checkpoint scored, best by default):

- the clean-trained model reaches >= 70% accuracy on clean test faces;
- its accuracy on occluded test faces drops markedly (here: by at least 15% relative; the original study
  saw -35%);
- the mixed model's occluded-test accuracy is within 10% relative of its clean-test accuracy, and it loses
  at most 3 points on clean faces against the clean-trained model.

    python benchmarks/occlusion_study.py [--max-minutes 8] [--epochs 30] [--seed 0] [--out DIR] [--checkpoints best]
    python benchmarks/occlusion_study.py --model tf_efficientnet_lite0 --pretrained --image-size 112   # fine-tuned

The study folder resumes: run the same command with `--out` of an unfinished study to finish it. Both checkpoints
are scored by default (`--checkpoints best`: the best alone); a rerun that adds one scores it without training.
"""

from __future__ import annotations

import argparse
import csv
import time
from functools import partial
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT.parent / "shared" / "data"


def targets(result) -> list[tuple[str, bool, str]]:
    """(target, met, measured) for each target of the benchmark, on the first checkpoint scored."""
    cell = partial(result.cell, checkpoint=result.cells[0].checkpoint)
    clean, clean_occ = cell("clean", "clean"), cell("clean", "occluded")
    rows = [("clean model, clean test >= 70%", clean.accuracy >= 0.70, f"{clean.accuracy:.1%}"),
            ("clean model, occluded test drops >= 15% relative", clean_occ.accuracy_vs_clean <= -0.15,
             f"{clean_occ.accuracy:.1%} ({clean_occ.accuracy_vs_clean:+.1%})")]
    if "mixed" in {c.train for c in result.cells}:
        mixed, mixed_occ = cell("mixed", "clean"), cell("mixed", "occluded")
        rows += [("mixed model, occluded within 10% relative of its clean", mixed_occ.accuracy_vs_clean >= -0.10,
                  f"{mixed_occ.accuracy:.1%} vs {mixed.accuracy:.1%} ({mixed_occ.accuracy_vs_clean:+.1%})"),
                 ("mixed model loses <= 3 points on clean vs clean model", clean.accuracy - mixed.accuracy <= 0.03,
                  f"{mixed.accuracy:.1%} vs {clean.accuracy:.1%} ({100 * (mixed.accuracy - clean.accuracy):+.1f} pt)")]
    return rows


def study_tables(study_csv: Path) -> str:
    """The study's tables from study.csv: one per train condition (clean, occluded, mixed, mixed-unique trained), a row
    per test set and checkpoint with the checkpoint's epoch and validation scores beside its test accuracy and its
    change against the model's own test (the study's "Veraenderung") and against clean test."""
    rows = list(csv.DictReader(study_csv.open(newline="", encoding="utf-8")))
    lines = []
    for train in dict.fromkeys(r["train"] for r in rows):
        mine = [r for r in rows if r["train"] == train]
        lines += [f"### {train} trained ({mine[0]['epochs']} epochs, lowest val loss "
                  f"{float(mine[0]['best_val_loss']):.4f}; own test: {train})", "",
                  "| test set | checkpoint | epoch | val loss | val accuracy | test accuracy | change vs own test "
                  "| change vs clean test |", "|---|---|---|---|---|---|---|---|"]
        lines += [f"| {r['test']} | {r['checkpoint']} | {r['checkpoint_epoch']} | {float(r['val_loss']):.4f} | "
                  f"{float(r['val_accuracy']):.2%} | {float(r['accuracy']):.2%} | {float(r['accuracy_vs_own']):+.1%} | "
                  f"{float(r['accuracy_vs_clean']):+.1%} |" for r in mine]
        lines.append("")
    return "\n".join(lines)


def main() -> None:
    from hardsight.faces.study import TRAIN_CONDITIONS

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", type=Path, default=DATA / "faces_tfeid")
    ap.add_argument("--out", type=Path, help="study folder (default: a new bench-runs/occlusion_study-N)")
    ap.add_argument("--occluder", default="vr-headset")
    ap.add_argument("--max-minutes", type=float, default=8.0, help="training budget per train condition")
    ap.add_argument("--epochs", type=int, default=30)
    ap.add_argument("--image-size", type=int, default=64)
    ap.add_argument("--model", default="compact")
    ap.add_argument("--pretrained", action="store_true",
                    help="fine-tune --model from pretrained weights with the fine-tuning recipe of hardsight.config "
                         "(head alone for an epoch, then the body at a tenth of the head's rate)")
    ap.add_argument("--precision", default="32", help="32, or bf16-mixed (pays only on CPUs with AVX512-BF16 or AMX)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--conditions", default=",".join(TRAIN_CONDITIONS), help="train conditions, comma-separated")
    ap.add_argument("--checkpoints", default="best,last", help="checkpoints scored: best, last or both")
    args = ap.parse_args()
    if not args.data.is_dir():
        raise SystemExit(f"{args.data}: dataset folder not found")

    from hardsight.runs.folder import next_free
    from hardsight.faces.study import StudyConfig, occlusion_study

    out = args.out or next_free(ROOT / "bench-runs" / "occlusion_study")
    cfg = StudyConfig(str(args.data), str(out), args.occluder, label_col="expression", group_col="performer",
                      model=args.model, pretrained=args.pretrained, image_size=args.image_size, epochs=args.epochs,
                      max_minutes=args.max_minutes, seed=args.seed, conditions=tuple(args.conditions.split(",")),
                      checkpoints=tuple(args.checkpoints.split(",")), settings={"precision": args.precision})
    start = time.monotonic()
    result = occlusion_study(cfg)
    wall = (time.monotonic() - start) / 60

    print(f"\nocclusion_study: {args.occluder} on {args.data}; faces {result.split}; study folder {out}\n")
    print(result.table.read_text())
    print("## The study's tables\n")
    print(study_tables(out / "study.csv"))
    minutes = {c.train: c.train_minutes for c in result.cells}
    print("| train condition | training minutes | epochs | stopped by |\n|---|---|---|---|")
    for c in result.cells:
        if c.test == "clean" and c.checkpoint == result.cells[0].checkpoint:
            print(f"| {c.train} | {c.train_minutes:.1f} | {c.epochs} | {c.stopped_by} |")
    print(f"\ntraining minutes in all: {sum(minutes.values()):.1f}; wall clock of this call: {wall:.1f} min"
          + (f" (reused from an earlier call: {', '.join(result.reused)})" if result.reused else ""))
    print("\n| target | met | measured |\n|---|---|---|")
    for name, met, measured in targets(result):
        print(f"| {name} | {'yes' if met else 'NO'} | {measured} |")


if __name__ == "__main__":
    main()
