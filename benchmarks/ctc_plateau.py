"""CTC plateau benchmark: how long a text reader sits on CTC's all-blank plateau, per recipe variant and seed.

Trains the default reader on `../shared/data/captcha_v2` for `--stop` epochs under each variant and seed (the
schedule planned for `--planned` epochs, so a variant sees the warm-up a full run would) and prints, per run, the
epoch the plateau ended (the first with validation exact match over 0.3), the steps until CER first left 1.0 and
until the first exact read, and the exact match after `--stop` epochs; then each variant's median and worst
plateau over the seeds. Epochs and steps do not depend on how busy the machine is; the seconds column does.

    python benchmarks/ctc_plateau.py [--stop 16] [--planned 100] [--seeds 0,1,2,3,4,5]
        [--variants default,layer_norm=0,held=0,layer_norm=0+held=0]

A variant is `default` (today's recipe) or settings joined by `+`: `warmup=N` (optimiser steps of warm-up),
`lr=X`, `augment=X`, `stride=4|8` and `layer_norm=0|1` (the crnn's model_args), `held=0` (augmentation from the
first step instead of held off until an epoch reads 10% of the training split, data/text/curriculum.py).
"""

from __future__ import annotations

import argparse
import csv
import statistics
import time
from pathlib import Path

import lightning as L

ROOT = Path(__file__).resolve().parents[1]


class StopAfter(L.Callback):
    """Ends training after `epochs` epochs while the schedule stays planned for the run's full length."""

    def __init__(self, epochs: int):
        self.epochs = epochs

    def on_train_epoch_end(self, trainer, module) -> None:
        if trainer.current_epoch + 1 >= self.epochs:
            trainer.should_stop = True


def settings_of(variant: str) -> tuple[dict, bool]:
    """(TrainConfig settings, whether augmentation is held off until the reader reads) of a variant."""
    names = {"warmup": ("warmup_steps", int), "lr": ("lr", float), "augment": ("augment", float)}
    out: dict = {}
    held = True
    for part in variant.split("+"):
        if part == "default":
            continue
        key, value = part.split("=", 1)
        if key == "held":
            held = value != "0"
        elif key in ("stride", "layer_norm"):
            out.setdefault("model_args", {})[key] = int(value) if key == "stride" else value != "0"
        else:
            name, kind = names[key]
            out[name] = kind(value)
    return out, held


class AugmentFromStart(L.Callback):
    """`held=0`: the training split augmented at full strength from the first step, as before the curriculum."""

    def on_train_batch_start(self, trainer, module, batch, batch_idx: int) -> None:
        trainer.datamodule.set_augment_share(1.0)  # for the next batches: this one is already drawn

    def on_train_epoch_start(self, trainer, module) -> None:  # after the curriculum's on_train_start
        trainer.datamodule.set_augment_share(1.0)


def main() -> None:
    import hardsight
    from hardsight.runs.folder import next_free

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", type=Path, default=ROOT.parent / "shared" / "data" / "captcha_v2")
    ap.add_argument("--stop", type=int, default=16, help="epochs trained per variant")
    ap.add_argument("--planned", type=int, default=100, help="epochs the schedule is planned for")
    ap.add_argument("--seeds", default="0,1,2,3,4,5")
    ap.add_argument("--variants", default="default,layer_norm=0,held=0,layer_norm=0+held=0")
    ap.add_argument("--out", type=Path, default=None)
    args = ap.parse_args()
    out = args.out or next_free(ROOT / "bench-runs" / "ctc_plateau")
    seeds = [int(x) for x in args.seeds.split(",")]
    rows = []
    for variant in args.variants.split(","):
        settings, held = settings_of(variant)
        for seed in seeds:
            run = out / f"{variant.replace('=', '-').replace('+', '_')}-seed{seed}"
            start = time.monotonic()
            extra = [StopAfter(args.stop)] + ([] if held else [AugmentFromStart()])
            hardsight.train(hardsight.TrainConfig(task="text", data=str(args.data), out=str(run), seed=seed,
                                                  epochs=args.planned, **settings), progress=False,
                            extra_callbacks=extra)
            metrics = list(csv.DictReader((run / "metrics.csv").open()))
            off = next((i + 1 for i, r in enumerate(metrics) if float(r["val/exact_match"]) > 0.3), None)
            left = next((int(r["step"]) for r in metrics if float(r["val/cer"]) < 1.0), None)
            read = next((int(r["step"]) for r in metrics if float(r["val/exact_match"]) > 0), None)
            rows.append((variant, seed, off, left, read, float(metrics[-1]["val/exact_match"]),
                         time.monotonic() - start))
            print(f"{variant} seed {seed}: off the plateau at epoch {off or '-'}", flush=True)
    print(f"\nctc_plateau: {args.data.name}, {args.stop} epochs of a schedule planned for {args.planned}; "
          f"folder {out}\n")
    print("| variant | seed | off the plateau (epoch) | CER < 1 at step | first exact at step | val exact match "
          "| seconds |")
    print("|---|---|---|---|---|---|---|")
    for variant, seed, off, left, read, em, seconds in rows:
        print(f"| {variant} | {seed} | {off or f'> {args.stop}'} | {left or '-'} | {read or '-'} | {em:.3f} "
              f"| {seconds:.0f} |")
    print("\n| variant | median epoch off the plateau | worst | seeds still on it |")
    print("|---|---|---|---|")
    for variant in args.variants.split(","):
        offs = [r[2] for r in rows if r[0] == variant]
        late = [o if o is not None else args.stop + 1 for o in offs]
        worst = max(late)
        print(f"| {variant} | {statistics.median(late):g} | {worst if worst <= args.stop else f'> {args.stop}'} "
              f"| {sum(o is None for o in offs)} of {len(offs)} |")


if __name__ == "__main__":
    main()
