"""Style sweep: text schemes drawn by `hardsight.data.text.styles.random_style` from seeds 101-108 (fonts, canvas
shapes, colours, distractors), each trained at several label counts under one budget, from scratch and from the
shipped general reader (or any of benchmarks/text_contract.py's ARMS), beside the zero-shot readers of `hardsight
assess` (the general reader, and ddddocr where `pip install -e '.[bench]'` installed it), each restricted to the
style's charset.

Each point draws its labelled set and a check set of 300 images from other seeds (no text in both), trains
`hardsight train text` with the defaults and the arm's settings, and reads the check set: exact match with its 95%
Wilson interval, minutes, steps. The general reader trained on random_style seeds from 10,000 on
(benchmarks/general_reader.py), so these styles stay unseen, though drawn from the same family.
Run it alone: a second torch process slows both tenfold.

    python benchmarks/text_styles.py [--styles 101,...,108] [--labels 250,1000] [--minutes 3] [--arms scratch,general]
"""

from __future__ import annotations

import argparse
import statistics
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from text_contract import ARMS, ROOT, draw, style_of, train_and_check  # noqa: E402

SWEEP = ",".join(str(s) for s in range(101, 109))
CHECK = 300


def fixed_input(spec: dict) -> bool:
    """The contract `--no-fit-input` gives: the whole image at 32 px in grey."""
    return spec["height"] == 32 and spec["channels"] == 1 and not spec.get("crop") and not spec.get("contrast")


def zero_shot(check: Path, charset: str) -> dict[str, dict]:
    """Each zero-shot reader of `hardsight assess` (the shipped general reader; ddddocr where `pip install -e
    '.[bench]'` installed it), restricted to the charset, on the check set."""
    from hardsight.assess.baselines import TEXT_BASELINES
    from hardsight.intervals import wilson

    files = sorted(check.glob("*.png"))
    out = {}
    for name, (factory, _) in TEXT_BASELINES.items():
        try:
            read = factory(charset)
        except ImportError:
            continue
        hits = sum(read(p.read_bytes()) == p.stem for p in files)
        lo, hi = wilson(hits, len(files))
        out[name] = {"em": hits / len(files), "lo": lo, "hi": hi, "n": len(files)}
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--styles", default=SWEEP)
    ap.add_argument("--labels", default="1000", help="label counts, e.g. 250,1000,4000")
    ap.add_argument("--minutes", type=float, default=5.0)
    ap.add_argument("--arms", default="scratch,general", help="of benchmarks/text_contract.py's ARMS (scratch, "
                    "general: from the shipped general reader; fitted: the defaults); fixed after fitted: where the "
                    "data chose today's fixed input, the fitted run stands for both")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--out", type=Path, default=None)
    args = ap.parse_args()

    from hardsight.runs.folder import next_free

    out = args.out or next_free(ROOT / "bench-runs" / "text_styles")
    rows = []
    for name in args.styles.split(","):
        style = style_of(name)
        for labels in (int(n) for n in args.labels.split(",")):
            train, check = draw(name, labels, args.seed, CHECK)
            fitted = None
            for arm in args.arms.split(","):
                if arm == "fixed" and fitted and fixed_input(fitted["spec"]):
                    r = {**fitted, "input": fitted["input"] + " (the fitted run: same input, same run)"}
                else:
                    r = train_and_check(train, check, out / f"{name}-{labels}-{arm}", args.seed, args.minutes,
                                        ARMS[arm])
                fitted = r if arm == "fitted" else fitted
                rows.append((name, style, labels, arm, r))
                print(f"style {name}, {labels} labels, {arm}: {r['em']:.3f} of the check set", flush=True)
        for reader, shot in zero_shot(check, style.charset).items():
            rows.append((name, style, 0, f"{reader} zero-shot", {**shot, "input": "its own", "minutes": 0.0,
                                                                 "steps": 0}))

    print(f"\nstyle sweep, defaults, --max-minutes {args.minutes:g} a point, seed {args.seed}, alone")
    print("| style | canvas, font, glyph px | labels | reader | input | check set [95% CI] | minutes | steps |")
    print("|---|---|---|---|---|---|---|---|")
    for name, style, labels, arm, r in rows:
        w, h = style.canvas
        print(f"| {name} | {w}x{h}, {style.font.removesuffix('.ttf')}, {style.glyph_px} | {labels or '-'} | {arm} "
              f"| {r['input']} | {r['em']:.3f} [{r['lo']:.3f}, {r['hi']:.3f}] (of {r['n']}) | {r['minutes']:.1f} "
              f"| {r['steps']:,} |")
    for arm in args.arms.split(",") + ["general zero-shot", "ddddocr zero-shot"]:
        ems = sorted(r["em"] for *_, a, r in rows if a == arm)
        if ems:
            print(f"{arm}: median {statistics.median(ems):.3f}, worst {ems[0]:.3f} over {len(ems)} points")


if __name__ == "__main__":
    main()
