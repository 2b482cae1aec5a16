"""`hardsight runs DIR`: every run folder below DIR (studies' and tunes' included), one row each.

A row holds the run's key settings (from config.yaml) and its final numbers: test_metrics.json where the
run wrote one, else the best validation epoch of metrics.csv (a run still training, or stopped before its
report). Folders that cannot be read are listed with a note.
"""

from __future__ import annotations

import csv
import difflib
import json
import os
from dataclasses import asdict, dataclass, fields, replace
from datetime import datetime
from pathlib import Path
from typing import Any

from hardsight.config import SIZE_SETTING, read_settings
from hardsight.errors import ConfigError, RunError
from hardsight.runs.folder import RunFolder

HIGHER_IS_BETTER = {"exact_match", "accuracy", "macro_f1"}  # sorted best first unless --asc
SKIP_DIRS = {"checkpoints", "plots", "landmarks", "evaluations", "test_predictions", "__pycache__"}  # never hold runs


@dataclass(frozen=True)
class RunRow:
    """One run folder; None where the folder does not say."""

    path: str
    task: str | None = None
    model: str | None = None
    created: str | None = None  # when the run started (its first files), local time, ISO 8601
    epochs: int | None = None
    stopped_by: str | None = None  # "early stopping", "time budget", "max epochs" or "interrupted"
    lr: float | None = None
    batch_size: int | None = None
    size: int | None = None  # input size in px: image_size (image runs) or height (text runs)
    seed: int | None = None
    optimizer: str | None = None
    exact_match: float | None = None  # text runs; fractions in 0..1
    cer: float | None = None
    accuracy: float | None = None  # image runs
    macro_f1: float | None = None
    metrics_from: str | None = None  # "test": best checkpoint on the test split; "val": best epoch in metrics.csv
    minutes: float | None = None  # training time
    onnx: bool = False  # model.onnx exported
    note: str = ""

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


COLUMNS = [f.name for f in fields(RunRow)]


def list_runs(root: str | Path = "runs", sort: str = "created", descending: bool | None = None,
              task: str | None = None) -> list[RunRow]:
    """Every run folder below `root`, sorted by the column `sort` (empty values last).

    Args:
        descending: None sorts metrics where higher is better (exact_match, accuracy, macro_f1) best first,
            everything else ascending.
    """
    root = Path(root)
    if not root.is_dir():
        raise RunError(f"{root}: no such folder (run folders are made under runs/ by `hardsight train`)")
    if sort not in COLUMNS:
        near = [c for c in COLUMNS if c.startswith(sort.lower())] or difflib.get_close_matches(sort, COLUMNS, n=1)
        raise ConfigError(f"--sort {sort!r}: not a column" + (f" (did you mean {near[0]!r}?)" if near else "")
                          + f"; columns: {', '.join(COLUMNS)}")
    if task not in (None, "text", "image"):
        raise ConfigError(f"--task {task!r}: expected text or image")
    rows = [read_run(p) for p in find_run_folders(root)]
    rows = [r for r in rows if task is None or r.task == task]
    return sort_rows(rows, sort, sort in HIGHER_IS_BETTER if descending is None else descending)


def sort_rows(rows: list[RunRow], key: str, descending: bool = False) -> list[RunRow]:
    """By `key`, then path; rows without a value for `key` go last either way."""
    rows = sorted(rows, key=lambda r: r.path)
    known = [r for r in rows if getattr(r, key) is not None]
    return sorted(known, key=lambda r: getattr(r, key), reverse=descending) + \
        [r for r in rows if getattr(r, key) is None]


def find_run_folders(root: Path) -> list[Path]:
    """Folders below `root` (itself included) laid out as runs: a checkpoints/ folder beside config.yaml
    (or, where config.yaml is missing, beside metrics.csv, labels.json or split.json)."""
    found = []
    for folder, dirs, files in os.walk(root):
        if "checkpoints" in dirs and {"config.yaml", "metrics.csv", "labels.json", "split.json"} & set(files):
            found.append(Path(folder))
        dirs[:] = sorted(d for d in dirs if not d.startswith(".") and d not in SKIP_DIRS)
    return sorted(found)


def read_run(path: Path) -> RunRow:
    """One row; what cannot be read becomes a note, never an error."""
    run, notes = RunFolder(Path(path)), []
    row = RunRow(str(path), created=_created(run), onnx=run.onnx.is_file())
    cfg = _read_config(run, notes)
    if cfg is not None:
        task = cfg.get("task")
        row = replace(row, task=_str(task), model=_str(cfg.get("model")), lr=_num(cfg.get("lr"), float),
                      batch_size=_num(cfg.get("batch_size"), int), seed=_num(cfg.get("seed"), int),
                      size=_num(cfg.get(SIZE_SETTING.get(task, "")), int) or _contract_height(run),
                      optimizer=_str(cfg.get("optimizer")))
    final = _final(run, notes)
    if final is not None:
        row = replace(row, **final)
    else:
        row = replace(row, **_from_metrics_csv(run, notes))
        if run.interrupted.is_file():
            row = replace(row, stopped_by="interrupted")
    if not any(p.is_file() for p in (run.best, run.last, run.interrupted)):
        notes.append("no checkpoint")
    return replace(row, note="; ".join(notes))


def _created(run: RunFolder) -> str | None:
    """The oldest of the files a run writes when it starts."""
    times = [p.stat().st_mtime for p in (run.config, run.labels, run.split, run.env) if p.is_file()]
    return datetime.fromtimestamp(min(times)).isoformat(timespec="seconds") if times else None


def _contract_height(run: RunFolder) -> int | None:
    """The input height in labels.json: a text run's, where the training images chose it (config.yaml says None)."""
    try:
        return _num(json.loads(run.labels.read_text())["input"]["height"], int)
    except (OSError, ValueError, KeyError, TypeError):
        return None


def _read_config(run: RunFolder, notes: list[str]) -> dict[str, Any] | None:
    """config.yaml as plain settings, not a TrainConfig: runs from older or newer versions list too."""
    if not run.config.is_file():
        notes.append("no config.yaml")
        return None
    try:
        return read_settings(run.config)
    except ConfigError as e:
        notes.append(f"config.yaml unreadable ({str(e).removeprefix(f'{run.config}: ')[:60]})")
        return None


def _final(run: RunFolder, notes: list[str]) -> dict[str, Any] | None:
    """test_metrics.json, written at the end of training."""
    if not run.test_metrics.is_file():
        return None
    try:
        tm = json.loads(run.test_metrics.read_text())
        m = tm.get("metrics") or {}
        out = {"epochs": _num(tm.get("epochs"), int), "minutes": _num(tm.get("minutes"), float),
               "stopped_by": _str(tm.get("stopped_by"))}
    except (OSError, ValueError, AttributeError) as e:
        notes.append(f"test_metrics.json unreadable ({type(e).__name__})")
        return None
    if not m:
        notes.append("no test split")
        return out
    return {**out, **{k: _num(m.get(k), float) for k in ("exact_match", "cer", "accuracy", "macro_f1")},
            "metrics_from": "test"}


def _from_metrics_csv(run: RunFolder, notes: list[str]) -> dict[str, Any]:
    """A run without its final report: epochs so far and the best validation epoch (lowest val/objective)."""
    try:
        with run.metrics.open(newline="") as f:
            rows = [r for r in csv.DictReader(f) if r.get("epoch")]
    except FileNotFoundError:
        notes.append("no metrics.csv (stopped before the first epoch ended?)")
        return {}
    except (OSError, UnicodeDecodeError, csv.Error) as e:
        notes.append(f"metrics.csv unreadable ({type(e).__name__})")
        return {}
    notes.append("not finished: no test metrics" + (", best val epoch shown" if rows else ""))
    if not rows:
        return {}
    scored = [r for r in rows if _num(r.get("val/objective"), float) is not None]
    best = min(scored, key=lambda r: _num(r["val/objective"], float)) if scored else rows[-1]
    metrics = {k: _num(best.get(f"val/{k}"), float) for k in ("exact_match", "cer", "accuracy", "macro_f1")}
    elapsed = _num(rows[-1].get("elapsed_s"), float)
    return {"epochs": _num(rows[-1]["epoch"], int), "minutes": round(elapsed / 60, 3) if elapsed is not None else None,
            **metrics, "metrics_from": "val" if any(v is not None for v in metrics.values()) else None}


def _num(value: Any, kind: type) -> Any:
    """`value` as int or float; None when it is missing or not a number."""
    if value is None or isinstance(value, bool) or value == "":
        return None
    try:
        return kind(float(value)) if kind is int else kind(value)
    except (TypeError, ValueError):
        return None


def _str(value: Any) -> str | None:
    return None if value is None else str(value)


# -- printing ---------------------------------------------------------------------------------------------
_HEADERS = {"path": "run", "stopped_by": "stopped by", "batch_size": "batch", "exact_match": "exact match",
            "cer": "CER", "accuracy": "accuracy", "macro_f1": "macro-F1", "minutes": "min"}


_DROP_FIRST = ["seed", "batch_size", "optimizer", "stopped_by", "created", "onnx", "lr", "size", "epochs", "model"]


def print_runs(rows: list[RunRow], root: Path, sort: str) -> None:
    """A rich table, paths relative to `root`; columns empty for every row are left out, and on a narrow
    terminal the least telling ones too (named in the caption)."""
    from rich.measure import Measurement

    from hardsight.console import console

    if not rows:
        console.print(f"no run folders under {root} (a run folder holds config.yaml and checkpoints/; "
                      "`hardsight train` makes them)")
        return
    shown = [c for c in COLUMNS if c != "metrics_from" and any(_cell(r, c, root) for r in rows)]
    hidden: list[str] = []
    table = _table(rows, root, sort, shown, hidden)
    for c in _DROP_FIRST:
        if Measurement.get(console, console.options.update_width(10_000), table).maximum <= console.width:
            break
        if c in shown and c != sort:
            shown.remove(c)
            hidden.append(c)
            table = _table(rows, root, sort, shown, hidden)
    console.print(table)


def _table(rows: list[RunRow], root: Path, sort: str, shown: list[str], hidden: list[str]):
    from rich.table import Table

    notes = (["* best validation epoch: the run has no test metrics"] if any(r.metrics_from == "val" for r in rows)
             else []) + ([f"hidden to fit the terminal: {', '.join(hidden)} (--json has every column)"] if hidden
                         else [])
    table = Table(title=f"{len(rows)} runs under {root}, by {sort}", caption="\n".join(notes) or None)
    for c in shown:
        text = c in ("path", "task", "model", "created", "stopped_by", "optimizer", "note")
        table.add_column(_HEADERS.get(c, c).replace("_", " "), justify="left" if text else "right",
                         overflow="fold")
    for r in rows:
        table.add_row(*(_cell(r, c, root) for c in shown))
    return table


def _cell(r: RunRow, column: str, root: Path) -> str:
    v = getattr(r, column)
    if v is None or v == "":
        return ""
    star = "*" if r.metrics_from == "val" else ""
    if column == "path":
        rel = os.path.relpath(v, root)
        return v if rel == "." else rel
    if column == "created":
        return v.replace("T", " ")[:16]
    if column in ("exact_match", "cer", "accuracy"):
        return f"{v:.2%}{star}"
    if column == "macro_f1":
        return f"{v:.3f}{star}"
    if column == "minutes":
        return f"{v:.1f}"
    if column == "lr":
        return f"{v:g}"
    if column == "onnx":
        return "yes" if v else ""
    return str(v)
