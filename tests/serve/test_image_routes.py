"""/v1/classify and /v1/solve against a live server with a tiny image classifier."""

from __future__ import annotations

import io
import time

import httpx
import pytest
from PIL import Image

from hardsight.serve import ServeSettings
from tests.serve.conftest import colour_png as _png
from tests.serve.conftest import serving


@pytest.fixture(scope="module")
def image_server(colour_run):
    with serving(ServeSettings(runs=(colour_run,), max_batch=8, threads=1, engine="onnx")) as url:
        with httpx.Client(base_url=url, timeout=30) as client:
            client.run = colour_run  # for comparing with the library's answers
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
    from hardsight.grid import assemble_grid
    from tests.serve.browser import browser_page

    tiles = [Image.open(io.BytesIO(_png((200, 40, 40) if i in (0, 4) else (40, 60, 200), seed=i))) for i in range(9)]
    assemble_grid(tiles, 3, 3).save(tmp_path / "grid.png")
    (tmp_path / "tile.png").write_bytes(_png((200, 40, 40), seed=3))
    url = str(image_server.base_url)
    with browser_page(lambda u: u.startswith(url)) as (page, _):
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
