"""Attack-cost curves: `hardsight assess` on captcha_v2, on a synthetic text style, and on reCAPTCHA tiles.

Each scheme runs `hardsight assess` as a user would (the CLI, one held-out set of 20% seeded by --seed, nested
labelled subsets, an equal share of the budget that is left per point) into bench-runs/assess-<scheme>-N, then
the curve is printed as a table from its assess.json with the zero-shot baselines that are installed (ddddocr,
restricted to the scheme's charset: pip install -e '.[bench]'). The synthetic style is drawn by
`hardsight.data.synthetic.make_text_captchas` (the demo's generator, 1,500 images, seed 7) into bench-runs; it is
never committed.

    python benchmarks/assess.py [--schemes captcha_v2,synthetic,tiles] [--seed 0]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT.parent / "shared" / "data"
# scheme -> (assess verb, data, sizes, budget minutes, extra options)
SCHEMES = {
    "captcha_v2": ("text", DATA / "captcha_v2", "50,100,250,500,all", 30.0, []),
    "synthetic": ("text", ROOT / "bench-runs" / "assess-synthetic-data", "50,200,800,all", 30.0, []),
    "tiles": ("image", DATA / "recaptcha_tiles", "100,300,1000,3000,all", 20.0, ["--grid", "3x3"]),
}


def synthetic_data(folder: Path) -> None:
    from hardsight.data.synthetic import make_text_captchas

    if not folder.is_dir() or not any(folder.iterdir()):
        make_text_captchas(folder, 1500, seed=7)


def table(report: dict) -> str:
    rows = ["| labels | solved [95% CI] | task scores | train min | stopped by | ms / solve |", "|---|---|---|---|---|---|"]
    for p in report["points"]:
        s = p["scores"]
        scores = ", ".join(f"{k} {v:.3f}" for k, v in s["metrics"].items() if not k.endswith(("_low", "_high")))
        rows.append(f"| {p['labels']:,} | {s['rate']:.1%} [{s['rate_low']:.1%}, {s['rate_high']:.1%}] | {scores} | "
                    f"{p['minutes']:.1f} | {p['stopped_by']} | {s['ms_per_solve']:.1f} |")
    for b in report["baselines"]:
        s = b["scores"]
        rows.append(f"| {b['name']} | " + (f"{s['rate']:.1%} [{s['rate_low']:.1%}, {s['rate_high']:.1%}] | "
                                          + ", ".join(f"{k} {v:.3f}" for k, v in s["metrics"].items())
                                          + f" | - | zero-shot | {s['ms_per_solve']:.1f} |" if s else
                                          f"{b['note']} | | | | |"))
    head = report["headline"]
    rows += ["", *[f"labels to {k}: {r['note']}" for k, r in head["labels_to"].items()]]
    m90 = head["minutes_to_90"]
    rows.append("minutes to 90%: " + (f"{m90['minutes']:.1f} ({m90['labels']} labels)" if m90 else "not reached"))
    if head["best"]:
        rows.append(f"best attack: {head['best']['attack']} ({head['best']['rate']:.1%})")
    return "\n".join(rows)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--schemes", default=",".join(SCHEMES), help=f"comma-separated: {', '.join(SCHEMES)}")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--budget-scale", type=float, default=1.0, help="multiply every scheme's training budget")
    ap.add_argument("--out", type=Path, default=ROOT / "bench-runs")
    args = ap.parse_args()
    from hardsight.runs.folder import next_free

    names = [s.strip() for s in args.schemes.split(",") if s.strip()]
    unknown = sorted(set(names) - set(SCHEMES))
    if unknown:
        raise SystemExit(f"--schemes: unknown {unknown}; known: {list(SCHEMES)}")
    done = {}
    for name in names:
        verb, data, sizes, budget, extra = SCHEMES[name]
        if name == "synthetic":
            synthetic_data(data)
        if not data.is_dir():
            raise SystemExit(f"{data}: dataset folder not found")
        out = next_free(args.out / f"assess-{name}")
        cmd = [sys.executable, "-m", "hardsight", "assess", verb, str(data), "--out", str(out), "--sizes", sizes,
               "--budget-minutes", f"{budget * args.budget_scale:g}", "--seed", str(args.seed), *extra]
        print("$", " ".join(cmd), flush=True)
        subprocess.run(cmd, check=True)
        done[name] = json.loads((out / "assess.json").read_text())
    for name, report in done.items():
        print(f"\n## {name}: {report['solve']}; {report['held_out']:,} held out, {report['pool']:,} labelled "
              f"({os.cpu_count()} CPUs)\n")
        print(table(report))


if __name__ == "__main__":
    main()
