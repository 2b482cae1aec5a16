"""/v1/classify and /v1/solve against a live server with a tiny image classifier."""

from __future__ import annotations

import io
import time

import httpx
import numpy as np
import pytest
from PIL import Image

from hardsight.serve import ServeSettings
from tests.serve.conftest import serving


def _png(colour, size=40, seed=0) -> bytes:
    rng = np.random.default_rng(seed)
    a = np.clip(np.array(colour) + rng.normal(0, 20, (size, size, 3)), 0, 255).astype(np.uint8)
    buf = io.BytesIO()
    Image.fromarray(a).save(buf, "PNG")
    return buf.getvalue()


@pytest.fixture(scope="module")
def image_server(tmp_path_factory):
    from hardsight import TrainConfig, train

    data = tmp_path_factory.mktemp("colours")
    for name, colour in {"red": (200, 40, 40), "blue": (40, 60, 200)}.items():
        (data / name).mkdir()
        for i in range(10):
            (data / name / f"{i}.png").write_bytes(_png(colour, seed=i))
    run = tmp_path_factory.mktemp("runs") / "colours"
    train(TrainConfig(task="image", data=str(data), out=str(run), model="compact", epochs=2, image_size=32,
                      batch_size=8, split=(0.6, 0.2, 0.2)), progress=False)
    from hardsight.engine.exporter import export

    export(run)  # served on ONNX Runtime, as a shipped classifier would be
    with serving(ServeSettings(runs=(run,), max_batch=8, threads=1, engine="onnx")) as url:
        with httpx.Client(base_url=url, timeout=30) as client:
            client.run = run  # for comparing with the library's answers
            yield client


def test_classify_answers_labels_and_probabilities(image_server):
    r = image_server.post("/v1/classify", files=[("files", ("a.png", _png((200, 40, 40)), "image/png")),
                                                 ("files", ("b.png", _png((40, 60, 200)), "image/png"))])
    assert r.status_code == 200, r.text
    assert r.json()["engine"] == "onnx"
    results = r.json()["results"]
    assert [x["file"] for x in results] == ["a.png", "b.png"]
    assert all(set(x["probabilities"]) == {"blue", "red"} for x in results)
    assert image_server.get("/v1/models").json()["models"][0]["classes"] == ["blue", "red"]


def test_solve_answers_cells_and_rejects_unknown_or_missing_targets(image_server):
    from hardsight.grid import assemble_grid

    tiles = [Image.open(io.BytesIO(_png((200, 40, 40) if i in (0, 4) else (40, 60, 200), seed=i))) for i in range(9)]
    buf = io.BytesIO()
    assemble_grid(tiles, 3, 3).save(buf, "PNG")
    grid = buf.getvalue()
    r = image_server.post("/v1/solve", files={"file": ("g.png", grid, "image/png")},
                          data={"target": "reds", "grid": "3x3"})
    assert r.status_code == 200, r.text
    sol = r.json()["results"][0]
    assert sol["target"] == "red" and len(sol["scores"]) == 9 and sol["rows"] == 3
    import hardsight

    here = hardsight.solve(hardsight.Predictor(image_server.run, engine="onnx"), Image.open(io.BytesIO(grid)), "reds",
                           "3x3")  # the server's cells went through its batcher: same cells, same scores
    assert sol["selected"] == here.selected and sol["scores"] == pytest.approx(here.scores, abs=1e-5)
    r = image_server.post("/v1/solve", files={"file": ("g.png", grid, "image/png")}, data={"target": "mountains"})
    assert r.status_code == 400 and "unknown target" in r.json()["error"]
    r = image_server.post("/v1/solve", files={"file": ("g.png", grid, "image/png")})
    assert r.status_code == 400 and r.json()["error"] == "missing target"
    r = image_server.post("/v1/read", files={"file": ("g.png", grid, "image/png")})
    assert r.status_code == 404  # no text reader loaded


def test_solve_takes_several_grids_in_one_request(image_server):
    from hardsight.grid import assemble_grid

    def grid(reds):
        buf = io.BytesIO()
        assemble_grid([Image.open(io.BytesIO(_png((200, 40, 40) if i in reds else (40, 60, 200), seed=i)))
                       for i in range(9)], 3, 3).save(buf, "PNG")
        return buf.getvalue()

    r = image_server.post("/v1/solve", files=[("files", ("a.png", grid({0, 4}), "image/png")),
                                              ("files", ("b.png", grid({2, 6, 8}), "image/png"))],
                          data={"target": "red", "grid": "3x3"})
    assert r.status_code == 200, r.text
    results = r.json()["results"]
    assert [x["file"] for x in results] == ["a.png", "b.png"]  # one answer per grid, in the order sent
    assert results[0]["selected"] == [0, 4] and results[1]["selected"] == [2, 6, 8]
    assert results[0]["prior"] == [1, 4]


def test_page_solves_a_grid_and_classifies_a_tile(image_server, tmp_path):
    import shutil

    from hardsight.grid import assemble_grid
    from tests.serve.test_page import BROWSERS, CHROMIUM_ARGS

    executable = next((p for p in map(shutil.which, BROWSERS) if p), None)
    if executable is None:
        pytest.skip(f"no Chromium to drive: none of {', '.join(BROWSERS)} is on PATH (Debian: apt-get install chromium)")
    sync_api = pytest.importorskip("playwright.sync_api", reason="playwright is not installed (pip install -e '.[test]')")
    tiles = [Image.open(io.BytesIO(_png((200, 40, 40) if i in (0, 4) else (40, 60, 200), seed=i))) for i in range(9)]
    assemble_grid(tiles, 3, 3).save(tmp_path / "grid.png")
    (tmp_path / "tile.png").write_bytes(_png((200, 40, 40), seed=3))
    url = str(image_server.base_url)
    with sync_api.sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=executable, args=CHROMIUM_ARGS, timeout=60_000)
        try:
            page = browser.new_page()
            page.set_default_timeout(30_000)
            page.route("**/*", lambda route: route.continue_() if route.request.url.startswith(url) else route.abort())
            page.goto(url + "/")
            page.wait_for_selector("#model option", state="attached")
            assert page.is_visible("#target")
            page.fill("#target", "reds")
            page.select_option("#grid", "3x3")
            page.set_input_files("#file-input", str(tmp_path / "grid.png"))
            page.wait_for_selector(".result canvas")
            assert page.text_content(".result .text").startswith("red:")
            assert "3x3 grid" in page.text_content(".result .confidence")
            page.fill("#target", "")
            page.set_input_files("#file-input", str(tmp_path / "tile.png"))
            page.wait_for_selector(".result img")
            assert page.text_content(".result .text") in ("red", "blue")
            assert "%" in page.text_content(".result .confidence")
        finally:
            browser.close()


def test_solve_refuses_oversized_or_malformed_grids_before_decoding(image_server):
    from hardsight.grid import assemble_grid
    from hardsight.serve.handlers import MAX_GRID

    tiles = [Image.open(io.BytesIO(_png((200, 40, 40), seed=i))) for i in range(MAX_GRID ** 2)]
    buf = io.BytesIO()
    assemble_grid(tiles, MAX_GRID, MAX_GRID).resize((400, 400)).save(buf, "PNG")
    largest = image_server.post("/v1/solve", files={"file": ("g.png", buf.getvalue(), "image/png")},
                                data={"target": "red", "grid": f"{MAX_GRID}x{MAX_GRID}"})
    assert largest.status_code == 200 and len(largest.json()["results"][0]["scores"]) == MAX_GRID ** 2
    not_an_image = ("g.png", b"not even an image", "image/png")  # the fields are refused before it is decoded
    for grid, error in [(f"{MAX_GRID + 1}x3", "grid too large"), ("99999999999999999999x3", "grid too large"),
                        ("100x100", "grid too large"), ("9" * 5000 + "x3", "bad grid request"),
                        ("3by3", "bad grid request"), ("0x3", "bad grid request")]:
        start = time.perf_counter()
        r = image_server.post("/v1/solve", files={"file": not_an_image}, data={"target": "red", "grid": grid})
        assert r.status_code == 400 and r.json()["error"] == error, (grid, r.text)
        assert "3x3" in r.json()["detail"] and time.perf_counter() - start < 2
    for threshold in ("high", "1.5", "nan"):
        r = image_server.post("/v1/solve", files={"file": not_an_image}, data={"target": "red", "threshold": threshold})
        assert r.status_code == 400 and r.json()["error"] == "bad threshold", r.text
    r = image_server.post("/v1/solve", json={"image": "aGk=", "target": [[["red"]]], "grid": 3})
    assert r.status_code == 400 and r.json()["error"] == "missing target"
    r = image_server.post("/v1/solve", json={"image": "aGk=", "target": "red", "grid": [[3]]})
    assert r.status_code == 400 and r.json()["error"] == "bad grid request"
