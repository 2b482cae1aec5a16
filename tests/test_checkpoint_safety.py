"""A run folder is user input: a checkpoint carrying pickled code is refused in one line and never runs."""

from __future__ import annotations

import shutil

import torch

from tests.cli_runner import run_cli


class _Payload:
    """Unpickling this creates `marker`: the stand-in for any code a crafted checkpoint could run."""

    def __init__(self, marker):
        self.marker = str(marker)

    def __reduce__(self):
        return (open, (self.marker, "w"))


def _crafted(trained_run, tmp_path):
    run = tmp_path / "run"
    shutil.copytree(trained_run, run)
    marker = tmp_path / "payload-ran"
    for name in ("best.ckpt", "last.ckpt"):
        ckpt = torch.load(run / "checkpoints" / name, map_location="cpu", weights_only=True)
        ckpt["hyper_parameters"]["note"] = _Payload(marker)
        torch.save(ckpt, run / "checkpoints" / name)
    (run / "model.onnx").unlink(missing_ok=True)
    return run, marker


def test_a_checkpoint_with_a_payload_is_refused_and_nothing_runs(trained_run, captchas, tmp_path, monkeypatch):
    run, marker = _crafted(trained_run, tmp_path)
    monkeypatch.setenv("TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD", "1")  # would make torch's default load run it
    image = sorted(captchas.glob("*.png"))[0]
    for args in (["predict", run, image], ["evaluate", run, captchas], ["export", run]):
        result = run_cli(*args, check=False)
        assert result.returncode == 2, (args, result.stdout)
        said = result.stdout + result.stderr
        assert "refused" in said and "io.open" in said and "Traceback" not in said, said
        assert not marker.exists(), f"{args[0]} ran the checkpoint's payload"


def test_resume_refuses_a_crafted_last_checkpoint(trained_run, captchas, tmp_path, monkeypatch):
    run, marker = _crafted(trained_run, tmp_path)
    monkeypatch.setenv("TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD", "1")
    result = run_cli("train", "text", captchas, "--out", run, "--resume", check=False)
    assert result.returncode == 2 and "refused" in result.stderr, result.stdout + result.stderr
    assert not marker.exists()
