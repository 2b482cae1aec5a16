"""`hardsight report`: one self-contained HTML file from a folder's report.md, plots and test images; pictures only
from inside the folder, and no input overwritten."""

from __future__ import annotations

import base64
import json
import re
import shutil
from pathlib import Path

import pytest
from PIL import Image

from tests.cli_runner import run_cli


@pytest.fixture()
def run(trained_run, tmp_path) -> Path:
    """A copy of the session's run (its files and pictures; no weights needed to report it)."""
    copy = tmp_path / "run"
    shutil.copytree(trained_run, copy, ignore=shutil.ignore_patterns("checkpoints", "evaluations"))
    return copy


def _files(folder: Path) -> dict[str, bytes]:
    return {p.relative_to(folder).as_posix(): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


def _sources(page: str) -> list[str]:
    return re.findall(r'<img[^>]* src="([^"]*)"', page)


def _png(path: Path, colour=(30, 90, 200)) -> Path:
    Image.new("RGB", (24, 16), colour).save(path)
    return path


def _one_line_error(proc) -> str:
    text = " ".join((proc.stdout + proc.stderr).split())
    assert proc.returncode == 2 and text.startswith("error:") and "Traceback" not in text, text
    return text


def test_a_runs_report_is_one_file_with_every_picture_inlined(run):
    before = _files(run)
    out = Path(run_cli("report", run).stdout.strip())
    assert out == run / "report.html"
    page = out.read_text()
    assert _files(run) == {**before, "report.html": out.read_bytes()}  # nothing else written or changed
    assert "<table>" in page and "exact match" in page and "<h1>" in page
    sources = _sources(page)
    strip = len(json.loads((run / "test_predictions.json").read_text()))
    assert len(sources) == len(list((run / "plots").glob("*.png"))) + strip and strip > 0
    assert all(s.startswith("data:image/png;base64,") for s in sources)
    assert f"data:image/png;base64,{base64.b64encode((run / 'plots' / 'curves.png').read_bytes()).decode()}" in page
    assert "http://" not in page and "https://" not in page
    assert Path(run_cli("report", run).stdout.strip()) == out  # its own earlier report is replaced


def test_a_half_written_run_reports_what_it_has(run):
    (run / "plots" / "curves.png").unlink()
    (run / "test_predictions.json").write_text('[{"file": "a.png", "tru')
    page = Path(run_cli("report", run).stdout.strip()).read_text()
    assert "[missing picture: plots/curves.png]" in page and "test_predictions.json" in page
    assert len(_sources(page)) == len(list((run / "plots").glob("*.png")))


def test_pictures_from_outside_the_folder_are_refused_by_name(run, tmp_path):
    secret = _png(tmp_path / "secret.png")
    (run / "plots" / "elsewhere.png").symlink_to(secret)
    assert "elsewhere.png" in _one_line_error(run_cli("report", run, check=False))
    assert not (run / "report.html").exists()
    (run / "plots" / "elsewhere.png").unlink()
    for link in ("../secret.png", str(secret), "http://example.com/plot.png"):
        study = tmp_path / "study"
        study.mkdir(exist_ok=True)
        (study / "report.md").write_text(f"# A study\n\n![plot]({link})\n")
        text = _one_line_error(run_cli("report", study, check=False))
        assert link in text or "secret.png" in text, text


def test_no_input_is_overwritten(run, tmp_path):
    original = (run / "report.md").read_bytes()
    text = _one_line_error(run_cli("report", run, "--out", run / "report.md", check=False))
    assert "report.md" in text and (run / "report.md").read_bytes() == original
    out = tmp_path / "elsewhere" / "card.html"
    assert Path(run_cli("report", run, "--out", out).stdout.strip()) == out and out.is_file()


def test_a_folder_without_report_md_is_refused_saying_what_it_expected(tmp_path):
    _png(tmp_path / "plot.png")
    text = _one_line_error(run_cli("report", tmp_path, check=False))
    assert "no report.md" in text and "run, evaluation, tune or assessment folder" in text


def test_evaluation_assessment_and_study_folders_report_too(trained_run, captchas, tmp_path):
    ev = json.loads(run_cli("evaluate", trained_run, captchas, "--json").stdout)
    evaluation = Path(ev["figure"]).parent
    page = Path(run_cli("report", evaluation, "--out", tmp_path / "evaluation.html").stdout.strip()).read_text()
    assert "exact match" in page and f"{ev['exact_match']:.2%}" in page and len(_sources(page)) == 1

    assessment = tmp_path / "assess"  # the layout `hardsight assess` writes: report.md, curve PNGs beside it
    assessment.mkdir()
    _png(assessment / "curve_labels.png")
    (assessment / "report.md").write_text("# Attack cost\n\n| labels | solve rate |\n|---|---|\n| 100 | 42% |\n\n"
                                          "![solve rate vs labelled samples](curve_labels.png)\n")
    page = Path(run_cli("report", assessment).stdout.strip()).read_text()
    assert "<td>42%</td>" in page and len(_sources(page)) == 1
    study = tmp_path / "occlusion"  # the occlusion study writes study.md
    study.mkdir()
    _png(study / "study.png")
    (study / "study.md").write_text("# Occlusion study\n\n![accuracy](study.png)\n\n<script>alert(1)</script>\n")
    page = Path(run_cli("report", study).stdout.strip()).read_text()
    assert len(_sources(page)) == 1 and "<script>" not in page  # raw HTML in the markdown is shown, not run


def test_the_report_opens_offline_with_every_picture_loaded(run):
    from tests.serve.browser import browser_page

    out = Path(run_cli("report", run).stdout.strip())
    address = out.resolve().as_uri()
    with browser_page(lambda u: u == address or u.startswith("data:")) as (page, aborted):
        page.goto(address)
        loaded = page.eval_on_selector_all("img", "imgs => imgs.map(i => i.complete && i.naturalWidth > 0)")
        assert loaded and all(loaded) and len(loaded) == len(_sources(out.read_text()))
        assert page.locator("table").count() >= 1
    assert aborted == []
