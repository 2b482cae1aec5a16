"""Datasets bigger than memory: indexing, first batch, training throughput and peak memory per dataset size.

Generates a synthetic AffectNet-shaped set per size (ROOT/images/<n>.jpg, 224 px JPEG, and
ROOT/annotations/<n>_exp.npy; every picture distinct; the larger sets hard-link the smaller's files) under
bench-runs/scale-data (never committed), then measures, each in a fresh process so its peak RSS is its own:

- index: reading the labels and hashing every file's bytes with no index cached (cold) and again (warm);
- first batch: from nothing to the first training batch, building the disk cache (cold) and reusing it (warm);
- training throughput: images a second over `--steps` optimiser steps of the compact model (64 px), after 5
  warm-up steps, single process and 2-process DDP (gloo, each rank its DistributedSampler shard);
- peak RSS of the process and its largest child (DDP: the largest rank and both together).

The in-memory path (`--cache ram`) runs on the smallest size as the reference of throughput.

    python benchmarks/scale.py [--sizes 10000,100000,300000] [--steps 100]
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SIZE_PX = 224
IMAGE_SIZE = 64  # the compact model's input


def generate(root: Path, n: int, reuse: Path | None) -> Path:
    """An AffectNet-shaped folder of n distinct 224 px JPEGs (reusing the files of a smaller set by hard links)."""
    import numpy as np
    from PIL import Image

    from hardsight.data.io import parallel_map

    images, ann = root / "images", root / "annotations"
    if (root / "complete").is_file():
        return root
    images.mkdir(parents=True, exist_ok=True)
    ann.mkdir(parents=True, exist_ok=True)
    base = np.random.default_rng(0).integers(0, 255, (8, SIZE_PX, SIZE_PX, 3), dtype=np.uint8)

    def make(i: int) -> None:
        jpg, exp = images / f"{i}.jpg", ann / f"{i}_exp.npy"
        if jpg.exists():
            return
        if reuse is not None and (reuse / "images" / f"{i}.jpg").exists():
            os.link(reuse / "images" / f"{i}.jpg", jpg)
            os.link(reuse / "annotations" / f"{i}_exp.npy", exp)
            return
        a = base[i % 8].copy()
        a[:4, :4] = np.frombuffer(i.to_bytes(48, "little"), np.uint8).reshape(4, 4, 3)  # distinct bytes per file
        a[8:] //= 1 + i % 3
        Image.fromarray(a).save(jpg, quality=85)
        np.save(exp, np.array(i % 8))

    parallel_map(make, list(range(n)), workers=8, progress=f"generating {n:,} images")
    (root / "complete").write_text(str(n))
    return root


def measure(args) -> dict:
    """One measurement in this process (run by the parent as a subprocess): prints a JSON object."""
    import torch

    from hardsight.config import TrainConfig
    from hardsight.data.image.labels import read_labelled_files
    from hardsight.data.image.index import file_digests
    from hardsight.data.image.prepare import ImageDataModule, prepare_image_data

    torch.set_num_threads(max(1, os.cpu_count() // args.processes))
    out: dict = {}
    if args.what == "index":
        start = time.perf_counter()
        rows, _ = read_labelled_files(Path(args.data))
        file_digests([r[0] for r in rows])
        out["seconds"] = time.perf_counter() - start
    else:
        cfg = TrainConfig(task="image", data=args.data, model="compact", image_size=IMAGE_SIZE, batch_size=64,
                          cache=args.cache, workers=args.workers, split=(0.98, 0.01, 0.01), augment=0.0)
        start = time.perf_counter()
        data = prepare_image_data(cfg)
        loader = ImageDataModule(data, cfg)
        if args.processes > 1:
            out.update(ddp_throughput(loader, cfg, args))
        else:
            batches = endless(loader.train_dataloader())
            next(batches)
            out["first_batch"] = time.perf_counter() - start
            out["images_per_s"] = throughput(batches, data.classes, args.steps)
    out["peak_rss_mb"] = peak_rss_mb()
    return out


def peak_rss_mb() -> float:
    """This process's peak resident memory plus its largest child's (a DataLoader worker), in MB."""
    return (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
            + resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss) / 1024


def endless(loader):
    """Batches epoch after epoch (a small set has fewer batches than the steps timed)."""
    while True:
        yield from loader


def throughput(batches, classes, steps: int, wrap=None) -> float:
    """Images a second of compact-model training steps (forward, backward, AdamW) over `steps` batches."""
    import torch

    from hardsight.models import build_model

    model = build_model("compact", "image", num_classes=len(classes))
    model = wrap(model) if wrap else model
    opt = torch.optim.AdamW(model.parameters(), 1e-3)
    seen, start = 0, None
    for i, (x, y) in enumerate(batches):
        if i == 5:
            seen, start = 0, time.perf_counter()
        loss = torch.nn.functional.binary_cross_entropy_with_logits(model(x), y)
        opt.zero_grad()
        loss.backward()
        opt.step()
        seen += len(x)
        if i == 5 + steps:
            break
    return seen / (time.perf_counter() - start)


def ddp_throughput(module, cfg, args) -> dict:
    """Both ranks on this machine (gloo): each reads its DistributedSampler shard; total images a second."""
    import torch.multiprocessing as mp

    queue = mp.get_context("spawn").SimpleQueue()
    procs = [mp.get_context("spawn").Process(target=_rank, args=(r, args, queue)) for r in range(args.processes)]
    for p in procs:
        p.start()
    results = [queue.get() for _ in procs]
    for p in procs:
        p.join()
    return {"images_per_s": sum(r["images_per_s"] for r in results),
            "rank_peak_rss_mb": max(r["peak_rss_mb"] for r in results),
            "ranks_peak_rss_mb": sum(r["peak_rss_mb"] for r in results)}


def _rank(rank: int, args, queue) -> None:
    import torch
    import torch.distributed as dist
    from torch.nn.parallel import DistributedDataParallel
    from torch.utils.data import DataLoader, DistributedSampler

    from hardsight.config import TrainConfig
    from hardsight.data.image.prepare import ImageDataModule, prepare_image_data

    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT="29517")
    dist.init_process_group("gloo", rank=rank, world_size=args.processes)
    torch.set_num_threads(max(1, os.cpu_count() // args.processes))
    cfg = TrainConfig(task="image", data=args.data, model="compact", image_size=IMAGE_SIZE, batch_size=64,
                      cache=args.cache, workers=args.workers, split=(0.98, 0.01, 0.01), augment=0.0,
                      devices=args.processes)
    data = prepare_image_data(cfg)
    ds = ImageDataModule(data, cfg).dataset("train", train=True)
    loader = DataLoader(ds, batch_size=64, sampler=DistributedSampler(ds, args.processes, rank, seed=0),
                        num_workers=args.workers)
    ips = throughput(endless(loader), data.classes, args.steps, wrap=DistributedDataParallel)
    queue.put({"images_per_s": ips, "peak_rss_mb": peak_rss_mb()})
    dist.destroy_process_group()


def run(what: str, data: Path, cache: str, args, processes: int = 1, env: dict | None = None) -> dict:
    cmd = [sys.executable, __file__, "--measure", what, "--data", str(data), "--cache", cache, "--steps",
           str(args.steps), "--processes", str(processes), "--workers", str(args.workers)]
    proc = subprocess.run(cmd, capture_output=True, text=True, env={**os.environ, **(env or {})})
    if proc.returncode:
        raise SystemExit(f"{' '.join(cmd)} failed:\n{proc.stderr[-3000:]}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sizes", default="10000,100000,300000")
    ap.add_argument("--steps", type=int, default=100)
    ap.add_argument("--workers", type=int, default=0, help="DataLoader workers: the disk cache holds decoded pictures, "
                                                           "so reading needs none on two cores")
    ap.add_argument("--out", type=Path, default=ROOT / "bench-runs" / "scale-data")
    ap.add_argument("--measure", help=argparse.SUPPRESS)
    ap.add_argument("--data", help=argparse.SUPPRESS)
    ap.add_argument("--cache", default="disk", help=argparse.SUPPRESS)
    ap.add_argument("--processes", type=int, default=1, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.measure:
        args.what = args.measure
        print(json.dumps(measure(args)))
        return
    import shutil
    import tempfile

    sizes = sorted(int(s) for s in args.sizes.split(","))
    folders, previous = {}, None
    for n in reversed(sizes):  # the largest first: the smaller sets hard-link its files
        folders[n] = generate(args.out / f"affectnet-{n}", n, previous)
        previous = folders[n]
    rows = []
    for n in sizes:
        cache = Path(tempfile.mkdtemp(prefix="hardsight-scale-cache-"))
        env = {"HARDSIGHT_CACHE": str(cache)}
        row = {"files": n, "index_cold": run("index", folders[n], "disk", args, env=env)["seconds"],
               "index_warm": run("index", folders[n], "disk", args, env=env)["seconds"]}
        cold = run("train", folders[n], "disk", args, env=env)
        warm = run("train", folders[n], "disk", args, env=env)
        ddp = run("train", folders[n], "disk", args, processes=2, env=env)
        row.update(first_batch_cold=cold["first_batch"], first_batch_warm=warm["first_batch"],
                   images_per_s=warm["images_per_s"], peak_rss_mb=max(cold["peak_rss_mb"], warm["peak_rss_mb"]),
                   ddp_images_per_s=ddp["images_per_s"], ddp_rank_rss_mb=ddp["rank_peak_rss_mb"],
                   ddp_ranks_rss_mb=ddp["ranks_peak_rss_mb"])
        if n == sizes[0]:
            ram = run("train", folders[n], "ram", args, env=env)
            row.update(ram_images_per_s=ram["images_per_s"], ram_first_batch=ram["first_batch"],
                       ram_peak_rss_mb=ram["peak_rss_mb"])
        rows.append(row)
        shutil.rmtree(cache, ignore_errors=True)
        print(json.dumps(row), flush=True)

    print(f"\nsynthetic AffectNet-shaped sets, 224 px JPEG, compact model at {IMAGE_SIZE} px, batch 64, "
          f"{args.steps} steps, {args.workers} loader workers, {os.cpu_count()} CPUs\n")
    print("| files | index cold s | index warm s | first batch, cache built s | first batch, cache reused s | "
          "images/s | peak RSS MB | DDP x2 images/s | DDP rank RSS MB (both) |\n|---|---|---|---|---|---|---|---|---|")
    for r in rows:
        print(f"| {r['files']:,} | {r['index_cold']:.1f} | {r['index_warm']:.1f} | {r['first_batch_cold']:.1f} | "
              f"{r['first_batch_warm']:.1f} | {r['images_per_s']:.0f} | {r['peak_rss_mb']:.0f} | "
              f"{r['ddp_images_per_s']:.0f} | {r['ddp_rank_rss_mb']:.0f} ({r['ddp_ranks_rss_mb']:.0f}) |")
    r = rows[0]
    print(f"\nin RAM ({r['files']:,} files): first batch {r['ram_first_batch']:.1f} s, {r['ram_images_per_s']:.0f} "
          f"images/s ({r['images_per_s'] / r['ram_images_per_s'] - 1:+.0%} streaming from disk), peak RSS "
          f"{r['ram_peak_rss_mb']:.0f} MB")
    if len(rows) > 1:
        print(f"peak RSS from {rows[0]['files']:,} to {rows[-1]['files']:,} files: "
              f"{rows[-1]['peak_rss_mb'] / rows[0]['peak_rss_mb'] - 1:+.0%}")


if __name__ == "__main__":
    main()
