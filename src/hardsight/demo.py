"""The demo: everything a first-time user should see work, on data made on the spot."""

from __future__ import annotations

import random
from pathlib import Path

from rich.table import Table

from hardsight.config import TrainConfig
from hardsight.console import console
from hardsight.data.synthetic import make_text_captchas
from hardsight.runs.folder import next_free


def run_demo(out: Path | None = None, images: int = 3000, minutes: float = 6.0, epochs: int = 16, seed: int = 0) -> Path:
    """Generate, train, evaluate on a fresh set, predict a few; returns the run folder.

    `epochs` sets the length: measured on two idle cores with today's default recipe (from the shipped general
    reader: a short warm-up to a lower peak), 16 epochs trained in 2.5 and 2.1 min and read 96.5% and 99.5% of the
    unseen images (two runs, the second from a fresh clone; from scratch, the default until 46c5010: 2.2 min and
    98.5%; the seed is fixed, multi-threaded CPU kernels are not bit-exact); `minutes` is only a cap for slow or
    busy machines: a tight budget cuts training short (from scratch it cut CTC off on its all-blank plateau: 0% read
    when a busy machine got 11 of the 20 epochs into 2.5 min)."""
    from hardsight.engine.evaluator import evaluate
    from hardsight.engine.predictor import Predictor
    from hardsight.engine.trainer import train

    home = Path(out) if out else next_free(Path("runs") / "demo")
    if home.exists() and any(home.iterdir()):
        from hardsight.errors import RunError

        raise RunError(f"{home} already exists and is not empty; choose another --out")
    console.rule("[bold]1. synthetic CAPTCHAs")
    with console.status(f"generating {images} training images with the captcha package"):
        make_text_captchas(home / "train", images, seed=seed)
        make_text_captchas(home / "fresh", 200, seed=seed + 1)
    console.print(f"{images} images in {home / 'train'}, 200 unseen ones in {home / 'fresh'}")

    console.rule("[bold]2. training a CRNN reader")
    # the default recipe, as `hardsight train text` runs it: only shorter (`epochs`) and capped (`minutes`)
    result = train(TrainConfig(task="text", data=str(home / "train"), out=str(home / "run"), max_minutes=minutes,
                               epochs=epochs, seed=seed, split=(0.9, 0.05, 0.05)))
    from hardsight.cli.summary import print_train_result, text_metrics_table

    print_train_result(result)

    console.rule("[bold]3. evaluating on images it has never seen")
    ev = evaluate(result.run.path, home / "fresh")
    console.print(text_metrics_table(ev.metrics, f"{home / 'fresh'}"))

    console.rule("[bold]4. reading a few images")
    picks = random.Random(seed).sample(sorted((home / "fresh").glob("*.png")), 8)
    table = Table("file", "read", "truth", "confidence")
    for r in Predictor(result.run.path).predict(picks):
        truth = Path(r.file).stem
        mark = "[green]" if r.text == truth else "[red]"
        table.add_row(Path(r.file).name, f"{mark}{r.text}", truth, f"{r.confidence:.3f}")
    console.print(table)
    console.print(f"run folder: [bold]{result.run.path}[/bold] (report.md, plots/, checkpoints/)")
    console.print(f"next: hardsight predict {result.run.path} {home / 'fresh'} --json")
    return result.run.path
