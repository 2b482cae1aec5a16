"""A resumable job: a manifest row per finished file, so a rerun (or another shard) skips what is done, and one set
of settings per folder, so a rerun never mixes two kinds of result.

A job appends to its own manifest, OUT/<stem>.csv, or OUT/<stem>.shard-i-of-n.csv for a shard (see
hardsight.jobs.shards), and reads every manifest in OUT to tell what is done.
"""

from __future__ import annotations

import contextlib
import csv
import io
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Iterable, Iterator, Mapping, TypeVar

from hardsight.errors import HardsightError
from hardsight.jobs.shards import Shard, complete_lines, manifest_path, manifests, open_for_append

T = TypeVar("T")


@dataclass(frozen=True)
class Manifest:
    """The manifests of one job in OUT: its own (the whole job's, or a shard's) and every other one found there."""

    out: Path
    stem: str
    fields: list[str]
    shard: Shard | None = None

    @property
    def path(self) -> Path:
        """The manifest this job (or shard) appends to; no one else writes it."""
        return manifest_path(self.out, self.stem, self.shard)

    def found(self) -> list[Path]:
        """Every manifest of the job in OUT: the whole job's, then each shard's (of any shard count)."""
        return manifests(self.out, self.stem)

    def rows(self) -> Iterator[tuple[Path, dict[str, str]]]:
        """(manifest, row) for every complete row of every manifest found; a shard may be halfway through a row."""
        for path in self.found():
            for row in csv.DictReader(io.StringIO(complete_lines(path), newline="")):
                yield path, row

    def claim(self) -> None:
        """Give this job's manifest its header (once): from then on OUT holds this job, even before any file is done."""
        with open_for_append(self.path) as f:
            if f.tell() == 0:
                csv.DictWriter(f, self.fields).writeheader()

    @contextlib.contextmanager
    def appending(self) -> Iterator[Callable[[Mapping[str, Any]], None]]:
        """A function appending one row, flushed at once: each file is listed as soon as it is done."""
        self.claim()
        with open_for_append(self.path) as f:
            writer = csv.DictWriter(f, self.fields)

            def append(row: Mapping[str, Any]) -> None:
                writer.writerow(row)
                f.flush()

            yield append


def refuse_other_settings(folder: Path | str, saved: Mapping[str, Any], now: Mapping[str, Any], holds: str,
                          new_folder: str, error: type[HardsightError]) -> None:
    """Raise `error` naming `folder` (or a study) and each setting of `now` that `saved` (what made it) holds otherwise.

    Args:
        holds: what the folder holds, for the message: "a study", "a `hardsight occlude` job".
        new_folder: how to choose another folder: "--out", "OUT".
    """
    differ = {k: (saved.get(k), v) for k, v in now.items() if saved.get(k) != v}
    if differ:
        shown = ", ".join(f"{k} was {was!r}, now {new!r}" for k, (was, new) in differ.items())
        raise error(f"{folder}: holds {holds} with other settings ({shown}); rerun with the same ones to finish it, "
                    f"or choose a new {new_folder}")


def track_progress(items: Iterable[T], total: int, description: str, show: bool) -> Iterable[T]:
    """`items`, with a progress bar while they are consumed (none when hidden or there is nothing to do)."""
    if not show or total == 0:
        return items
    from rich.progress import track

    from hardsight.console import console

    return track(items, total=total, description=description, console=console, transient=True)
