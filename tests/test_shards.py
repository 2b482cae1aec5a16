"""`--shard i/n` on landmarks, occlude and balance: shards running at once into one OUT write exactly the
unsharded job's files, each file once, each shard its own manifest; a rerun of a shard skips its finished files."""

from __future__ import annotations

import csv
import hashlib
import json
import os
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from PIL import Image

from hardsight.data.balance import balance
from hardsight.errors import ConfigError
from hardsight.faces.jobs import find_landmarks, occlude
from hardsight.faces.landmarks import NoFace, write_landmarks
from hardsight.jobs.shards import parse_shard, take
from tests.data.test_balance import _make
from tests.faces.helpers import draw_face, face_landmarks, synthetic_faces
from tests.test_cli_text import run_cli

JOB_FILES = {"occlude.json", "landmarks.json"}  # settings, the same for every shard


def _outputs(folder: Path) -> dict[str, str]:
    """Every file a job wrote, by content, leaving out manifests, settings and the shards' lock."""
    return {p.relative_to(folder).as_posix(): hashlib.sha1(p.read_bytes()).hexdigest()
            for p in sorted(folder.rglob("*")) if p.is_file() and p.suffix != ".csv" and p.name not in JOB_FILES
            and not p.name.startswith(".")}


def _manifest_rows(folder: Path, pattern: str) -> list[dict[str, str]]:
    return [row for m in sorted(folder.glob(pattern)) for row in csv.DictReader(m.open())]


def _all_at_once(fn, n: int):
    """Shards 0..n-1 of `fn(shard)`, started together (threads: the lock and the manifests are per file)."""
    with ThreadPoolExecutor(n) as pool:
        return list(pool.map(fn, [(i, n) for i in range(n)]))


@pytest.fixture()
def faces(tmp_path):
    """Two class folders of 9 faces with landmark files, a face-less picture and a corrupt file."""
    data, lmk = tmp_path / "data", tmp_path / "lmk"
    for c, cls in enumerate(("happy", "sad")):
        (data / cls).mkdir(parents=True)
        for i in range(9):
            lm = face_landmarks(centre=(55 + i, 50), width=60 + c * 5, angle_deg=i - 4)
            draw_face((110, 100), lm).save(data / cls / f"f{i}.png")
            write_landmarks(lmk / cls / f"f{i}_lnd.npy", lm)
    Image.new("RGB", (80, 80), (128, 128, 128)).save(data / "sad" / "blank.png")
    (data / "happy" / "broken.png").write_bytes(b"\x89PNG not really")
    return data, lmk


def test_parse_shard_is_zero_based_and_reads_slurm(monkeypatch):
    assert parse_shard("1/4") == (1, 4) and parse_shard(" 3 / 4 ") == (3, 4)
    assert parse_shard(None) is None and parse_shard("0/1") is None
    for bad, why in (("4/4", "0-based"), ("5/4", "0 <= i < 4"), ("0/0", "at least 1"), ("1-4", "expected i/n")):
        with pytest.raises(ConfigError, match=why):
            parse_shard(bad)
    for k in ("ID", "COUNT", "MIN"):
        monkeypatch.delenv(f"SLURM_ARRAY_TASK_{k}", raising=False)
    with pytest.raises(ConfigError, match="not set"):
        parse_shard("auto")
    monkeypatch.setenv("SLURM_ARRAY_TASK_ID", "2")
    monkeypatch.setenv("SLURM_ARRAY_TASK_COUNT", "3")
    assert parse_shard("auto") == (2, 3)
    monkeypatch.setenv("SLURM_ARRAY_TASK_MIN", "1")  # --array=1-3
    monkeypatch.setenv("SLURM_ARRAY_TASK_ID", "3")
    assert parse_shard("auto") == (2, 3)
    items = list(range(10))
    parts = [take(items, (i, 3)) for i in range(3)]
    assert parts[0] == [0, 3, 6, 9] and sorted(sum(parts, [])) == items


def test_sharded_occlude_equals_unsharded_and_reruns_skip(faces, tmp_path):
    data, lmk = faces
    whole = occlude(data, tmp_path / "whole", "vr-headset", landmarks=lmk, progress=False)
    out = tmp_path / "sharded"
    shards = _all_at_once(lambda s: occlude(data, out, "vr-headset", landmarks=lmk, progress=False, shard=s), 3)
    assert _outputs(out) == _outputs(tmp_path / "whole") and len(_outputs(out)) == whole.done == 18
    rows = _manifest_rows(out, "occlude.shard-*-of-3.csv")
    files = [r["file"] for r in rows]
    assert len(files) == len(set(files)) == 20  # every file once: 18 faces, no face, unreadable
    assert {r["file"]: r["status"] for r in rows} == {
        r["file"]: r["status"] for r in _manifest_rows(tmp_path / "whole", "occlude.csv")}
    assert sum(s.done for s in shards) == 18
    assert sum(len(s.unreadable) for s in shards) == len(whole.unreadable)  # blank.png is unreadable without dlib
    assert [s.manifest.name for s in shards] == [f"occlude.shard-{i}-of-3.csv" for i in range(3)]

    again = occlude(data, out, "vr-headset", landmarks=lmk, progress=False, shard=(1, 3))
    assert again.done == 0 and again.resumed == shards[1].done
    mine = next(r["output"] for r in _manifest_rows(out, "occlude.shard-1-of-3.csv") if r["status"] == "ok")
    (out / mine).unlink()
    assert occlude(data, out, "vr-headset", landmarks=lmk, progress=False, shard=(1, 3)).done == 1
    other = occlude(data, out, "vr-headset", landmarks=lmk, progress=False, shard=(0, 2))  # another shard count
    assert other.done == 0 and other.total == 10


def test_sharded_occlude_of_a_csv_writes_the_whole_csv_once(tmp_path):
    root, lmk = synthetic_faces(tmp_path / "faces", performers=3)
    out = tmp_path / "occluded"
    shards = _all_at_once(lambda s: occlude(root, out, "lower-face", landmarks=lmk, progress=False, shard=s), 2)
    assert [s.done for s in shards] == [5, 4]
    rows = list(csv.DictReader((out / "labels.csv").open()))  # the last shard to finish saw every shard's rows
    assert len(rows) == 9 and not list(out.glob(".*.partial"))


def test_sharded_landmarks_equal_unsharded(faces, tmp_path, monkeypatch):
    import numpy as np

    import hardsight.faces.jobs as jobs
    import hardsight.faces.landmarks as landmarks

    def fake_detect(image, detector):  # no dlib here: landmarks from the image's size; the blank one has no face
        if image.size == (80, 80):
            raise NoFace("no face")
        return face_landmarks(centre=(image.size[0] / 2, 50), width=60) + float(np.asarray(image).mean())

    monkeypatch.setattr(landmarks, "detector_named", lambda name: None)
    monkeypatch.setattr(jobs, "detect_landmarks", fake_detect)
    data, _ = faces
    whole = find_landmarks(data, tmp_path / "whole", progress=False)
    out = tmp_path / "sharded"
    shards = _all_at_once(lambda s: find_landmarks(data, out, progress=False, shard=s), 4)
    assert _outputs(out) == _outputs(tmp_path / "whole") and len(_outputs(out)) == whole.done == 18
    assert sorted(f for s in shards for f in s.no_face) == ["sad/blank.png"]
    files = [r["file"] for r in _manifest_rows(out, "landmarks.shard-*-of-4.csv")]
    assert len(files) == len(set(files)) == 20
    assert find_landmarks(data, out, progress=False, shard=(3, 4)).done == 0
    assert find_landmarks(data, out, progress=False).done == 0  # the whole job, after its shards: nothing left


def test_sharded_balance_equals_unsharded_from_concurrent_processes(tmp_path):
    data = _make(tmp_path / "data")
    whole = balance(data, tmp_path / "whole", per_class=6, progress=False)
    out = tmp_path / "sharded"
    env = {**os.environ, "COLUMNS": "200"}
    procs = [subprocess.Popen([sys.executable, "-m", "hardsight", "balance", str(data), str(out), "--per-class", "6",
                               "--shard", f"{i}/2", "--json"], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                              text=True, env=env) for i in range(2)]
    outs = [p.communicate(timeout=300) for p in procs]
    assert [p.returncode for p in procs] == [0, 0], outs
    assert _outputs(out) == _outputs(tmp_path / "whole") and len(_outputs(out)) == 18
    files = [r["file"] for r in _manifest_rows(out, "balance_manifest.shard-*-of-2.csv")]
    assert len(files) == len(set(files)) == 18
    reports = [json.loads(o) for o, _ in outs]
    for cls, n in whole.classes.items():  # the shards' counts add up to the whole job's
        assert sum(r["classes"][cls]["total"] for r in reports) == n.total
        assert sum(r["classes"][cls]["unreadable"] for r in reports) == n.unreadable
    assert sum(len(r["unreadable"]) for r in reports) == len(whole.unreadable) == 1

    victim = sorted(files)[0]
    (out / victim).unlink()
    redo = [balance(data, out, per_class=6, progress=False, shard=(i, 2)) for i in range(2)]
    written = [sum(n.total for n in r.classes.values()) - r.resumed for r in redo]
    assert sorted(written) == [0, 1] and _outputs(out) == _outputs(tmp_path / "whole")  # only the missing file
    bad = run_cli("balance", data, tmp_path / "x", "--per-class", "2", "--shard", "2/2", check=False)
    assert bad.returncode == 2 and "0-based" in bad.stderr
