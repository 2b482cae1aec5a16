"""Text-CAPTCHA benchmark: hardsight's default reader vs ddddocr (zero-shot) on captcha_v2.

Trains the default reader (or each of `--models`, e.g. the classic notebook's networks beside the default) on
`../shared/data/captcha_v2` with a seeded split (90% train of which a twentieth is validation, 10% test), each
on the same split and budget, then scores every reader on the same test images and times them.
ddddocr is zero-shot: its probabilities are restricted to the dataset's charset (`set_ranges`, then
the arg-max over allowed characters and the blank) before CTC decoding.

    python benchmarks/text_captcha.py [--data DIR] [--seed S] [--max-minutes M] [--models crnn,crnn_notebook]
"""

from __future__ import annotations

import argparse
import json
import os
import time
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_DATA = ROOT.parent / "shared" / "data" / "captcha_v2"


def time_ours(run: Path, files: list[Path], batch: int, repeat: int) -> float:
    """End-to-end ms per image (file decode, preprocessing, model, decoding) at a batch size."""
    from hardsight import Predictor

    pred = Predictor(run, batch_size=batch)
    pred.predict(files[:batch])  # warm-up
    work = (files * (1 + (repeat * batch) // len(files)))[: max(repeat * batch, len(files))]
    start = time.perf_counter()
    if batch == 1:
        for f in work[:repeat]:
            pred.predict([f])
        n = min(repeat, len(work))
    else:
        pred.predict(work)
        n = len(work)
    return (time.perf_counter() - start) * 1000 / n


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", type=Path, default=DEFAULT_DATA)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--max-minutes", type=float, default=None, help="optional cap; the target is <= 10 min measured")
    ap.add_argument("--out", type=Path, default=ROOT / "bench-runs" / "text_captcha")
    ap.add_argument("--models", default="crnn", help="comma-separated text models, each trained on the same split "
                                                     "and budget, e.g. crnn,crnn_notebook,cnn_notebook")
    args = ap.parse_args()
    models = [m.strip() for m in args.models.split(",") if m.strip()]
    if not args.data.is_dir():
        raise SystemExit(f"{args.data}: dataset folder not found (expected ../shared/data/captcha_v2)")

    import hardsight
    from hardsight.engine.metrics import text_metrics
    from hardsight.models import list_models
    from hardsight.runs.folder import next_free

    unknown = sorted(set(models) - set(list_models("text")))
    if unknown or not models:  # before any model spends its budget
        raise SystemExit(f"--models {args.models!r}: unknown text model(s) {unknown}; known: {list_models('text')}")

    base = next_free(args.out)
    runs = {}
    for model in models:  # the split is seeded, so every model trains and tests on the same files
        runs[model] = hardsight.train(hardsight.TrainConfig(task="text", data=str(args.data), out=str(base / model),
                                                            model=model, seed=args.seed, split=(0.85, 0.05, 0.10),
                                                            max_minutes=args.max_minutes))
    out = base / models[0]
    split = json.loads((out / "split.json").read_text())
    test = [args.data / f for f in split["test"]]
    labels = [f.stem for f in test]
    charset = json.loads((out / "labels.json").read_text())["charset"]

    rows = []
    for model, result in runs.items():
        run = base / model
        preds = [r.text for r in hardsight.Predictor(run).predict(test)]
        rows.append((f"hardsight {model} (trained)", text_metrics(preds, labels), result.minutes,
                     time_ours(run, test, 1, 100), time_ours(run, test, 64, 10)))

    from hardsight.assess.baselines import ddddocr_reader  # the zero-shot reader `hardsight assess` scores too

    try:
        read = ddddocr_reader(charset)
    except ImportError:
        print("ddddocr is not installed (pip install -e '.[bench]'): its row is left out")
    else:
        blobs = [f.read_bytes() for f in test]
        read(blobs[0])
        start = time.perf_counter()
        dd = [read(b) for b in blobs]
        ms = (time.perf_counter() - start) * 1000 / len(blobs)
        rows.append(("ddddocr 1.6 (zero-shot)", text_metrics(dd, labels), float("nan"), ms, float("nan")))

    print(f"\ncaptcha_v2: {len(test)} test images, seed {args.seed}, {torch.get_num_threads()} threads, "
          f"{os.cpu_count()} CPUs; run folders in {base}\n")
    head = f"| {'reader':34} | exact match | char acc | CER    | train min | ms/img b1 | ms/img b64 |"
    print(head)
    print("|" + "|".join("-" * (len(c)) for c in head.split("|")[1:-1]) + "|")
    for name, m, minutes, b1, b64 in rows:
        fmt = lambda v, spec: "-" if v != v else format(v, spec)  # noqa: E731  (NaN -> "-")
        print(f"| {name:34} | {m.exact_match:11.2%} | {m.char_accuracy:8.2%} | {m.cer:6.2%} | "
              f"{fmt(minutes, '9.1f'):>9} | {fmt(b1, '9.2f'):>9} | {fmt(b64, '10.2f'):>10} |")


if __name__ == "__main__":
    main()
