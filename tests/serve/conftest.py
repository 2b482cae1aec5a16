"""A live `hardsight serve` on loopback (uvicorn in a thread), with small limits so every one can be hit."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from hardsight.serve import ServeSettings
from hardsight.serve.app import server_config
from tests.serve.runs import exported_run


@dataclass(frozen=True)
class LiveServer:
    url: str
    run: Path
    settings: ServeSettings


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="session")
def exported(trained_run, tmp_path_factory) -> Path:
    return exported_run(trained_run, tmp_path_factory)[0]


def colour_png(colour, size=40, seed=0) -> bytes:
    """A noisy square of one colour, PNG-encoded."""
    import io

    import numpy as np
    from PIL import Image

    rng = np.random.default_rng(seed)
    a = np.clip(np.array(colour) + rng.normal(0, 20, (size, size, 3)), 0, 255).astype(np.uint8)
    buf = io.BytesIO()
    Image.fromarray(a).save(buf, "PNG")
    return buf.getvalue()


@pytest.fixture(scope="session")
def colours(tmp_path_factory) -> Path:
    """Class folders red/ and blue/, 10 tiles each."""
    data = tmp_path_factory.mktemp("colours")
    for name, colour in {"red": (200, 40, 40), "blue": (40, 60, 200)}.items():
        (data / name).mkdir()
        for i in range(10):
            (data / name / f"{i}.png").write_bytes(colour_png(colour, seed=i))
    return data


@pytest.fixture(scope="session")
def colour_run(colours, tmp_path_factory) -> Path:
    """A tiny image classifier (2 epochs, 32 px) exported to model.onnx: served on ONNX Runtime, as a shipped
    classifier would be."""
    from hardsight import TrainConfig, train
    from hardsight.engine.exporter import export

    run = tmp_path_factory.mktemp("runs") / "colours"
    train(TrainConfig(task="image", data=str(colours), out=str(run), model="compact", epochs=2, image_size=32,
                      batch_size=8, split=(0.6, 0.2, 0.2)), progress=False)
    export(run)
    return run


@contextmanager
def serving(settings: ServeSettings) -> Iterator[str]:
    """uvicorn configured as `hardsight serve` configures it (timeouts, header guard), on a free loopback port."""
    import uvicorn

    port = free_port()
    srv = uvicorn.Server(server_config(settings, port=port, log_level="warning", access_log=False))
    thread = threading.Thread(target=srv.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 60
    while not srv.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            raise RuntimeError("the test server did not start")
        time.sleep(0.05)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        srv.should_exit = True
        thread.join(timeout=10)


# per module, not per session: a live server left in the pytest process slows every later in-process training
# about threefold (measured: 2.1 s epochs became 5-6 s), so each test module shuts its server down when it ends
@pytest.fixture(scope="module")
def server(exported) -> LiveServer:
    settings = ServeSettings(runs=(exported,), max_upload_mb=1.0, max_pixels=1_000_000, max_batch=8,
                             body_timeout_s=2.0, threads=1)
    with serving(settings) as url:
        yield LiveServer(url, exported, settings)


@pytest.fixture()
def client(server) -> httpx.Client:
    with httpx.Client(base_url=server.url, timeout=30) as c:
        yield c
