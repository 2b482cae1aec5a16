"""Rich tables shared by the verbs that print metrics."""

from __future__ import annotations

from rich.table import Table

from hardsight.console import console
from hardsight.engine.metrics import TextMetrics


def text_metrics_table(m: TextMetrics, title: str) -> Table:
    t = Table(title=title, show_header=True)
    t.add_column("metric")
    t.add_column("value", justify="right")
    t.add_row("images", str(m.n))
    t.add_row("exact match", f"{m.exact_match:.2%}")
    t.add_row("char accuracy (per position)", f"{m.char_accuracy:.2%}")
    t.add_row("character error rate", f"{m.cer:.2%}")
    if m.confusions:
        t.add_row("most confused", ", ".join(f"{a}->{b} ({c})" for a, b, c in m.confusions[:5]))
    return t


def print_train_result(result) -> None:
    title = (f"test split, best checkpoint ({result.epochs} epochs, {result.minutes:.1f} min, "
             f"stopped by {result.stopped_by})")
    if isinstance(result.test, TextMetrics):
        console.print(text_metrics_table(result.test, title))
    elif result.test is not None:
        print_image_metrics(result.test, title)
    if result.steps and not result.converged:
        console.print(f"[yellow]not converged: the time budget stopped training after {result.steps:,} of the "
                      f"{result.planned_steps:,} planned steps; more --max-minutes (or fewer --epochs) lets the "
                      "schedule finish[/yellow]")


def print_image_evaluation(ev, title: str) -> None:
    """An ImageEvaluation: the metrics, then what was left out and where the confusion matrix went."""
    print_image_metrics(ev.metrics, title)
    if ev.unknown_classes:
        console.print(f"[yellow]classes the model does not know (images skipped): "
                      f"{', '.join(f'{k} ({n})' for k, n in ev.unknown_classes.items())}[/yellow]")
    if ev.figure:
        console.print(f"confusion matrix: {ev.figure}")


def print_image_metrics(m, title: str) -> None:
    t = Table(title=title)
    t.add_column("metric")
    t.add_column("value", justify="right")
    t.add_row("images", str(m.n))
    t.add_row("accuracy" if m.mean_average_precision is None else "exact match (all labels)", f"{m.accuracy:.2%}")
    t.add_row("balanced accuracy", f"{m.balanced_accuracy:.2%}")
    t.add_row("macro-F1", f"{m.macro_f1:.3f}")
    for k, v in m.top_k.items():
        t.add_row(f"{k} accuracy", f"{v:.2%}")
    if m.mean_average_precision is not None:
        t.add_row("mAP", f"{m.mean_average_precision:.3f}")
    console.print(t)
    pc = Table("class", "precision", "recall", "F1", "support", title="per class")
    for c, v in m.per_class.items():
        pc.add_row(c, f"{v['precision']:.3f}", f"{v['recall']:.3f}", f"{v['f1']:.3f}", str(v["support"]))
    console.print(pc)
