"""The README's first command: the demo trains a reader that reads most of its unseen images."""

from __future__ import annotations

import json

import pytest

from tests.test_cli_text import run_cli

FLOOR = 0.5  # exact match on the 200 unseen images; a quiet 2-core machine reads far more


@pytest.mark.slow
def test_demo_trains_a_reader_that_reads_its_unseen_images(tmp_path):
    out = tmp_path / "demo"
    # its own process, as a user runs it: in this one, live servers left by earlier tests slow training about
    # threefold (measured), and the demo's time cap then cuts its reader off on CTC's plateau
    run_cli("demo", "--out", out, subprocess_=True)
    assert (out / "run" / "report.md").is_file() and (out / "run" / "checkpoints" / "best.ckpt").is_file()
    fresh = sorted((out / "fresh").glob("*.png"))
    assert len(fresh) == 200
    scored = json.loads(run_cli("evaluate", out / "run", out / "fresh", "--json").stdout)  # measured again, apart
    assert scored["n"] == 200 and scored["exact_match"] >= FLOOR, scored
    again = run_cli("demo", "--out", out, check=False)
    assert again.returncode == 2 and "already exists" in again.stderr
