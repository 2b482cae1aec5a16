"""Rich tables shared by the verbs that print metrics."""

from __future__ import annotations

from rich.table import Table

from hardsight.console import console
from hardsight.metrics import TextMetrics


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
    console.print(text_metrics_table(result.test, f"test split, best checkpoint ({result.epochs} epochs, "
                                                  f"{result.minutes:.1f} min, stopped by {result.stopped_by})"))
