"""Labelled text-CAPTCHA sets: labels from file stems, a regex, or a CSV; charset; skipped files."""

from __future__ import annotations

import csv
import re
from dataclasses import dataclass, field
from pathlib import Path

from hardsight.data.io import list_images, read_csv_text
from hardsight.errors import DataError


@dataclass(frozen=True)
class LabelledFile:
    path: Path
    label: str


@dataclass
class Skipped:
    """Files left out of a dataset, by reason, so the summary can count and name them."""

    unreadable: list[tuple[str, str]] = field(default_factory=list)
    bad_label: list[tuple[str, str]] = field(default_factory=list)

    @property
    def total(self) -> int:
        return len(self.unreadable) + len(self.bad_label)

    def merge(self, other: Skipped) -> None:
        self.unreadable += other.unreadable
        self.bad_label += other.bad_label


@dataclass(frozen=True)
class TextLabelling:
    """How a label is read from a file: the settings saved in a run and reused by evaluate."""

    label_pattern: str | None = None
    lowercase: bool = False

    def label_of(self, path: Path) -> str | None:
        label = path.stem
        if self.label_pattern:
            m = re.search(self.label_pattern, label)
            if not m:
                return None
            label = m.group("label") if "label" in m.re.groupindex else (m.group(1) if m.groups() else m.group(0))
        return label.lower() if self.lowercase else label


def read_text_labels(source: Path, labelling: TextLabelling) -> tuple[list[LabelledFile], Skipped]:
    """Labelled files from a folder (recursive) or a CSV manifest (`file,label`)."""
    source = Path(source)
    skipped = Skipped()
    if not source.exists():
        raise DataError(f"{source}: no such file or folder")
    if source.is_file():
        if source.suffix.lower() != ".csv":
            raise DataError(f"{source}: expected a folder of images or a .csv manifest (file,label)")
        return _read_csv(source, labelling, skipped), skipped
    files = list_images(source)
    if not files:
        raise DataError(f"{source}: no images found (looked for .png .jpg .jpeg .webp .bmp recursively)")
    out = []
    for p in files:
        label = labelling.label_of(p)
        if not label:
            skipped.bad_label.append((str(p), f"label pattern {labelling.label_pattern!r} does not match "
                                      f"{p.stem!r}" if labelling.label_pattern else "empty label"))
        else:
            out.append(LabelledFile(p, label))
    return out, skipped


def _read_csv(path: Path, labelling: TextLabelling, skipped: Skipped) -> list[LabelledFile]:
    with read_csv_text(path) as f:
        reader = csv.DictReader(f)
        cols = [c.strip().lower() for c in reader.fieldnames or []]
        if "file" not in cols or "label" not in cols:
            raise DataError(f"{path}: a text manifest needs the columns 'file' and 'label', found {cols}")
        out = []
        for lineno, row in enumerate(reader, start=2):
            row = {k.strip().lower(): (v or "").strip() for k, v in row.items() if k}
            file = path.parent / row["file"]
            label = row["label"].lower() if labelling.lowercase else row["label"]
            if not file.is_file():
                skipped.unreadable.append((f"{path}:{lineno}", f"{row['file']}: no such file"))
            elif not label:
                skipped.bad_label.append((f"{path}:{lineno}", "empty label"))
            else:
                out.append(LabelledFile(file, label))
    if not out and not skipped.total:
        raise DataError(f"{path}: the manifest lists no files")
    return out


def infer_charset(labels: list[str]) -> str:
    return "".join(sorted(set("".join(labels))))


def filter_charset(files: list[LabelledFile], charset: str, skipped: Skipped) -> list[LabelledFile]:
    """Keep labels whose every character is in `charset`; report the rest by name."""
    allowed = set(charset)
    kept = []
    for f in files:
        bad = sorted(set(f.label) - allowed)
        if bad:
            skipped.bad_label.append((str(f.path), f"label {f.label!r} uses characters not in the charset: {bad}"))
        else:
            kept.append(f)
    return kept
