"""Input contract benchmark: today's fixed input (the whole image at 32 px in grey) against the contract chosen from
the training images (crop, height, channels, contrast), on a new scheme the fixed input reads badly.

The scheme is drawn by `hardsight.data.text.styles` (seeded): a 600x80 canvas, glyphs of about 18 px spaced far
apart in pale colours on white, with thin distractor lines, 4-6 characters over 55 (the `wide_pale` style; others
by name, see style_of). Each arm trains `hardsight train text` with the defaults under one time budget, then
reads a check set drawn from another seed that no run ever trained or picked a checkpoint on. Rows: the arm, the
input it chose, exact match on its own test split and on the check set (95% Wilson interval), CER, minutes, steps.
Run it alone: a second torch process slows both tenfold.

    python benchmarks/text_contract.py [--style wide_pale] [--labels 4000] [--minutes 15] [--seeds 0]
        [--arms fixed,fitted,fitted-no-stretch,fitted-h32]
"""

from __future__ import annotations

import argparse
import json
from dataclasses import replace
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
CHECK_IMAGES = 500

# the settings each arm adds to the defaults
ARMS = {
    "fixed": {"fit_input": False},
    "fitted": {},  # the defaults
    "scratch": {"pretrained": False},
    "general": {"weights": "general"},  # from the shipped general reader
    "fitted-no-stretch": {"stretch": False},
    "fitted-h32": {"height": 32},
    "fitted-h48": {"height": 48},
}


def style_of(name: str):
    """A style by name: `wide_pale` (the scheme above), `wide_pale_dark` (the same in dark ink), or a number, the
    seed of `hardsight.data.text.styles.random_style`."""
    from hardsight.data.text.styles import TextStyle, random_style

    wide_pale = TextStyle()
    named = {"wide_pale": wide_pale,
             "wide_pale_dark": replace(wide_pale, ink=((40, 60, 120), (120, 30, 40), (30, 90, 40)))}
    if name in named:
        return named[name]
    if name.isdigit():
        return random_style(int(name))
    raise SystemExit(f"unknown style {name!r}: {sorted(named)} or a seed of random_style")


def draw(style_name: str, labels: int, seed: int, check_images: int = CHECK_IMAGES) -> tuple[Path, Path]:
    """The labelled set and the check set, drawn once into bench-runs (reused when already there)."""
    from hardsight.data.text.styles import make_styled_captchas

    style = style_of(style_name)
    base = ROOT / "bench-runs" / "text_contract-data" / f"{style_name}-{labels}-s{seed}"
    train, check = base / "labelled", base / "check"
    for folder, n, s in ((train, labels, seed), (check, check_images, seed + 1000)):
        if len(list(folder.glob("*.png"))) < n - n // 20:
            make_styled_captchas(folder, style, n, seed=s)
    taken = {p.stem for p in train.glob("*.png")}
    clash = [p for p in check.glob("*.png") if p.stem in taken]
    for p in clash:  # a check image whose text is also a training label would not be unseen
        p.unlink()
    return train, check


def train_and_check(train: Path, check: Path, out: Path, seed: int, minutes: float, settings: dict) -> dict:
    """One default run (plus `settings`) under the budget, scored on its own test split and on the check set."""
    import hardsight
    from hardsight.intervals import wilson

    cfg = hardsight.TrainConfig(task="text", data=str(train), out=str(out), seed=seed, max_minutes=minutes,
                                **settings)
    result = hardsight.train(cfg, progress=False)
    spec = json.loads(result.run.labels.read_text())["input"]
    m = hardsight.evaluate(result.run.path, check, engine="torch").metrics
    lo, hi = wilson(round(m.exact_match * m.n), m.n)
    contract = (f"{spec['height']}x{spec['width']} {'grey' if spec['channels'] == 1 else 'RGB'}"
                + (" crop" if spec.get("crop") else "") + (" stretch" if spec.get("contrast") else ""))
    return {"input": contract, "spec": spec, "own": result.test.exact_match, "em": m.exact_match, "lo": lo, "hi": hi, "n": m.n,
            "cer": m.cer, "minutes": result.minutes, "steps": result.steps, "stopped": result.stopped_by}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--style", default="wide_pale", help="wide_pale, wide_pale_dark, or a random_style seed")
    ap.add_argument("--labels", type=int, default=4000)
    ap.add_argument("--minutes", type=float, default=15.0)
    ap.add_argument("--seeds", default="0")
    ap.add_argument("--arms", default="fixed,fitted")
    ap.add_argument("--out", type=Path, default=None)
    args = ap.parse_args()
    unknown = [a for a in args.arms.split(",") if a not in ARMS]
    if unknown:
        raise SystemExit(f"unknown arm(s) {unknown}; choose from {sorted(ARMS)}")

    from hardsight.runs.folder import next_free

    out = args.out or next_free(ROOT / "bench-runs" / "text_contract")
    rows = []
    for seed in (int(s) for s in args.seeds.split(",")):
        train, check = draw(args.style, args.labels, seed)
        for arm in args.arms.split(","):
            rows.append((arm, seed, train_and_check(train, check, out / f"{arm}-s{seed}", seed, args.minutes,
                                                    ARMS[arm])))

    print(f"\n{args.style}, {args.labels:,} labels, defaults, --max-minutes {args.minutes:g}, alone")
    print("| arm | seed | input | own test split | check set [95% CI] | check CER | minutes | steps | stopped by |")
    print("|---|---|---|---|---|---|---|---|---|")
    for arm, seed, r in rows:
        print(f"| {arm} | {seed} | {r['input']} | {r['own']:.3f} | {r['em']:.3f} [{r['lo']:.3f}, {r['hi']:.3f}] "
              f"(of {r['n']}) | {r['cer']:.3f} | {r['minutes']:.1f} | {r['steps']:,} | {r['stopped']} |")


if __name__ == "__main__":
    main()
