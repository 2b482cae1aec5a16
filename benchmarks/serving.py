"""Serving benchmark: the exported text reader on ONNX Runtime vs PyTorch, beside ddddocr and captcha-whisperer,
then HTTP load on loopback. Trains nothing.

Takes a finished run (default: the newest `bench-runs/text_captcha-*` holding report.md, as written by
benchmarks/text_captcha.py) and the test images of its split.json. If RUN/model.onnx is missing or was exported
from another checkpoint, the run is exported into a temporary copy (the run folder is left as it is).

1. Inference, on the same images held in memory as encoded bytes: ms per image at batch 1 / 16 / 64 end to end
   (decode, preprocess, model, decoding), and for our reader also the model alone (forward + CTC decoding on
   preprocessed tensors). ddddocr and captcha-whisperer run their bundled ONNX models through their own APIs;
   ddddocr has no batch API, so it has a batch-1 row only. Exact match is on the test labels (case-folded for
   the two zero-shot readers, which were trained on other CAPTCHA schemes).
2. HTTP: `hardsight serve` in a subprocess on 127.0.0.1, single-image multipart POST /v1/read requests from
   keep-alive connections at a fixed concurrency: requests/s, p50 / p99 latency, errors, and whether every answer
   matches the in-process read of the same image.

    pip install -e '.[bench]' && python benchmarks/serving.py [--run RUN] [--data DIR] [--requests 2000]
"""

from __future__ import annotations

import argparse
import asyncio
import io
import json
import math
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from dataclasses import dataclass
from importlib.metadata import version
from pathlib import Path
from typing import Callable

ROOT = Path(__file__).resolve().parents[1]
BATCHES = (1, 16, 64)


@dataclass
class Row:
    reader: str
    engine: str
    batch: int
    ms_end_to_end: float
    ms_model: float | None
    exact_match: float | None


def newest_run() -> Path | None:
    runs = [p for p in (ROOT / "bench-runs").glob("text_captcha-*") if (p / "report.md").is_file()]
    return max(runs, key=lambda p: p.stat().st_mtime, default=None)


def ms_per_image(fn: Callable[[list], object], items: list, batch: int, min_seconds: float) -> float:
    """Mean ms per image over full batches, repeated until `min_seconds` have passed (after one warm-up batch)."""
    pool = items * math.ceil(max(2 * batch, len(items)) / len(items))
    chunks = [pool[i:i + batch] for i in range(0, len(pool) - batch + 1, batch)]
    fn(chunks[0])
    done, start = 0, time.perf_counter()
    while time.perf_counter() - start < min_seconds or not done:
        for chunk in chunks:
            fn(chunk)
            done += len(chunk)
    return (time.perf_counter() - start) * 1000 / done


def exact(preds: list[str], labels: list[str], fold: bool = False) -> float:
    norm = (lambda s: s.lower()) if fold else (lambda s: s)
    return sum(norm(p) == norm(t) for p, t in zip(preds, labels)) / len(labels)


def onnx_run(run: Path, scratch: Path) -> Path:
    """`run` itself when its model.onnx is current, else an exported copy under `scratch`."""
    from hardsight.engine.runtimes import onnx_is_current
    from hardsight.engine.exporter import export
    from hardsight.runs.folder import RunFolder

    current, why = onnx_is_current(RunFolder(run))
    if current:
        return run
    copy = scratch / run.name
    shutil.copytree(run, copy, ignore=shutil.ignore_patterns("plots", "evaluations", "model.onnx*"))
    result = export(copy)
    print(f"{why}: exported a copy to {copy} (max probability difference vs PyTorch {result.max_prob_diff:.1e})")
    return copy


def bench_ours(run: Path, blobs: list[bytes], labels: list[str], threads: int, seconds: float) -> list[Row]:
    from hardsight.data.io import load_image
    from hardsight.engine.predictor import Predictor, read_tensors
    from hardsight.transforms import text_preprocess

    rows, texts = [], {}
    for engine in ("onnx", "torch"):
        pred = Predictor(run, engine=engine, threads=threads)
        mode = "L" if pred.reader.spec.channels == 1 else "RGB"
        tensors = [text_preprocess(load_image(io.BytesIO(b), mode), pred.reader.spec) for b in blobs]
        texts[engine] = [r.text for r in pred.predict_images(blobs, batch_size=64)]
        for b in BATCHES:
            e2e = ms_per_image(lambda chunk: pred.predict_images(chunk, batch_size=b), blobs, b, seconds)
            model = ms_per_image(lambda chunk: read_tensors(pred.reader, chunk, b), tensors, b, seconds)
            rows.append(Row("hardsight crnn (trained)", engine, b, e2e, model, exact(texts[engine], labels)))
    same = sum(a == b for a, b in zip(texts["onnx"], texts["torch"]))
    print(f"engines agree on {same}/{len(blobs)} test images")
    return rows


def bench_ddddocr(blobs: list[bytes], labels: list[str], seconds: float) -> list[Row]:
    try:
        import ddddocr
    except ImportError:
        print("ddddocr is not installed (pip install -e '.[bench]'): its row is left out")
        return []
    ocr = ddddocr.DdddOcr(show_ad=False)
    preds = [ocr.classification(b) for b in blobs]
    ms = ms_per_image(lambda chunk: [ocr.classification(b) for b in chunk], blobs, 1, seconds)
    return [Row(f"ddddocr {version('ddddocr')} (zero-shot)", "onnxruntime", 1, ms, None,
                exact(preds, labels, fold=True))]


def bench_whisperer(blobs: list[bytes], labels: list[str], threads: int, seconds: float) -> list[Row]:
    try:
        from captcha_whisperer import CaptchaRecognizer, __version__
        from captcha_whisperer.preprocess import preprocess_bytes
    except ImportError:
        print("captcha-whisperer is not installed (pip install -e '.[bench]'): its rows are left out")
        return []
    rec = CaptchaRecognizer(threads=threads)

    def read(chunk: list[bytes]) -> list[str]:
        return [r["text"] for r in rec.recognize_batch([preprocess_bytes(b) for b in chunk])]

    match = exact(read(blobs), labels, fold=True)
    return [Row(f"captcha-whisperer {__version__} (zero-shot)", "onnxruntime", b,
                ms_per_image(read, blobs, b, seconds), None, match) for b in BATCHES]


# -- HTTP ------------------------------------------------------------------------------------------------------
def multipart_request(data: bytes, name: str) -> bytes:
    boundary = b"hardsight-bench-7f3a9c1e5b"
    body = (b"--" + boundary + b"\r\nContent-Disposition: form-data; name=\"file\"; filename=\"" + name.encode()
            + b"\"\r\nContent-Type: image/png\r\n\r\n" + data + b"\r\n--" + boundary + b"--\r\n")
    head = (f"POST /v1/read HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: multipart/form-data; "
            f"boundary={boundary.decode()}\r\nContent-Length: {len(body)}\r\n\r\n").encode()
    return head + body


async def load(port: int, requests: list[bytes], total: int, concurrency: int) -> tuple[list[float], list, float]:
    """`total` requests cycling through `requests`, from `concurrency` keep-alive connections."""
    latencies: list[float] = []
    answers: list = [None] * total
    counter = iter(range(total))

    async def worker() -> None:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        try:
            for i in counter:
                start = time.perf_counter()
                writer.write(requests[i % len(requests)])
                await writer.drain()
                head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 30)
                length = next(int(line.split(b":")[1]) for line in head.split(b"\r\n")
                              if line.lower().startswith(b"content-length:"))
                body = await asyncio.wait_for(reader.readexactly(length), 30)
                latencies.append(time.perf_counter() - start)
                status = int(head.split(b" ", 2)[1])
                answers[i] = (status, json.loads(body))
        finally:
            writer.close()

    start = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(concurrency)))
    return latencies, answers, time.perf_counter() - start


def serve(run: Path, port: int, log: Path) -> subprocess.Popen:
    """`hardsight serve` with its default threads (all cores but one for the model)."""
    cmd = [sys.executable, "-m", "hardsight", "serve", str(run), "--port", str(port), "--engine", "onnx",
           "--no-access-log"]
    proc = subprocess.Popen(cmd, stdout=log.open("w"), stderr=subprocess.STDOUT)
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise SystemExit(f"the server exited ({proc.returncode}):\n{log.read_text()[-2000:]}")
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=2) as r:
                if r.status == 200:
                    return proc
        except OSError:
            time.sleep(0.2)
    proc.terminate()
    raise SystemExit(f"the server did not answer /healthz within 120 s:\n{log.read_text()[-2000:]}")


def bench_http(run: Path, files: list[Path], expected: list[str], total: int, concurrency: int,
               scratch: Path) -> tuple[dict, str]:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    requests = [multipart_request(f.read_bytes(), f.name) for f in files]
    proc = serve(run, port, scratch / "serve.log")
    try:
        asyncio.run(load(port, requests, min(100, total), concurrency))  # warm-up
        latencies, answers, wall = asyncio.run(load(port, requests, total, concurrency))
    finally:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
    errors = sum(1 for a in answers if a is None or a[0] != 200)
    agree = sum(1 for i, a in enumerate(answers) if a and a[0] == 200
                and a[1]["results"][0]["text"] == expected[i % len(expected)])
    lat = sorted(latencies)
    pick = lambda q: lat[min(len(lat) - 1, int(q * len(lat)))] * 1000  # noqa: E731
    return ({"requests": total, "concurrency": concurrency, "rps": total / wall, "p50": pick(0.50),
             "p99": pick(0.99), "max": lat[-1] * 1000, "errors": errors},
            f"answers match in-process reads: {agree}/{total}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--run", type=Path, default=None, help="run folder (default: newest bench-runs/text_captcha-*)")
    ap.add_argument("--data", type=Path, default=None, help="dataset folder (default: the root in split.json)")
    ap.add_argument("--requests", type=int, default=2000)
    ap.add_argument("--concurrency", type=int, default=16)
    ap.add_argument("--threads", type=int, default=os.cpu_count() or 1)
    ap.add_argument("--seconds", type=float, default=2.0, help="least time per inference measurement")
    args = ap.parse_args()

    run = args.run or newest_run()
    if run is None or not (run / "split.json").is_file():
        raise SystemExit("no run to benchmark: pass --run RUN, or run benchmarks/text_captcha.py first "
                         "(it writes bench-runs/text_captcha-N)")
    split = json.loads((run / "split.json").read_text())
    data = args.data or Path(split["root"])
    files = [data / f for f in split["test"]]
    missing = [f for f in files if not f.is_file()]
    if missing:
        raise SystemExit(f"{len(missing)} test images of {run / 'split.json'} are missing, e.g. {missing[0]} "
                         "(pass --data DIR)")
    blobs, labels = [f.read_bytes() for f in files], [f.stem for f in files]

    import onnxruntime
    import torch

    with tempfile.TemporaryDirectory(prefix="hardsight-bench-") as tmp:
        scratch = Path(tmp)
        served = onnx_run(run, scratch)
        rows = bench_ours(served, blobs, labels, args.threads, args.seconds)
        rows += bench_whisperer(blobs, labels, args.threads, args.seconds)
        rows += bench_ddddocr(blobs, labels, args.seconds)
        from hardsight.engine.predictor import Predictor

        expected = [r.text for r in Predictor(served, engine="onnx", threads=args.threads).predict_images(blobs)]
        http, agreement = bench_http(served, files, expected, args.requests, args.concurrency, scratch)

    print(f"\n{len(files)} test images of {run} ({data}); {os.cpu_count()} CPUs, {args.threads} threads; "
          f"onnxruntime {onnxruntime.__version__}, torch {torch.__version__}\n")
    head = (f"| {'reader':36} | {'engine':11} | batch | ms/img bytes->text | images/s | ms/img model only "
            f"| exact match |")
    print(head)
    print("|" + "|".join("-" * len(c) for c in head.split("|")[1:-1]) + "|")
    for r in rows:
        model = f"{r.ms_model:.3f}" if r.ms_model is not None else "-"
        match = f"{r.exact_match:.2%}" if r.exact_match is not None else "-"
        print(f"| {r.reader:36} | {r.engine:11} | {r.batch:5} | {r.ms_end_to_end:18.3f} | "
              f"{1000 / r.ms_end_to_end:8.0f} | {model:>17} | {match:>11} |")
    ours64 = next(r for r in rows if r.engine == "onnx" and r.batch == 64)
    print(f"\ntarget <= 1 ms/image at batch 64 (ONNX Runtime, bytes->text): {ours64.ms_end_to_end:.3f} ms "
          f"[{'met' if ours64.ms_end_to_end <= 1.0 else 'MISSED'}]")

    print(f"\nHTTP on loopback: POST /v1/read, one image per request, {http['requests']} requests at concurrency "
          f"{http['concurrency']} (server and client share the {os.cpu_count()} CPUs)\n")
    print("| requests/s | p50 ms | p99 ms | max ms | errors |")
    print("|-----------:|-------:|-------:|-------:|-------:|")
    print(f"| {http['rps']:10.0f} | {http['p50']:6.1f} | {http['p99']:6.1f} | {http['max']:6.1f} | "
          f"{http['errors']:6} |")
    print(f"\n{agreement}; target p99 < 50 ms with zero errors: "
          f"[{'met' if http['p99'] < 50 and http['errors'] == 0 else 'MISSED'}]")


if __name__ == "__main__":
    main()
