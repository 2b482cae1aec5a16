"""One exported copy of the session's trained run, shared by the export, engine and service tests."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

from typer.testing import CliRunner

_EXPORTED: dict[str, tuple[Path, dict]] = {}


def exported_run(trained_run: Path, tmp_path_factory) -> tuple[Path, dict]:
    """(copy of trained_run with model.onnx, the JSON `hardsight export --json` printed), made once."""
    if "run" not in _EXPORTED:
        from hardsight.cli import app

        run = tmp_path_factory.mktemp("exported") / "reader"
        shutil.copytree(trained_run, run)
        result = CliRunner().invoke(app, ["export", str(run), "--samples", "16", "--json"])
        assert result.exit_code == 0, result.output
        _EXPORTED["run"] = (run, json.loads(result.stdout))
    return _EXPORTED["run"]
