"""The shipped general reader (`general`): a CRNN trained with hardsight's own code on a broad, seeded family of text
styles, and the command that rebuilds it; without --train, its zero-shot table beside ddddocr.

The family (drawn from --seed): FAMILY_STYLES schemes of `hardsight.data.text.styles.random_style` (13 fonts, canvases
160-600 px wide and 40-120 high, dark, middling, pale and inverted ink, lines and specks, rotation, overlap and wide
spacing), each over 0-9a-zA-Z with 4-8 characters, and the `captcha` package's warped, noisy style in four of the
same fonts at four heights. The sweep's styles (random_style seeds 101-108, benchmarks/text_styles.py) are never
drawn: the family's seeds start at FAMILY_SEED0. captcha_v2 is not drawn from anything here.

    python benchmarks/general_reader.py --train [--minutes 38] [--seed 0]  # draw, train, write the shipped folder
    python benchmarks/general_reader.py                                    # zero-shot on captcha_v2 and the sweep

Run it alone: a second torch process slows both tenfold.
"""

from __future__ import annotations

import argparse
import random
import shutil
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(Path(__file__).resolve().parent))

FAMILY_SEED0 = 10_000  # random_style seeds of the family: FAMILY_SEED0, FAMILY_SEED0 + 1, ...
FAMILY_STYLES = 500
PER_STYLE = 64
CAPTCHA_FONTS = ("DejaVuSans-Bold.ttf", "DejaVuSerif.ttf", "DejaVuSansMono.ttf", "STIXGeneralBol.ttf")
CAPTCHA_HEIGHTS = (50, 60, 70, 80)
PER_CAPTCHA_HEIGHT = 3000
SHIPPED = ROOT / "src" / "hardsight" / "runs" / "shipped" / "general"
CAPTCHA_V2 = ROOT.parent / "shared" / "data" / "captcha_v2"


def draw_family(out: Path, seed: int) -> int:
    """The family's images under `out` (one folder per style; drawn again only where a folder is short)."""
    from hardsight.data.synthetic import make_text_captchas
    from hardsight.data.text.styles import FULL_CHARSET, font_path, make_styled_captchas, random_style

    rng = random.Random(seed)
    total = 0
    for i in range(FAMILY_STYLES):
        folder, s = out / f"style-{FAMILY_SEED0 + i}", rng.randrange(2**31)
        if len(list(folder.glob("*.png"))) < PER_STYLE:
            make_styled_captchas(folder, random_style(FAMILY_SEED0 + i, FULL_CHARSET, (4, 8)), PER_STYLE, seed=s)
        total += PER_STYLE
        if i % 50 == 0:
            print(f"drawing the family: style {i + 1} of {FAMILY_STYLES}", flush=True)
    fonts = [font_path(f) for f in CAPTCHA_FONTS]
    for height in CAPTCHA_HEIGHTS:
        folder, s = out / f"captcha-{height}", rng.randrange(2**31)
        if len(list(folder.glob("*.png"))) < PER_CAPTCHA_HEIGHT:
            make_text_captchas(folder, PER_CAPTCHA_HEIGHT, FULL_CHARSET, (4, 8), height=height,
                               char_width=int(height * 0.6), seed=s, fonts=fonts)
        total += PER_CAPTCHA_HEIGHT
    return total


def train_general(work: Path, minutes: float, seed: int, resume: bool) -> Path:
    """Train the reader on the family with the project's own trainer; returns the run folder."""
    import hardsight
    from hardsight.data.text.styles import FULL_CHARSET

    family = work / "family"
    print(f"{draw_family(family, seed)} images in {family}", flush=True)
    # one contract for every scheme: the whole image at 32 px in grey, each image's range stretched (pale and dark
    # ink alike reach the reader at full contrast); a 2% validation split keeps epochs cheap
    cfg = hardsight.TrainConfig(task="text", data=str(family), out=str(work / "run"), charset=FULL_CHARSET,
                                fit_input=False, height=32, channels=1, stretch=True, split=(0.96, 0.02, 0.02),
                                batch_size=32, max_minutes=minutes, epochs=60, seed=seed, patience=8)
    result = hardsight.train(cfg, resume=resume, progress=False)
    print(f"trained {result.minutes:.1f} min, {result.steps:,} steps; own test split: exact "
          f"{result.test.exact_match:.3f}, CER {result.test.cer:.3f}", flush=True)
    return result.run.path


def ship(run: Path, dest: Path = SHIPPED, seed: int = 0) -> None:
    """Write the shipped run folder: the run's settings, contract, environment and test figures, and its best
    checkpoint less the optimiser state (the weights, the module's settings, Lightning's version)."""
    import torch
    import yaml

    if dest.exists():
        shutil.rmtree(dest)
    (dest / "checkpoints").mkdir(parents=True)
    cfg = yaml.safe_load((run / "config.yaml").read_text())
    cfg.update(data=f"benchmarks/general_reader.py --train --seed {seed}", out=None)
    (dest / "config.yaml").write_text(yaml.safe_dump(cfg, sort_keys=False))
    for name in ("labels.json", "env.json", "test_metrics.json"):
        shutil.copy(run / name, dest / name)
    ckpt = torch.load(run / "checkpoints" / "best.ckpt", map_location="cpu", weights_only=True)
    kept = {k: ckpt[k] for k in ("state_dict", "hyper_parameters", "pytorch-lightning_version", "epoch",
                                 "global_step")}
    torch.save(kept, dest / "checkpoints" / "best.ckpt")
    size = (dest / "checkpoints" / "best.ckpt").stat().st_size / 2**20
    print(f"wrote {dest} ({size:.1f} MB of weights)")


def zero_shot_table(check_sets: dict[str, Path]) -> None:
    """`general` and ddddocr, each restricted to the set's charset (as `hardsight assess` scores them), and `general`
    as `hardsight evaluate general` reads (all 62 characters), on each labelled folder."""
    from text_styles import zero_shot

    import hardsight
    from hardsight.intervals import wilson

    print("| set | images | general, 62 characters [95% CI] | general, the set's charset | ddddocr, the set's charset |")
    print("|---|---|---|---|---|")
    for name, folder in check_sets.items():
        m = hardsight.evaluate("general", folder, engine="torch").metrics
        lo, hi = wilson(round(m.exact_match * m.n), m.n)
        charset = "".join(sorted({c for p in folder.glob("*.png") for c in p.stem}))
        shots = zero_shot(folder, charset)
        cells = [f"{r['em']:.3f} [{r['lo']:.3f}, {r['hi']:.3f}]" if r else "not installed"
                 for r in (shots.get("general"), shots.get("ddddocr"))]
        print(f"| {name} | {m.n} | {m.exact_match:.3f} [{lo:.3f}, {hi:.3f}] | {cells[0]} | {cells[1]} |", flush=True)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--train", action="store_true", help="draw the family, train, and write the shipped folder")
    ap.add_argument("--minutes", type=float, default=38.0)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--resume", action="store_true", help="continue an interrupted --train")
    ap.add_argument("--work", type=Path, default=ROOT / "bench-runs" / "general_reader")
    ap.add_argument("--styles", default="101,102,103,104,105,106,107,108", help="sweep styles read zero-shot")
    args = ap.parse_args()
    if args.train:
        ship(train_general(args.work, args.minutes, args.seed, args.resume), seed=args.seed)
        return
    from text_contract import draw

    sets = {"captcha_v2": CAPTCHA_V2} if CAPTCHA_V2.is_dir() else {}
    for style in args.styles.split(","):
        sets[f"style {style}"] = draw(style, 250, 0, 300)[1]
    zero_shot_table(sets)


if __name__ == "__main__":
    main()
