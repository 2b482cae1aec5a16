"""Run `hardsight ...` as a user would, in-process (CliRunner: no 5-second torch import per call), or
in a real subprocess through the console script where the test is about the installed command itself."""

from __future__ import annotations

import os
import subprocess
import sys
from dataclasses import dataclass


@dataclass
class CliResult:
    returncode: int
    stdout: str
    stderr: str


def run_cli(*args, check: bool = True, subprocess_: bool = False) -> CliResult:
    if subprocess_:
        env = {**os.environ, "COLUMNS": "200"}
        proc = subprocess.run([sys.executable, "-m", "hardsight", *map(str, args)], capture_output=True, text=True,
                              env=env, timeout=600)
        result = CliResult(proc.returncode, proc.stdout, proc.stderr)
    else:
        from typer.testing import CliRunner

        from hardsight.cli import app

        out = CliRunner().invoke(app, [str(a) for a in args], env={"COLUMNS": "200"})
        if out.exception is not None and not isinstance(out.exception, SystemExit):
            raise out.exception
        result = CliResult(out.exit_code, out.stdout, out.stderr)
    if check and result.returncode != 0:
        raise AssertionError(f"exit {result.returncode}\nstdout:{result.stdout}\nstderr:{result.stderr}")
    return result
