"""The README's first command, shrunk: the demo runs end to end and leaves a complete run folder."""

from __future__ import annotations

from tests.test_cli_text import run_cli


def test_demo_end_to_end_small(tmp_path):
    out = tmp_path / "demo"
    proc = run_cli("demo", "--out", out, "--images", "120", "--epochs", "1")
    assert "demo finished" in proc.stderr
    assert "exact match" in proc.stderr and "confidence" in proc.stderr
    assert (out / "run" / "report.md").is_file() and (out / "run" / "checkpoints" / "best.ckpt").is_file()
    assert len(list((out / "fresh").glob("*.png"))) == 200
    proc = run_cli("demo", "--out", out, "--images", "120", "--epochs", "1", check=False)
    assert proc.returncode == 2 and "already exists" in proc.stderr
