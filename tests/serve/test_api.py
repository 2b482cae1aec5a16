"""The HTTP service against a live server on loopback: answers, every bad-input case, concurrency, lifespan."""

from __future__ import annotations

import base64
import io
import socket
import struct
import time
import zlib
from concurrent.futures import ThreadPoolExecutor

import httpx
import pytest
from fastapi.testclient import TestClient
from PIL import Image
from typer.testing import CliRunner

from hardsight.errors import RunError
from hardsight.engine.predictor import Predictor
from hardsight.serve import ServeSettings, create_app


def png(size: tuple[int, int], mode: str = "L") -> bytes:
    buf = io.BytesIO()
    Image.new(mode, size, 255).save(buf, "PNG")
    return buf.getvalue()


def png_header(width: int, height: int) -> bytes:
    """A PNG whose header claims width x height, with almost no pixel data behind it."""
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0))
            + chunk(b"IDAT", zlib.compress(bytes(100))) + chunk(b"IEND", b""))


EPS = (b"%!PS-Adobe-3.0 EPSF-3.0\n%%BoundingBox: 0 0 10 10\n%%EndComments\n"
       b"newpath 0 0 moveto 10 10 lineto stroke showpage\n%%EOF\n")


@pytest.fixture(scope="module")
def images(captchas) -> list[tuple[str, bytes]]:
    return [(p.name, p.read_bytes()) for p in sorted(captchas.glob("*.png"))[:6]]


def test_health_models_and_docs(client, server):
    assert client.get("/healthz").json() == {"status": "ok", "models": 1}
    body = client.get("/v1/models").json()
    (model,) = body["models"]
    assert model["name"] == server.run.name and model["task"] == "text" and model["engine"] == "onnx"
    assert model["route"] == "/v1/read" and model["input"]["height"] == 32
    assert body["limits"] == {"max_upload_mb": 1.0, "max_pixels": 1_000_000, "max_batch": 8}
    spec = client.get("/openapi.json").json()
    assert set(spec["paths"]) >= {"/v1/read", "/v1/classify", "/v1/solve", "/v1/models", "/healthz"}
    assert set(spec["paths"]["/v1/read"]["post"]["requestBody"]["content"]) == {"multipart/form-data",
                                                                                 "application/json"}
    assert client.get("/docs").status_code == 200


def test_read_answers_like_the_predictor(client, server, images, captchas):
    expected = Predictor(server.run, engine="onnx").predict([captchas / n for n, _ in images])
    one = client.post("/v1/read", files={"file": images[0]}).json()
    assert one["model"] == server.run.name and one["engine"] == "onnx" and one["ms"] > 0
    assert [(r["file"], r["text"]) for r in one["results"]] == [(images[0][0], expected[0].text)]

    many = client.post("/v1/read", files=[("files", im) for im in images]).json()["results"]
    assert [r["file"] for r in many] == [n for n, _ in images]
    assert [r["text"] for r in many] == [e.text for e in expected]
    assert all(abs(r["confidence"] - e.confidence) < 1e-5 for r, e in zip(many, expected))

    as_json = client.post("/v1/read", json={"images": [base64.b64encode(b).decode() for _, b in images],
                                            "names": [n for n, _ in images]}).json()["results"]
    assert as_json == many
    data_url = "data:image/png;base64," + base64.b64encode(images[0][1]).decode()
    single = client.post("/v1/read", json={"image": data_url, "model": server.run.name}).json()["results"]
    assert single[0]["text"] == expected[0].text and single[0]["file"] == "image-0"


def _truncated(data: bytes) -> bytes:
    return data[: len(data) // 2]


def _corrupt(data: bytes) -> bytes:
    mid = len(data) // 2
    return data[:mid - 200] + bytes(400) + data[mid + 200:]


BAD_INPUTS = {
    # name: (route, request kwargs built from one good image, status, words in `error`)
    "not an image": ("/v1/read", lambda im: {"files": {"file": ("notes.txt", b"hello, not a picture")}}, 422,
                     "not an image"),
    "empty file": ("/v1/read", lambda im: {"files": {"file": ("empty.png", b"")}}, 422, "not an image"),
    "truncated image": ("/v1/read", lambda im: {"files": {"file": ("cut.png", _truncated(im))}}, 422, "corrupt"),
    "corrupt image": ("/v1/read", lambda im: {"files": {"file": ("bad.png", _corrupt(im))}}, 422, "corrupt"),
    "decompression bomb": ("/v1/read", lambda im: {"files": {"file": ("bomb.png", png((4000, 4000), "1"))}}, 413,
                           "image too large"),
    "header claims 40000x40000": ("/v1/read", lambda im: {"files": {"file": ("huge.png", png_header(40000, 40000))}},
                                  413, "image too large"),
    "EPS upload": ("/v1/read", lambda im: {"files": {"file": ("drawing.eps", EPS)}}, 422, "not an image"),
    "oversized upload": ("/v1/read", lambda im: {"files": {"file": ("big.png", im + bytes(1_200_000))}}, 413,
                         "upload too large"),
    "oversized chunked upload": ("/v1/read", lambda im: {
        "content": iter([b"x" * 65536] * 24), "headers": {"content-type": "application/json"}}, 413,
        "upload too large"),
    "empty batch": ("/v1/read", lambda im: {"data": {"model": "reader"}, "files": {"other": ("a.png", im)}}, 400,
                    "empty batch"),
    "empty JSON batch": ("/v1/read", lambda im: {"json": {"images": []}}, 400, "empty batch"),
    "too large batch": ("/v1/read", lambda im: {"files": [("files", (f"{i}.png", im)) for i in range(9)]}, 413,
                        "batch too large"),
    "too large JSON batch": ("/v1/read", lambda im: {"json": {"images": [base64.b64encode(im).decode()] * 9}},
                             413, "batch too large"),
    "wrong task for the model": ("/v1/classify?model=reader", lambda im: {"files": {"file": ("a.png", im)}}, 400,
                                 "wrong task"),
    "no classify model": ("/v1/classify", lambda im: {"files": {"file": ("a.png", im)}}, 404,
                          "no classify model loaded"),
    "no solve model": ("/v1/solve", lambda im: {"files": {"file": ("a.png", im)}, "data": {"target": "bus"}}, 404,
                       "no solve model loaded"),
    "unknown model": ("/v1/read?model=nope", lambda im: {"files": {"file": ("a.png", im)}}, 404, "unknown model"),
    "not base64": ("/v1/read", lambda im: {"json": {"image": "%%% not base64 %%%"}}, 422, "not base64"),
    "malformed JSON": ("/v1/read", lambda im: {"content": b"{images:", "headers": {"content-type":
                                                                                     "application/json"}}, 400,
                       "malformed JSON"),
    "deeply nested JSON": ("/v1/read", lambda im: {"content": b"[" * 100_000 + b"]" * 100_000,
                                                   "headers": {"content-type": "application/json"}}, 400,
                           "malformed JSON"),
    "JSON of the wrong shape": ("/v1/read", lambda im: {"json": {"images": [1, 2]}}, 422, "wrong JSON shape"),
    "file sent as text": ("/v1/read", lambda im: {"data": {"file": "abc"}, "files": {"x": ("a.png", im)}}, 422,
                          "not a file"),
    "unsupported content type": ("/v1/read", lambda im: {"content": im, "headers": {"content-type": "image/png"}},
                                 415, "unsupported content type"),
}


@pytest.mark.parametrize("case", list(BAD_INPUTS))
def test_bad_input_is_a_clear_4xx_and_the_server_keeps_serving(client, images, case):
    route, build, status, words = BAD_INPUTS[case]
    response = client.post(route, **build(images[0][1]))
    body = response.json()
    assert response.status_code == status, body
    assert words in body["error"] and body["detail"], body
    after = client.post("/v1/read", files={"file": images[0]})
    assert after.status_code == 200 and len(after.json()["results"]) == 1


def test_unknown_routes_and_methods_answer_json(client):
    for response, status in [(client.get("/v2/read"), 404), (client.get("/v1/read"), 405)]:
        assert response.status_code == status and set(response.json()) == {"error", "detail"}


def test_a_body_that_stops_arriving_gets_a_408(server, client, images):
    host, port = server.url.removeprefix("http://").split(":")
    start = time.monotonic()
    with socket.create_connection((host, int(port)), timeout=15) as s:
        s.sendall(b"POST /v1/read HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
                  b"Content-Length: 1000\r\n\r\n{\"images\": [")
        status_line = s.recv(4096).split(b"\r\n")[0]
    assert b" 408 " in status_line and time.monotonic() - start < 10
    assert client.post("/v1/read", files={"file": images[0]}).status_code == 200


def test_concurrent_requests_are_answered_without_blocking_the_loop(server, images):
    def read(i: int) -> list[str]:
        with httpx.Client(base_url=server.url, timeout=60) as c:
            r = c.post("/v1/read", files=[("files", images[(i + k) % len(images)]) for k in range(1 + i % 8)])
            assert r.status_code == 200, r.text
            return [x["file"] for x in r.json()["results"]]

    with ThreadPoolExecutor(16) as pool, httpx.Client(base_url=server.url, timeout=60) as probe:
        futures = [pool.submit(read, i) for i in range(32)]
        health = []
        while not all(f.done() for f in futures) and len(health) < 50:
            t = time.perf_counter()
            assert probe.get("/healthz").status_code == 200
            health.append(time.perf_counter() - t)
        answers = [f.result() for f in futures]
    # each request got its own images back, in order, though they were batched with others
    assert answers == [[images[(i + k) % len(images)][0] for k in range(1 + i % 8)] for i in range(32)]
    assert health and max(health) < 1.0  # the loop answered while inference ran on its thread


def test_models_load_once_in_the_lifespan(exported):
    app = create_app(ServeSettings(runs=(exported,), engine="onnx"))
    assert not hasattr(app.state, "models")  # creating the app loads nothing
    with TestClient(app, base_url="http://127.0.0.1") as c:
        loaded = app.state.models
        assert c.get("/healthz").json()["models"] == 1
        assert c.post("/v1/read", files={"file": ("a.png", png((120, 40)))}).status_code == 200
        assert app.state.models is loaded


def test_unusable_run_folders_fail_before_serving(tmp_path, trained_run):
    with pytest.raises(RunError, match="not a run folder"):
        create_app(ServeSettings(runs=(tmp_path,)))
    with pytest.raises(RunError, match="hardsight export"):
        create_app(ServeSettings(runs=(trained_run,), engine="onnx"))  # the session run is never exported
    from hardsight.cli import app

    result = CliRunner().invoke(app, ["serve", str(tmp_path / "missing")])
    assert result.exit_code == 2 and "no such run folder" in " ".join(result.output.split())
