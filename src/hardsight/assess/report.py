"""The assessment's report: the curve as a table, the headline in words and numbers, plots, a cost estimate.

Everything here is read from an `Assessment`, so a rerun that trained nothing rewrites the same report.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from hardsight.assess.curve import first_reaching, labels_to
from hardsight.console import console
from hardsight.runs.folder import write_json

TARGETS = (0.5, 0.9)  # the rates the headline asks labels for
COLUMNS = {"exact_match": "exact match", "char_accuracy": "char accuracy", "cer": "CER", "top1": "top-1",
           "macro_f1": "macro-F1"}  # the task scores shown, in this order, as the report names them


def headline(result) -> dict[str, Any]:
    """Labels for each TARGETS rate, minutes to 90%, and the best attack found (trained or zero-shot)."""
    curve = [(p.labels, p.scores.rate) for p in result.points]
    attacks = [(p.scores.rate, -p.labels, f"trained on {p.labels:,} labels", p.scores) for p in result.points]
    attacks += [(b.scores.rate, 0, b.name, b.scores) for b in result.baselines if b.scores]
    best = max(attacks, key=lambda a: a[:2]) if attacks else None
    reached = first_reaching([(p.labels, p.scores.rate, p.minutes) for p in result.points], 0.9)
    return {"labels_to": {f"{t:.0%}": labels_to(curve, t).to_json() for t in TARGETS},
            "minutes_to_90": None if reached is None else {"labels": reached[0], "minutes": reached[1]},
            "best": None if best is None else {"attack": best[2], "rate": best[0], "rate_low": best[3].interval[0],
                                               "rate_high": best[3].interval[1], "ms_per_solve": best[3].ms_per_solve}}


def costs(result) -> list[dict[str, Any]] | None:
    """Per point, from the user's prices: the one-off cost (labels, and training core-hours) and the cost of
    1,000 solved challenges (core time of the attempts it takes, failures included); None without prices."""
    cfg = result.cfg
    if cfg.core_hour_price is None and cfg.label_price is None:
        return None
    core, label = cfg.core_hour_price or 0.0, cfg.label_price or 0.0
    rows = []
    for p in result.points:
        one_off = p.labels * label + p.minutes / 60 * p.training_threads * core
        per_solve = (p.scores.ms_per_solve or 0.0) / 3.6e6 * core
        rows.append({"labels": p.labels, "one_off": one_off,
                     "per_1000_solved": per_solve * 1000 / p.scores.rate if p.scores.rate else None})
    return rows


def to_json(result) -> dict[str, Any]:
    return {"settings": result.cfg.to_dict(), "solve": result.solve_name, "held_out": result.held_out,
            "pool": result.pool, "sizes_dropped": result.dropped, "points": [p.to_json() for p in result.points],
            "baselines": [{"name": b.name, "note": b.note, "scores": b.scores.to_json() if b.scores else None}
                          for b in result.baselines],
            "headline": headline(result), "costs": costs(result)}


def write_report(result) -> Path:
    """ASSESS/assess.json, report.md and the two curve plots."""
    out = result.out
    write_json(out / "assess.json", to_json(result))
    if result.points:
        _plot(result, "labels", out / "curve_labels.png")
        _plot(result, "minutes", out / "curve_minutes.png")
    (out / "report.md").write_text(markdown(result))
    return out / "report.md"


def _pct(rate: float, low: float, high: float) -> str:
    return f"{rate:.1%} [{low:.1%}, {high:.1%}]"


def start_line(base) -> str:
    """Which weights every point started from, so a curve is read with its start."""
    if not base.pretrained:
        return f"Every point trains `{base.model}` from random weights."
    return (f"Every point fine-tunes `{base.model}` from "
            + (f"`{base.weights}`" if base.weights else "the task's pretrained start (text: the shipped general "
                                                         "reader; image: ImageNet weights)") + ".")


def markdown(result) -> str:
    cfg, head = result.cfg, headline(result)
    task_cols = _task_columns(result)
    lines = [f"# How breakable is `{cfg.data}`?", "",
             f"A solve is: {result.solve_name}. {result.held_out:,} held-out {result.unit}s (seed {cfg.seed}, "
             f"{cfg.holdout:.0%} of the data, listed in `held_out.json`) are never trained on; the "
             f"{result.pool:,} others are the labelled pool, and each labelled set holds every smaller one. A tenth "
             "of each set validates (counted in its labels). Rates carry 95% Wilson intervals"
             + (f"; {result.solve_note}" if result.solve_note else "") + ".", "", start_line(cfg.train_config()), "",
             "## Headline", ""]
    for key, r in head["labels_to"].items():
        lines.append(f"- Labels for a {key} solve rate: {r['note']}.")
    m90 = head["minutes_to_90"]
    lines.append("- Training minutes to 90%: " + (f"{m90['minutes']:.1f} (the {m90['labels']:,}-label point)"
                                                    if m90 else "not reached on this curve") + ".")
    if head["best"]:
        b = head["best"]
        lines.append(f"- Best attack: {b['attack']}, {_pct(b['rate'], b['rate_low'], b['rate_high'])} solved"
                     + (f", {b['ms_per_solve']:.1f} ms a solve on one core" if b["ms_per_solve"] else "") + ".")
    lines += ["", "## The curve", "",
              "| labels | train / val | solved | " + " | ".join(COLUMNS[c] for c in task_cols) + " | train min | epochs | stopped by "
              "| ms / solve | solves / h / core |", "|---" * (8 + len(task_cols)) + "|"]
    for p in result.points:
        s = p.scores
        lines.append(f"| {p.labels:,} | {p.train:,} / {p.val:,} | {_pct(s.rate, *s.interval)} | "
                     + " | ".join(_fmt(s.metrics, c) for c in task_cols)
                     + f" | {p.minutes:.1f} | {p.epochs} | {p.stopped_by}{'' if p.converged else ' (not converged)'} | "
                     + (f"{s.ms_per_solve:.1f} | {3.6e6 / s.ms_per_solve:,.0f}" if s.ms_per_solve else "- | -") + " |")
    if result.dropped:
        lines += ["", f"Sizes {result.dropped} are over the labelled pool; its largest point uses all of it."]
    lines += ["", "## Zero-shot baselines (no labels)", ""]
    for b in result.baselines:
        if b.scores:
            s = b.scores
            lines.append(f"- {b.name}: {_pct(s.rate, *s.interval)} solved, "
                         + ", ".join(f"{COLUMNS[c]} {_fmt(s.metrics, c)}" for c in task_cols if c in s.metrics)
                         + (f", {s.ms_per_solve:.1f} ms a solve" if s.ms_per_solve else "") + f" ({b.note}).")
        else:
            lines.append(f"- {b.name}: {b.note}.")
    if not result.baselines:
        lines.append("- not run (--no-baselines).")
    money = costs(result)
    if money:
        lines += ["", "## Cost estimate (from your prices, not measured)", "",
                  f"At {cfg.core_hour_price or 0:g} per CPU core-hour and {cfg.label_price or 0:g} per label; training "
                  "core-hours are training minutes times the threads it ran on; a solved challenge costs the core "
                  "time of every attempt it takes (1 / solve rate).", "",
                  "| labels | one-off (labels + training) | per 1,000 solved |", "|---|---|---|"]
        lines += [f"| {c['labels']:,} | {c['one_off']:.2f} | "
                  + (f"{c['per_1000_solved']:.4f}" if c["per_1000_solved"] is not None else "never solves") + " |"
                  for c in money]
    if result.points:
        top = result.points[-1]
        lines += ["", f"## At the largest size ({top.labels:,} labels)", "", f"Run folder: `{top.run}`.", ""]
        if top.scores.confusions:
            key = "read" if "read" in top.scores.confusions[0] else "f1"
            if key == "read":
                lines.append("Most confused characters (true -> read, count): " + ", ".join(
                    f"`{c['true']}`->`{c['read']}` {c['count']}" for c in top.scores.confusions))
            else:
                lines.append("Per-class F1 on held-out tiles: " + ", ".join(
                    f"{c['class']} {c['f1']:.2f}" for c in top.scores.confusions))
            lines.append("")
        if top.scores.failures:
            lines += ["Sample failures:", ""]
            lines += [f"- {_failure(f)}" for f in top.scores.failures]
        lines += ["", "![solve rate vs labelled samples](curve_labels.png)", "",
                  "![solve rate vs training minutes](curve_minutes.png)", ""]
    return "\n".join(lines) + "\n"


def _task_columns(result) -> list[str]:
    found = result.points[0].scores.metrics if result.points else {}
    return [c for c in COLUMNS if c in found]


def _fmt(metrics: dict[str, float], name: str) -> str:
    v = metrics.get(name)
    if v is None:
        return "-"
    if name == "top1" and "top1_low" in metrics:
        return _pct(v, metrics["top1_low"], metrics["top1_high"])
    return f"{v:.3f}" if name == "macro_f1" else f"{v:.1%}"


def _failure(f: dict[str, Any]) -> str:
    if "truth" in f:
        return f"`{Path(f['file']).name}`: `{f['truth']}` read as `{f['read']}`"
    return f"target {f['target']}: cells {f['answer']}, chosen {f['chosen']}"


def _plot(result, x: str, path: Path) -> Path:
    """Solve rate (with its interval) against labels (log scale) or training minutes, zero-shot lines across."""
    from hardsight.engine.plots import plt, save_figure

    pts = result.points
    xs = [p.labels if x == "labels" else p.minutes for p in pts]
    rates = [p.scores.rate for p in pts]
    low = [p.scores.rate - p.scores.interval[0] for p in pts]
    high = [p.scores.interval[1] - p.scores.rate for p in pts]
    fig, ax = plt.subplots(figsize=(6.4, 3.8))
    ax.errorbar(xs, rates, yerr=[low, high], marker="o", capsize=3, label="trained (95% interval)")
    for b, style in zip([b for b in result.baselines if b.scores], ("--", ":", "-.")):
        ax.axhline(b.scores.rate, linestyle=style, color="grey", label=b.name)
    if x == "labels":
        ax.set_xscale("log")
    ax.set(xlabel="labelled samples" if x == "labels" else "training minutes", ylabel="solve rate", ylim=(0, 1.02),
           title=f"{Path(result.cfg.data).name}: solve rate vs {x}")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8, loc="lower right")
    return save_figure(fig, path)


def print_assessment(result) -> None:
    """The curve as a rich table and the headline lines."""
    from rich.table import Table

    table = Table("labels", "solved [95% CI]", "train min", "ms / solve", "stopped by",
                  title=f"assess {result.cfg.task}: {result.solve_name}, {result.held_out} held out")
    for p in result.points:
        s = p.scores
        table.add_row(f"{p.labels:,}", _pct(s.rate, *s.interval), f"{p.minutes:.1f}",
                      f"{s.ms_per_solve:.1f}" if s.ms_per_solve else "-",
                      p.stopped_by + ("" if p.converged else " (not converged)"))
    for b in result.baselines:
        if b.scores:
            table.add_row(b.name, _pct(b.scores.rate, *b.scores.interval), "-",
                          f"{b.scores.ms_per_solve:.1f}" if b.scores.ms_per_solve else "-", "zero-shot")
    console.print(table)
    head = headline(result)
    for key, r in head["labels_to"].items():
        console.print(f"labels for {key}: {r['note']}")
    if head["best"]:
        console.print(f"best attack: {head['best']['attack']} ({head['best']['rate']:.1%})")
    console.print(f"report: {result.report}")
