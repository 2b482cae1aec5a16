"""CTC plateau benchmark: how many optimiser steps a text reader spends on CTC's all-blank plateau, per schedule.

Trains the default reader on `../shared/data/captcha_v2` (seed 0) for `--stop` epochs under each variant (the
schedule planned for `--planned` epochs, so a variant sees the warm-up a full run would) and prints, per epoch,
the validation CER and exact match, then the steps until CER first left 1.0 and until the first exact read.
Steps do not depend on how busy the machine is; the seconds column does.

    python benchmarks/ctc_plateau.py [--stop 25] [--planned 100] [--variants warmup=150,warmup=700]

A variant is `warmup=N` (optimiser steps of warm-up, the rest of the settings as `hardsight train text`'s
defaults) or `lr=X` combined with it by `+` (`warmup=150+lr=1e-3`).
"""

from __future__ import annotations

import argparse
import csv
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


def settings_of(variant: str) -> dict:
    names = {"warmup": ("warmup_steps", int), "lr": ("lr", float)}
    out = {}
    for part in variant.split("+"):
        key, value = part.split("=", 1)
        name, kind = names[key]
        out[name] = kind(value)
    return out


def main() -> None:
    import hardsight
    from hardsight.runs.folder import next_free

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", type=Path, default=ROOT.parent / "shared" / "data" / "captcha_v2")
    ap.add_argument("--stop", type=int, default=25, help="epochs trained per variant")
    ap.add_argument("--planned", type=int, default=100, help="epochs the schedule is planned for")
    ap.add_argument("--variants", default="warmup=700,warmup=150")
    ap.add_argument("--out", type=Path, default=None)
    args = ap.parse_args()
    out = args.out or next_free(ROOT / "bench-runs" / "ctc_plateau")
    summary = []
    for variant in args.variants.split(","):
        run = out / variant.replace("=", "-").replace("+", "_")
        start = time.monotonic()
        hardsight.train(hardsight.TrainConfig(task="text", data=str(args.data), out=str(run), seed=0,
                                              epochs=args.planned, **settings_of(variant)),
                        progress=False, extra_callbacks=[StopAfter(args.stop)])
        rows = list(csv.DictReader((run / "metrics.csv").open()))
        left = next((int(r["step"]) for r in rows if float(r["val/cer"]) < 1.0), None)
        read = next((int(r["step"]) for r in rows if float(r["val/exact_match"]) > 0), None)
        summary.append((variant, left, read, rows[-1], time.monotonic() - start))
        print(f"\n{variant}: epoch, step, lr, val CER, val exact match")
        for r in rows:
            print(f"  {r['epoch']:>3} {r['step']:>6} {float(r['lr']):.2e} {float(r['val/cer']):.3f} "
                  f"{float(r['val/exact_match']):.3f}")
    print(f"\nctc_plateau: {args.data.name}, {args.stop} epochs of a schedule planned for {args.planned}; folder {out}\n")
    print(f"{'variant':<22} {'CER < 1 at step':>16} {'first exact at step':>20} {'final exact':>12} {'seconds':>8}")
    for variant, left, read, last, seconds in summary:
        print(f"{variant:<22} {left or '-':>16} {read or '-':>20} {float(last['val/exact_match']):>12.3f} "
              f"{seconds:>8.0f}")


if __name__ == "__main__":
    main()
