"""Pictures held in RAM, memory-mapped from the disk cache, or decoded on each read: the same batches, caches
reused and rebuilt when they should be, DDP ranks reading only their shard, occluded versions never a copy."""

from __future__ import annotations

import shutil

import numpy as np
import pytest
import torch
from PIL import Image

from hardsight.config import TrainConfig
from hardsight.data.image import store
from hardsight.data.image.labels import ImageItem, Occlusion
from hardsight.data.image.prepare import ImageDataModule, prepare_image_data
from tests.test_cli_text import run_cli

COLOURS = {"red": (200, 40, 40), "green": (40, 180, 60), "blue": (40, 60, 200)}


@pytest.fixture(scope="module")
def tiles(tmp_path_factory):
    """3 colour classes x 12 tiles, one file copied under a second class, one file that is no image."""
    root = tmp_path_factory.mktemp("stream_tiles")
    for k, (name, colour) in enumerate(COLOURS.items()):
        (root / name).mkdir()
        for i in range(12):
            a = np.clip(np.array(colour) + np.random.default_rng(10 * k + i).normal(0, 25, (40, 40, 3)), 0, 255)
            Image.fromarray(a.astype(np.uint8)).save(root / name / f"{name}{i}.png")
    shutil.copy(root / "red" / "red0.png", root / "green" / "also_red0.png")
    (root / "blue" / "broken.png").write_bytes(b"\x89PNG not really")
    return root


def _cfg(tiles, cache: str, **kw) -> TrainConfig:
    return TrainConfig(**{"task": "image", "data": str(tiles), "model": "compact", "image_size": 24,
                          "batch_size": 8, "cache": cache, "augment": 0.5, **kw})


def _batches(data, cfg, n: int = 3):
    torch.manual_seed(0)
    return [b for b, _ in zip(ImageDataModule(data, cfg).train_dataloader(), range(n))]


def test_ram_disk_and_none_give_the_same_items_and_batches(tiles):
    prepared = {mode: prepare_image_data(_cfg(tiles, mode)) for mode in ("ram", "disk", "none")}
    ram = prepared["ram"]
    assert ram.cache == "ram" and prepared["disk"].cache == "disk" and prepared["none"].cache == "none"
    for mode in ("disk", "none"):
        data = prepared[mode]
        assert data.classes == ram.classes and data.duplicates == ram.duplicates == 1
        assert [[p.name for p in it.paths] for it in data.items["test"]] == \
               [[p.name for p in it.paths] for it in ram.items["test"]]
        assert all(it.image is None for part in data.items.values() for it in part)  # nothing held
        assert [f for f, _ in data.skipped.unreadable] == [f for f, _ in ram.skipped.unreadable]
        for (x, y), (x_ram, y_ram) in zip(_batches(data, _cfg(tiles, mode)), _batches(ram, _cfg(tiles, "ram"))):
            assert torch.equal(x, x_ram) and torch.equal(y, y_ram)


def test_the_disk_cache_is_reused_and_rebuilt_for_another_size_or_format(tiles, monkeypatch):
    root = store.cache_root() / "pictures"
    prepare_image_data(_cfg(tiles, "disk"))
    before = {p.name for p in root.iterdir() if p.is_dir()}
    calls = []
    monkeypatch.setattr(store.DiskPictures, "_build", classmethod(lambda cls, *a: calls.append(a)))
    prepare_image_data(_cfg(tiles, "disk"))  # the same files, size and format: opened, not built
    assert calls == []
    monkeypatch.undo()
    prepare_image_data(_cfg(tiles, "disk", image_size=20))
    monkeypatch.setattr(store, "FORMAT", store.FORMAT + 1)  # as a cache written by an older version reads
    prepare_image_data(_cfg(tiles, "disk"))
    after = {p.name for p in root.iterdir() if p.is_dir()}
    assert len(after - before) == 2  # one per size, one per format: never an old one reused


def test_an_interrupted_disk_build_resumes_where_it_stopped(tmp_path, tiles, monkeypatch):
    monkeypatch.setenv("HARDSIGHT_CACHE", str(tmp_path / "cache"))
    monkeypatch.setattr(store, "CHUNK", 4)
    files = sorted(tiles.glob("red/*.png"))
    digests = [f"d{i}" for i in range(len(files))]
    real, seen = store.decode_picture, []

    def stop_at_nine(path, size, preprocess=None):
        if len(seen) == 9:
            raise KeyboardInterrupt
        seen.append(path)
        return real(path, size, preprocess)

    monkeypatch.setattr(store, "decode_picture", stop_at_nine)
    with pytest.raises(KeyboardInterrupt):
        store.DiskPictures.build(files, digests, 16, workers=1, progress=False)
    monkeypatch.setattr(store, "decode_picture", lambda path, size, preprocess=None: (seen.append(path),
                                                                                        real(path, size))[1])
    cache = store.DiskPictures.build(files, digests, 16, workers=1, progress=False)
    assert len(seen) == 9 + len(files) - 8  # two chunks of 4 were kept; the rest was decoded after the restart
    for row, f in enumerate(files):
        assert torch.equal(cache.read(row)[0], real(f, 16)[0])


def test_ddp_ranks_read_only_their_shard_and_together_cover_the_set(tiles):
    from torch.utils.data import DistributedSampler

    data = prepare_image_data(_cfg(tiles, "disk"))
    ds = ImageDataModule(data, _cfg(tiles, "disk")).dataset("train", train=False)
    rows = [it.source[1] for it in ds.items]
    reads: dict[int, set[int]] = {0: set(), 1: set()}
    for rank in (0, 1):
        reader = ds.items[0].source[0]
        counted = type("Counted", (), {"read": lambda self, row, r=rank: (reads[r].add(row), reader.read(row))[1]})()
        items = [ImageItem(it.paths, it.labels, source=(counted, it.source[1])) for it in ds.items]
        ds_rank = ImageDataModule(data, _cfg(tiles, "disk")).dataset("train", train=False)
        ds_rank.items = items
        for i in DistributedSampler(ds_rank, num_replicas=2, rank=rank, shuffle=True, seed=0):
            ds_rank[i]
    assert not reads[0] & reads[1] and reads[0] | reads[1] == set(rows)
    assert pickle_keeps_no_array(ds.items[0].source[0])


def pickle_keeps_no_array(pictures) -> bool:
    """A DataLoader worker or a spawned rank gets the cache's folder, and maps the file itself."""
    import pickle

    pictures.read(0)
    copy = pickle.loads(pickle.dumps(pictures))
    return len(pickle.dumps(pictures)) < 2000 and torch.equal(copy.read(0)[0], pictures.read(0)[0])


def test_an_occluded_version_shares_the_picture_and_draws_on_read():
    picture = torch.full((3, 32, 32), 200, dtype=torch.uint8)
    clean = ImageItem([], ["happy"], image=picture)
    occluded = ImageItem([], ["happy"], image=picture, occlusion=Occlusion("random-patch", seed=3, area=0.3))
    assert occluded.image is clean.image  # one picture in memory for both versions
    assert torch.equal(clean.picture(), picture)
    assert (occluded.picture() != picture).any() and torch.equal(occluded.picture(), occluded.picture())


def test_file_digests_are_cached_and_redone_for_a_changed_file(tmp_path, monkeypatch):
    from hardsight.data.image import index

    monkeypatch.setenv("HARDSIGHT_CACHE", str(tmp_path / "cache"))
    files = []
    for i in range(3):
        files.append(tmp_path / "set" / f"{i}.bin")
        files[-1].parent.mkdir(exist_ok=True)
        files[-1].write_bytes(bytes([i]) * 100)
    (tmp_path / "set" / "copy.bin").write_bytes(bytes([1]) * 100)
    first = index.file_digests(files + [tmp_path / "set" / "copy.bin"], workers=1)
    assert first[1] == first[3] and len(set(first)) == 3  # byte-identical files, one digest
    hashed = []
    monkeypatch.setattr(index, "file_digest", lambda p: hashed.append(p) or "x")
    files[2].write_bytes(b"changed")
    again = index.file_digests(files, workers=1)
    assert hashed == [files[2]] and again[:2] == first[:2]


def test_cli_trains_and_evaluates_with_the_disk_cache(tmp_path, tiles):
    run = tmp_path / "run"
    out = run_cli("train", "image", str(tiles), "--out", str(run), "--model", "compact", "--image-size", "24",
                  "--epochs", "1", "--cache", "disk")
    assert "pictures in the disk cache" in " ".join(out.stderr.split())  # the console writes to stderr
    assert "cache: disk" in (run / "config.yaml").read_text()
    run_cli("evaluate", str(run), str(tiles))


@pytest.mark.parametrize("where", ["/proc", "a-file"])
def test_a_cache_folder_that_cannot_be_written_is_one_line_naming_it(tmp_path, tiles, monkeypatch, where):
    cache = where if where.startswith("/") else str(tmp_path / where)
    if not where.startswith("/"):
        (tmp_path / where).write_text("a file, not a folder")
    monkeypatch.setenv("HARDSIGHT_CACHE", cache)
    out = run_cli("train", "image", str(tiles), "--out", str(tmp_path / "run"), "--model", "compact", "--epochs", "1",
                  "--cache", "disk", check=False)
    said = " ".join((out.stdout + out.stderr).split())
    assert out.returncode == 2 and said.count("error:") == 1 and "Traceback" not in said
    assert f"HARDSIGHT_CACHE={cache}: cannot create or write" in said and "set HARDSIGHT_CACHE to a folder" in said
