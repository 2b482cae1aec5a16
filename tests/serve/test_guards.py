"""What guards the service: connection timeouts, Host and API-key checks, image formats, 500s, offline docs, and
the CLI failing before it serves."""

from __future__ import annotations

import io
import logging
import re
import shutil
import socket
import threading
import time

import httpx
import pytest
from fastapi.testclient import TestClient
from PIL import Image
from typer.testing import CliRunner

from hardsight.serve import ServeSettings, create_app
from hardsight.serve.app import exposure_warning
from hardsight.serve.errors import ApiError
from hardsight.serve.guards import host_name, served_name
from hardsight.serve.uploads import FORMATS, decode_image
from tests.serve.conftest import serving
from tests.serve.test_api import EPS, png, png_header

LOCAL = "http://127.0.0.1"  # TestClient's default Host, testserver, is not one the service answers to


# ---------------------------------------------------------------- connections


@pytest.fixture(scope="module")
def strict_server(exported) -> str:
    with serving(ServeSettings(runs=(exported,), engine="onnx", threads=1, header_timeout_s=1.0,
                               keep_alive_s=1.0)) as url:
        yield url


def _connect(url: str) -> socket.socket:
    host, port = url.removeprefix("http://").split(":")
    return socket.create_connection((host, int(port)), timeout=5)


def _read_until_closed(s: socket.socket) -> bytes:
    data = b""
    while chunk := s.recv(4096):
        data += chunk
    return data


def test_a_connection_that_sends_nothing_is_closed_with_a_408(strict_server):
    start = time.monotonic()
    with _connect(strict_server) as s:
        answer = _read_until_closed(s)
    assert answer.startswith(b"HTTP/1.1 408 ") and b"request head too slow" in answer
    assert 0.8 < time.monotonic() - start < 4


def test_headers_sent_a_line_at_a_time_are_cut_off(strict_server):
    start = time.monotonic()
    with _connect(strict_server) as s:
        s.sendall(b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n")
        s.settimeout(0.25)
        answer = b""
        while time.monotonic() - start < 5 and not answer:
            try:
                s.sendall(b"X-Slow: 1\r\n")  # every header arrives, the end of them never does
                answer = s.recv(4096)
            except socket.timeout:
                continue
            except OSError:  # closed while sending
                break
    assert answer.startswith(b"HTTP/1.1 408 ") or not answer
    assert time.monotonic() - start < 4


def test_keep_alive_connections_serve_requests_then_close_when_idle(strict_server):
    request = b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n"
    with _connect(strict_server) as s:
        for _ in range(2):  # each pause is under both timeouts: the head clock stops once the headers are in
            time.sleep(0.7)
            s.sendall(request)
            assert s.recv(4096).startswith(b"HTTP/1.1 200 ")
        start = time.monotonic()
        assert _read_until_closed(s) == b""
        assert 0.5 < time.monotonic() - start < 4


# ---------------------------------------------------------------- Host header


@pytest.fixture(scope="module")
def keyed(exported) -> TestClient:
    app = create_app(ServeSettings(runs=(exported,), engine="onnx", threads=1, api_key="s3cret-key"))
    with TestClient(app, base_url=LOCAL) as c:
        yield c


def test_only_the_hosts_it_serves_are_answered(client):
    r = client.get("/healthz", headers={"host": "rebound.example"})
    assert r.status_code == 400 and r.json()["error"] == "unknown host"
    assert "--allowed-hosts" in r.json()["detail"]
    for host in ("localhost:8000", "127.0.0.1", "[::1]:8000", "LOCALHOST"):
        assert client.get("/healthz", headers={"host": host}).status_code == 200, host


def test_host_names_and_bind_addresses():
    assert host_name("Example.com:8000") == "example.com" and host_name("[::1]:80") == "[::1]"
    assert host_name("") == "" and host_name("localhost.") == "localhost"
    assert served_name("::1") == "[::1]" and served_name("10.0.0.2") == "10.0.0.2"
    assert served_name("0.0.0.0") is None and served_name("::") is None and served_name("Box.lan") == "box.lan"


def test_cli_serves_its_host_and_allowed_hosts_and_warns_beyond_loopback(exported, monkeypatch):
    import uvicorn

    from hardsight.cli import app

    seen = {}

    class NoServer:  # everything `hardsight serve` does up to listening
        def __init__(self, config):
            seen["config"], self.started = config, True

        def run(self):
            pass

    monkeypatch.setattr(uvicorn, "Server", NoServer)
    args = ["serve", str(exported), "--engine", "onnx", "--host", "10.1.2.3",
            "--allowed-hosts", "cap.example,b.example"]
    result = CliRunner().invoke(app, args, env={"HARDSIGHT_API_KEY": "from-env"})
    assert result.exit_code == 0, result.output
    settings = seen["config"].app.state.settings
    assert set(settings.allowed_hosts) == {"localhost", "127.0.0.1", "[::1]", "10.1.2.3", "cap.example", "b.example"}
    assert settings.api_key == "from-env" and "from-env" not in repr(settings)
    output = " ".join(result.output.split())
    assert "warning: listening on 10.1.2.3" in output and "--api-key" not in output  # a key is set
    assert seen["config"].timeout_keep_alive == 5.0 and isinstance(seen["config"].http, type)


def test_binding_beyond_loopback_warns():
    settings = ServeSettings(runs=("run",))
    assert exposure_warning(settings, "127.0.0.1") is None and exposure_warning(settings, "::1") is None
    assert exposure_warning(settings, "localhost") is None
    warning = exposure_warning(settings, "0.0.0.0")
    assert "other machines" in warning and "--api-key" in warning and "--allowed-hosts" in warning


# ---------------------------------------------------------------- API key


def test_the_api_key_guards_every_route_but_healthz_and_the_pages(keyed, monkeypatch):
    import hmac

    compared = []
    real = hmac.compare_digest
    monkeypatch.setattr(hmac, "compare_digest", lambda a, b: compared.append(1) or real(a, b))
    for r, error in [(keyed.get("/v1/models"), "missing API key"),
                     (keyed.get("/v1/models", headers={"x-api-key": "s3cret"}), "wrong API key"),
                     (keyed.get("/v1/models", headers={"authorization": "Basic s3cret-key"}), "missing API key"),
                     (keyed.post("/v1/read", files={"file": ("a.png", png((120, 40)))}), "missing API key"),
                     (keyed.get("/v2/nothing"), "missing API key")]:
        assert r.status_code == 401 and r.json()["error"] == error and "X-API-Key" in r.json()["detail"], r.text
        assert r.headers["www-authenticate"] == "Bearer"
    assert compared  # a wrong key is compared in constant time
    for headers in ({"authorization": "Bearer s3cret-key"}, {"authorization": "bearer s3cret-key"},
                    {"x-api-key": "s3cret-key"}):
        assert keyed.get("/v1/models", headers=headers).status_code == 200
        assert keyed.post("/v1/read", headers=headers, files={"file": ("a.png", png((120, 40)))}).status_code == 200
    assert keyed.get("/healthz").json()["status"] == "ok"
    page = keyed.get("/")
    assert page.status_code == 200 and 'id="key"' in page.text and "X-API-Key" in page.text
    assert keyed.get("/docs").status_code == 200
    assert "X-API-Key" in str(keyed.get("/openapi.json").json()["components"]["securitySchemes"])


def test_an_empty_api_key_is_refused():
    from hardsight.errors import ConfigError

    with pytest.raises(ConfigError, match="API key is empty"):
        ServeSettings(runs=("run",), api_key=" ")


# ---------------------------------------------------------------- images


@pytest.mark.parametrize("fmt", FORMATS)
def test_every_format_it_names_decodes(fmt):
    buf = io.BytesIO()
    Image.new("RGB", (40, 20), (10, 20, 30)).save(buf, fmt)
    assert decode_image(buf.getvalue(), f"a.{fmt.lower()}", 10_000).size == (40, 20)


def test_eps_is_refused_without_reaching_ghostscript(monkeypatch):
    from PIL import EpsImagePlugin

    monkeypatch.setattr(EpsImagePlugin, "Ghostscript", lambda *a, **k: pytest.fail("Ghostscript was run"))
    with pytest.raises(ApiError) as e:
        decode_image(EPS, "drawing.eps", 1_000_000)
    assert e.value.status == 422 and e.value.error == "not an image" and "PNG" in e.value.detail


def test_a_header_that_claims_a_huge_image_is_a_413():
    with pytest.raises(ApiError) as e:
        decode_image(png_header(40000, 40000), "huge.png", 16_000_000)
    assert e.value.status == 413 and e.value.error == "image too large" and "--max-pixels" in e.value.detail


# ---------------------------------------------------------------- 500s


def test_a_500_is_generic_and_its_traceback_is_logged_off_the_loop(exported, monkeypatch):
    import hardsight.serve.app as served

    loop_threads, records = [], []

    def broken(*args):
        loop_threads.append(threading.get_ident())
        raise RuntimeError("secret /home/someone/path")

    class Keep(logging.Handler):
        def emit(self, record):
            records.append((threading.get_ident(), logging.Formatter().format(record)))

    monkeypatch.setattr(served, "pick_model", broken)
    handler, logger = Keep(), logging.getLogger("hardsight.serve")
    logger.addHandler(handler)
    try:
        with TestClient(create_app(ServeSettings(runs=(exported,), engine="onnx", threads=1)), base_url=LOCAL) as c:
            r = c.post("/v1/read", files={"file": ("a.png", png((120, 40)))})
            after = c.get("/healthz")
    finally:
        logger.removeHandler(handler)
    assert r.status_code == 500 and r.json()["error"] == "internal error"
    assert "secret" not in r.text and "RuntimeError" not in r.text
    ((thread, text),) = records
    assert thread != loop_threads[0] and "Traceback" in text and "RuntimeError: secret" in text
    assert after.status_code == 200


# ---------------------------------------------------------------- docs


@pytest.mark.parametrize("page", ["/docs", "/redoc"])
def test_the_api_docs_load_nothing_from_other_hosts(client, page):
    html = client.get(page).text
    urls = re.findall(r'(?:src|href)="([^"]+)"', html)
    assert urls and "://" not in html.replace("http://www.w3.org", "")  # nothing from a CDN, no fonts
    for url in urls:
        r = client.get(url)
        assert r.status_code == 200 and len(r.content) > 1000, url
    assert client.get("/openapi.json").json()["openapi"].startswith("3.")


# ---------------------------------------------------------------- CLI


def test_serve_on_a_run_whose_checkpoint_cannot_load_is_one_line_and_exit_2(trained_run, tmp_path, monkeypatch):
    import uvicorn

    from hardsight.cli import app

    run = tmp_path / "broken"
    shutil.copytree(trained_run, run)
    for ckpt in (run / "checkpoints").glob("*.ckpt"):
        ckpt.write_bytes(b"not a checkpoint")
    monkeypatch.setattr(uvicorn.Server, "run", lambda self, *a, **k: pytest.fail("the server started"))
    result = CliRunner().invoke(app, ["serve", str(run)])
    assert result.exit_code == 2, result.output
    assert result.output.startswith("error:") and ".ckpt" in result.output and "Traceback" not in result.output


def test_a_live_server_still_answers_plain_requests(strict_server):
    with httpx.Client(base_url=strict_server, timeout=10) as c:
        assert c.get("/healthz").json()["status"] == "ok"
