"""`hardsight landmarks` and `hardsight occlude`: one file in, one file out, mirrored under OUT, resumable.

DATA is a folder of images (class folders included), a CSV manifest with a `file` column, or a folder
holding labels.csv beside images/. Each finished file is appended to OUT's manifest CSV; a rerun with
the same settings skips what is done. Workers are processes (dlib holds the GIL), each loading the
dlib models once.

With `shard=(i, n)` (`--shard i/n`, see hardsight.jobs.shards) a job does files i, i+n, ... of DATA's files
sorted by name, and appends to its own manifest, OUT/<kind>.shard-i-of-n.csv, so n array-job tasks can
write into one OUT at once. Every job reads all of OUT's manifests to skip what is done.
"""

from __future__ import annotations

import contextlib
import csv
import json
import os
import time
import zlib
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from multiprocessing import get_context
from pathlib import Path
from typing import Any, Callable

from PIL import Image

from hardsight.data.io import (UnreadableImage, list_images, load_image, open_image, read_csv_text,
                                   refuse_out_inside)
from hardsight.errors import DataError
from hardsight.jobs.files import atomic_write
from hardsight.jobs.manifest import Manifest, refuse_other_settings, track_progress
from hardsight.faces.landmarks import (NoFace, detect_landmarks, find_landmark_file, landmark_name, read_landmarks,
                                       write_landmarks)
from hardsight.faces.occluders import draw_occluder, get_occluder
from hardsight.jobs.shards import Shard, check_shard, locked, take

OK, NO_FACE, UNREADABLE = "ok", "no face", "unreadable"
MANIFEST_FIELDS = ["file", "status", "output", "detail"]  # file: relative to DATA; output: relative to OUT


@dataclass(frozen=True)
class FaceFile:
    source: Path
    rel: str  # relative to DATA's folder (the CSV's folder for a manifest), posix; mirrored under OUT


@dataclass
class FaceJobResult:
    """What a landmarks or occlude job did: counts, and the files it could not use, by name."""

    kind: str  # "landmarks" or "occlude"
    data: Path
    out: Path
    manifest: Path
    done: int = 0  # written by this run
    resumed: int = 0  # finished by an earlier run, skipped
    no_face: list[str] = field(default_factory=list)
    unreadable: list[tuple[str, str]] = field(default_factory=list)  # (file, why)
    seconds: float = 0.0
    shard: Shard | None = None  # (i, n), 0-based: this job did files i, i+n, ... only

    @property
    def total(self) -> int:
        return self.done + self.resumed + len(self.no_face) + len(self.unreadable)

    @property
    def detection_rate(self) -> float:
        """Faces found among the readable images."""
        readable = self.total - len(self.unreadable)
        return (readable - len(self.no_face)) / readable if readable else 0.0

    def to_json(self) -> dict[str, Any]:
        return {"kind": self.kind, "data": str(self.data), "out": str(self.out), "manifest": str(self.manifest),
                "total": self.total, "done": self.done, "resumed": self.resumed, "no_face": self.no_face,
                "unreadable": [{"file": f, "error": e} for f, e in self.unreadable],
                "detection_rate": round(self.detection_rate, 4), "seconds": round(self.seconds, 2),
                "shard": list(self.shard) if self.shard else None}


def list_face_files(data: Path) -> tuple[Path, list[FaceFile], list[tuple[str, str]], Path | None]:
    """(base folder, files, missing (name, why), the CSV when DATA is one)."""
    from hardsight.data.image.labels import resolve_listed

    data = Path(data)
    if not data.exists():
        raise DataError(f"{data}: no such file or folder")
    if data.is_dir() and (data / "labels.csv").is_file():
        data = data / "labels.csv"
    if data.is_dir():
        files = [FaceFile(p, p.relative_to(data).as_posix()) for p in list_images(data)]
        if not files:
            raise DataError(f"{data}: holds no images")
        return data, files, [], None
    base, files, missing, seen = data.parent, [], [], set()
    with read_csv_text(data) as f:
        reader = csv.DictReader(f)
        if "file" not in [c.strip() for c in reader.fieldnames or []]:
            raise DataError(f"{data}: no column 'file' (columns: {reader.fieldnames})")
        for lineno, row in enumerate(reader, start=2):
            name = ({k.strip(): v for k, v in row.items() if k}.get("file") or "").strip()
            p = resolve_listed(base, name) if name else None
            if p is None:
                missing.append((f"{data}:{lineno}", f"{name!r}: no such file"))
                continue
            rel = os.path.relpath(p, base)
            if rel.startswith(".."):
                raise DataError(f"{data}:{lineno}: {name!r} lies outside the CSV's folder, so it cannot be mirrored "
                                "under OUT; move the CSV up to a folder that holds every image")
            if rel not in seen:
                seen.add(rel)
                files.append(FaceFile(p, Path(rel).as_posix()))
    return base, files, missing, data


def run_job(kind: str, data: Path, out: Path, settings: dict[str, Any], worker: Callable, outputs: Callable,
            workers: int = 1, progress: bool = True, shard: Shard | None = None
            ) -> tuple[FaceJobResult, Path, Path | None]:
    """Plan, skip what the manifests say is done, run `worker` on the rest (in processes when workers > 1).

    Args:
        worker: module-level `(FaceFile, target, settings) -> (status, detail)`, so worker processes can run it.
        outputs: `FaceFile -> path relative to OUT` of the file it writes.
        shard: (i, n), 0-based: only files i, i+n, ... of DATA's files sorted by name, into their own manifest.
    """
    data, out, shard = Path(data), Path(out), check_shard(shard)
    start = time.monotonic()
    base, files, missing, csv_path = list_face_files(data)
    if shard:
        files, missing = take(sorted(files, key=lambda f: f.rel), shard), take(missing, shard)
    refuse_out_inside(out, base)
    _check_settings(out, kind, {"data": str(data.resolve()), **settings}, sharded=shard is not None)
    manifest = Manifest(out, kind, MANIFEST_FIELDS, shard)
    done = _finished(manifest)
    result = FaceJobResult(kind, data, out, manifest.path, unreadable=list(missing), shard=shard)
    todo = []
    for f in files:
        prev = done.get(f.rel)
        if prev is None:
            todo.append(f)
        elif prev == NO_FACE:
            result.no_face.append(f.rel)
        else:
            result.resumed += 1
    tasks = [(f, out / outputs(f), settings) for f in todo]
    with manifest.appending() as append:
        for (f, target, _), (status, detail) in track_progress(_map(worker, tasks, workers), len(tasks), kind,
                                                               progress):
            append({"file": f.rel, "status": status, "output": outputs(f) if status == OK else "", "detail": detail})
            if status == OK:
                result.done += 1
            elif status == NO_FACE:
                result.no_face.append(f.rel)
            else:
                result.unreadable.append((str(f.source), detail))
    result.seconds = time.monotonic() - start
    return result, base, csv_path


def _call(args):
    worker, (f, target, settings) = args
    try:
        return worker(f, target, settings)
    except NoFace:
        return NO_FACE, ""
    except UnreadableImage as e:
        return UNREADABLE, str(e)
    except Exception as e:  # a bad landmark file, a full disk: reported for this file, never the end of the job
        return UNREADABLE, f"{type(e).__name__}: {e}"


def _map(worker: Callable, tasks: list, workers: int):
    """Results in task order, as they finish; (task, result) pairs."""
    if workers <= 1 or len(tasks) < 2:
        for t in tasks:
            yield t, _call((worker, t))
        return
    pool = ProcessPoolExecutor(max_workers=workers, mp_context=get_context("spawn"))
    try:
        yield from zip(tasks, pool.map(_call, [(worker, t) for t in tasks], chunksize=4))
    finally:  # on Ctrl-C, drop what has not started: the manifest already holds what finished
        pool.shutdown(wait=True, cancel_futures=True)


def _check_settings(out: Path, kind: str, settings: dict[str, Any], sharded: bool = False) -> None:
    """A rerun must use the same settings; OUT is either new, empty, or this job's own folder.

    Shards starting together take a lock in OUT, so exactly one writes the settings and the others compare.
    """
    if not sharded:
        return _check_settings_unlocked(out, kind, settings)
    if out.exists() and not out.is_dir():
        raise DataError(f"{out}: exists and is not a `hardsight {kind}` folder; choose a new OUT")
    with locked(_lock_file(out, kind)):
        _check_settings_unlocked(out, kind, settings)


def _lock_file(out: Path, kind: str) -> Path:
    return out / f".{kind}.lock"


def _check_settings_unlocked(out: Path, kind: str, settings: dict[str, Any]) -> None:
    path = out / f"{kind}.json"
    if path.is_file():
        refuse_other_settings(out, json.loads(path.read_text()), settings, f"a `hardsight {kind}` job", "OUT",
                              DataError)
        return
    if out.exists() and (not out.is_dir() or any(p != _lock_file(out, kind) for p in out.iterdir())):
        raise DataError(f"{out}: exists and is not a `hardsight {kind}` folder; choose a new OUT")
    out.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(settings, indent=1) + "\n")


def _finished(manifest: Manifest) -> dict[str, str]:
    """file -> status for files an earlier run (or shard) finished, its output still there; unreadable ones are
    retried. Each manifest's last row of a file counts, and a later manifest's finished row wins."""
    last: dict[tuple[Path, str], dict[str, str]] = {}
    for path, row in manifest.rows():
        if row.get("file") is not None and row.get("status") is not None:
            last[path, row["file"]] = row
    return {file: r["status"] for (_, file), r in last.items()
            if r["status"] == NO_FACE or (r["status"] == OK and (manifest.out / (r["output"] or "")).is_file())}


# -- landmarks --------------------------------------------------------------------------------------
def landmarks_output(f: FaceFile) -> str:
    return (Path(f.rel).parent / landmark_name(f.rel)).as_posix()


def _landmarks_one(f: FaceFile, target: Path, settings: dict[str, Any]) -> tuple[str, str]:
    lm = detect_landmarks(load_image(f.source, "RGB"), settings["detector"])
    write_landmarks(target, lm)
    return OK, ""


def find_landmarks(data: Path | str, out: Path | str, detector: str = "hog", workers: int = 1,
                   progress: bool = True, shard: Shard | None = None) -> FaceJobResult:
    """Detect 68 landmarks per image of DATA into OUT/<same folders>/<stem>_lnd.npy; OUT/landmarks.csv lists
    every file with its status (ok, no face, unreadable).

    Args:
        shard: (i, n), 0-based: files i, i+n, ... of DATA only, listed in OUT/landmarks.shard-i-of-n.csv.
    """
    from hardsight.faces.landmarks import detector_named

    detector_named(detector)  # an unknown detector or a missing dlib fails here, before any work
    result, _, _ = run_job("landmarks", Path(data), Path(out), {"detector": detector}, _landmarks_one,
                           landmarks_output, workers, progress, shard)
    return result


# -- occlude ----------------------------------------------------------------------------------------
def _occlude_one(f: FaceFile, target: Path, settings: dict[str, Any]) -> tuple[str, str]:
    im = open_image(f.source)  # as stored (mode and format kept), for drawing on
    fmt = im.format
    if im.mode == "P":
        im = im.convert("RGBA" if "transparency" in im.info else "RGB")
    lm = None
    if get_occluder(settings["occluder"]).needs_landmarks or settings["landmarks"]:
        lm = _landmarks_for(f, im, settings)
    seed = zlib.crc32(f"{settings['seed']}/{f.rel}".encode())
    draw_occluder(im, settings["occluder"], lm, seed, settings["area"])
    _save_like(im, fmt, target)
    return OK, ""


def _landmarks_for(f: FaceFile, im: Image.Image, settings: dict[str, Any]):
    if settings["landmarks"]:
        path = find_landmark_file(Path(f.rel), Path(settings["landmarks"]), Path("."))
        if path is not None:
            return read_landmarks(path)
    return detect_landmarks(im.convert("RGB"), settings["detector"])


def _save_like(im: Image.Image, fmt: str | None, target: Path) -> None:
    """Save in the original's format; a JPEG keeps its quantisation tables and subsampling."""
    target.parent.mkdir(parents=True, exist_ok=True)
    extra: dict[str, Any] = {k: im.info[k] for k in ("icc_profile", "exif", "dpi") if im.info.get(k)}
    if fmt == "JPEG":
        extra.update(quality="keep", subsampling="keep") if getattr(im, "quantization", None) else extra.update(quality=95)
    elif fmt == "WEBP":
        extra.update(lossless=True)
    if fmt not in ("JPEG", "PNG", "WEBP"):
        extra = {}
    with atomic_write(target) as tmp:
        im.save(tmp, format=fmt or "PNG", **extra)


def occlude(data: Path | str, out: Path | str, occluder: str = "vr-headset", landmarks: Path | str | None = None,
            area: float = 0.2, seed: int = 0, detector: str = "hog", workers: int = 1,
            progress: bool = True, shard: Shard | None = None) -> FaceJobResult:
    """Draw `occluder` on a copy of every image of DATA, into OUT (same folders, names, sizes and formats).

    Args:
        landmarks: a folder of `<stem>_lnd.npy` (from `hardsight landmarks`); images without one are detected.
        area: random-patch only, the fraction of the face box it covers.
        shard: (i, n), 0-based: files i, i+n, ... of DATA only, listed in OUT/occlude.shard-i-of-n.csv.
    """
    get_occluder(occluder)
    if not 0 < area <= 1:
        raise DataError(f"--area {area}: expected a fraction in (0, 1]")
    if landmarks is not None and not Path(landmarks).is_dir():
        raise DataError(f"{landmarks}: no such landmarks folder (make one with `hardsight landmarks`)")
    settings = {"occluder": occluder, "landmarks": str(Path(landmarks).resolve()) if landmarks else None,
                "area": area, "seed": seed, "detector": detector}
    result, base, csv_path = run_job("occlude", Path(data), Path(out), settings, _occlude_one, lambda f: f.rel,
                                     workers, progress, shard)
    if csv_path is not None:  # under a lock, the last shard to take it sees every other shard's finished manifest
        with locked(_lock_file(Path(out), "occlude")) if result.shard else contextlib.nullcontext():
            _write_manifest_copy(csv_path, base, Path(out))
    return result


def _write_manifest_copy(csv_path: Path, base: Path, out: Path) -> None:
    """OUT gets the CSV too, holding the rows whose image was occluded (file names unchanged, so they resolve)."""
    from hardsight.data.image.labels import resolve_listed

    done = _finished(Manifest(out, "occlude", MANIFEST_FIELDS))
    with (atomic_write(out / csv_path.name) as tmp, csv_path.open(newline="", encoding="utf-8-sig") as src,
          tmp.open("w", newline="", encoding="utf-8") as dst):
        reader = csv.DictReader(src)
        writer = csv.DictWriter(dst, reader.fieldnames or ["file"])
        writer.writeheader()
        for row in reader:
            p = resolve_listed(base, (row.get("file") or "").strip())
            if p is not None and done.get(Path(os.path.relpath(p, base)).as_posix()) == OK:
                writer.writerow(row)


def print_job(result: FaceJobResult) -> None:
    """One summary line, then the files with no face or unreadable, by name."""
    from hardsight.console import console

    console.print(f"[bold]{result.kind}[/bold] {result.data} -> {result.out}: {result.done} done, "
                  f"{result.resumed} already done (skipped), {len(result.no_face)} no face, "
                  f"{len(result.unreadable)} unreadable; faces found in {result.detection_rate:.1%} of readable "
                  f"images ({result.seconds:.0f} s); manifest {result.manifest}")
    for name in result.no_face[:20]:
        console.print(f"  [yellow]no face[/yellow] {name}")
    if len(result.no_face) > 20:
        console.print(f"  ... and {len(result.no_face) - 20} more without a face (see {result.manifest})")
    for name, why in result.unreadable[:20]:
        console.print(f"  [yellow]unreadable[/yellow] {name}: {why}")
    if len(result.unreadable) > 20:
        console.print(f"  ... and {len(result.unreadable) - 20} more unreadable")
