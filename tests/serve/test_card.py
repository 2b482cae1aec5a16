"""The model card: `GET /v1/models/{name}/card` and the page's card, for a text run, an image run and a run whose
files are half-written, against a live server; the figures are the run's saved test metrics and what
`hardsight evaluate` finds on the same test images."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import httpx
import pytest

from hardsight.serve import ServeSettings
from tests.cli_runner import run_cli
from tests.serve.conftest import serving


@pytest.fixture(scope="module")
def half_written(trained_run, tmp_path_factory) -> Path:
    """A run stopped while it wrote its report: no test metrics, no curves, test_predictions.json cut short."""
    run = tmp_path_factory.mktemp("half") / "half-written"
    shutil.copytree(trained_run, run, ignore=shutil.ignore_patterns("evaluations"))
    (run / "test_metrics.json").unlink()
    (run / "plots" / "curves.png").unlink()
    whole = (run / "test_predictions.json").read_bytes()
    (run / "test_predictions.json").write_bytes(whole[: len(whole) // 2])
    return run


@pytest.fixture(scope="module")
def cards(exported, colour_run, half_written):
    with serving(ServeSettings(runs=(exported, colour_run, half_written), max_batch=8, threads=1)) as url:
        with httpx.Client(base_url=url, timeout=30) as client:
            yield client


def _card(client: httpx.Client, name: str) -> dict:
    r = client.get(f"/v1/models/{name}/card")
    assert r.status_code == 200, r.text
    return r.json()


def _saved(run: Path) -> dict:
    return json.loads((run / "test_metrics.json").read_text())["metrics"]


def _test_copy(run: Path, out: Path, per_class: bool) -> Path:
    """The run's test split copied out of its data folder (class folders kept for an image run)."""
    split = json.loads((run / "split.json").read_text())
    root = Path(split["root"])
    for entry in split["test"]:
        rel = Path(entry[0] if isinstance(entry, list) else entry)
        target = out / (rel if per_class else rel.name)
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(root / rel, target)
    return out


def _values(card: dict) -> dict[str, float]:
    return {m["key"]: m["value"] for m in card["metrics"]}


def test_text_card_holds_the_runs_test_figures_with_intervals(cards, exported, tmp_path):
    card = _card(cards, exported.name)
    saved = _saved(exported)
    assert card["task"] == "text" and card["model"] == "crnn" and card["missing"] == []
    assert _values(card) == {k: saved[k] for k in ("exact_match", "char_accuracy", "cer")}
    exact = next(m for m in card["metrics"] if m["key"] == "exact_match")
    assert exact["n"] == saved["n"] and 0.0 <= exact["low"] <= exact["value"] <= exact["high"] <= 1.0
    ev = json.loads(run_cli("evaluate", exported, _test_copy(exported, tmp_path / "test", False), "--engine",
                            "torch", "--json").stdout)  # the same test images, scored again by the user
    assert ev["n"] == saved["n"] and _values(card) == {k: ev[k] for k in ("exact_match", "char_accuracy", "cer")}

    labels = json.loads((exported / "labels.json").read_text())
    assert {k: card["input"][k] for k in ("height", "width", "channels")} == \
        {k: labels["input"][k] for k in ("height", "width", "channels")}
    split = json.loads((exported / "split.json").read_text())
    assert [card["training"][s] for s in ("train", "val", "test")] == [len(split[s]) for s in ("train", "val", "test")]
    assert card["training"]["trained"] and card["curves"].startswith("data:image/png;base64,")
    assert card["confusions"] == saved["confusions"][:10]
    strip = card["predictions"]
    assert len(strip) == min(24, saved["n"]) and all(p["image"].startswith("data:image/png;base64,") for p in strip)
    assert [p["correct"] for p in strip] == sorted(p["correct"] for p in strip)  # errors first
    assert all(p["correct"] == (p["prediction"] == p["truth"]) for p in strip)


def test_image_card_holds_the_classifiers_figures_and_confusions(cards, colour_run, tmp_path):
    card = _card(cards, colour_run.name)
    saved = _saved(colour_run)
    assert card["task"] == "image" and card["input"]["classes"] == ["blue", "red"] and card["input"]["size"] == 32
    values = _values(card)
    assert values["accuracy"] == saved["accuracy"] and values["macro_f1"] == saved["macro_f1"]
    ev = json.loads(run_cli("evaluate", colour_run, _test_copy(colour_run, tmp_path / "test", True), "--engine",
                            "torch", "--json").stdout)
    assert all(values[k] == ev[k] for k in ("accuracy", "balanced_accuracy", "macro_f1"))
    assert [c["name"] for c in card["per_class"]] == ["blue", "red"]
    assert all(c["low"] <= c["recall"] <= c["high"] for c in card["per_class"])
    wrong = sum(c for i, row in enumerate(saved["confusion"]) for j, c in enumerate(row) if i != j)
    assert sum(p["count"] for p in card["confusions"]) == wrong  # two classes: every off-diagonal cell is listed
    strip = card["predictions"]
    assert len(strip) == saved["n"] and [p["correct"] for p in strip] == sorted(p["correct"] for p in strip)
    assert sum(not p["correct"] for p in strip) == round((1 - saved["accuracy"]) * saved["n"])
    assert all(p["truth"] in ("blue", "red") and p["image"].startswith("data:image/png") for p in strip)


def test_a_half_written_run_has_a_card_of_what_it_holds(cards, half_written):
    card = _card(cards, half_written.name)
    assert {"test_metrics.json", "plots/curves.png", "test_predictions.json (unreadable)"} <= set(card["missing"])
    assert card["metrics"] == [] and card["curves"] is None and card["predictions"] == []
    assert card["input"]["height"] > 0 and card["training"]["train"] > 0
    r = cards.get("/v1/models/nobody/card")
    assert r.status_code == 404 and r.json()["error"] == "unknown model"


def test_the_page_shows_each_models_card_before_anything_is_dropped(cards, exported, colour_run, half_written):
    from tests.serve.browser import browser_page

    url = str(cards.base_url)
    with browser_page(lambda u: u.startswith(url)) as (page, aborted):
        requested: list[str] = []
        page.on("request", lambda r: requested.append(r.url))
        page.goto(url + "/")
        for run in (exported, colour_run, half_written):
            card = _card(cards, run.name)
            page.select_option("#model", run.name)
            page.wait_for_function("name => !document.getElementById('card').hidden && "
                                   "document.getElementById('card-name').textContent === name", arg=run.name)
            shown = page.eval_on_selector_all("#card-metrics tr[data-key]", "rows => rows.map(r => "
                                              "[r.dataset.key, Number(r.querySelector('.value').dataset.value)])")
            assert dict(shown) == _values(card)
            assert page.locator("#card-strip .sample").count() == len(card["predictions"])
            assert page.locator("#card-strip .sample.wrong").count() == sum(not p["correct"] for p in card["predictions"])
            assert page.is_visible("#card-curves") == (card["curves"] is not None)
            loaded = page.eval_on_selector_all("#card img:not([hidden])", "imgs => imgs.map(i => i.complete && "
                                               "i.naturalWidth > 0)")
            assert all(loaded) and len(loaded) == sum(p["image"] is not None for p in card["predictions"]) + \
                (card["curves"] is not None)
            assert page.locator(".result").count() == 0 and not page.is_visible("#error")
        assert "test_metrics.json" in page.text_content("#card-missing")
        assert "no test metrics" in page.text_content("#card-metrics")
        assert page.is_visible("#card-input")
    assert aborted == [] and all(u.startswith((url, "data:")) for u in requested)
