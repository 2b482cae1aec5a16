"""Ctrl-C during training: the state is saved for --resume and the command exits 130, as shells expect."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time


def test_sigint_during_training_saves_state_and_exits_130(captchas, tmp_path):
    # 500 epochs and no early stop, so the run is still training when the signal comes; Ctrl-C's default action
    # restored in the child, since a shell starts background jobs (`pytest &`) with SIGINT ignored and Python keeps it so
    run = tmp_path / "run"
    proc = subprocess.Popen([sys.executable, "-m", "hardsight", "train", "text", str(captchas), "--out", str(run),
                             "--epochs", "500", "--patience", "1000"], stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True, env={**os.environ, "COLUMNS": "200"},
                            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    try:
        deadline = time.monotonic() + 240
        while not (run / "metrics.csv").is_file() or len((run / "metrics.csv").read_text().splitlines()) < 2:
            assert proc.poll() is None and time.monotonic() < deadline, "training did not get to its first epoch"
            time.sleep(0.2)
        proc.send_signal(signal.SIGINT)
        out, _ = proc.communicate(timeout=120)
    finally:
        proc.kill()
    assert proc.returncode == 130, out[-2000:]
    assert (run / "checkpoints" / "interrupted.ckpt").is_file() and "--resume" in out and "Traceback" not in out
