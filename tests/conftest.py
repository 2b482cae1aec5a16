"""Shared fixtures: small synthetic CAPTCHA sets made by the tests, and one tiny trained run."""

from __future__ import annotations

from pathlib import Path

import pytest

from hardsight.data.synthetic import make_text_captchas


@pytest.fixture(scope="session")
def captchas(tmp_path_factory) -> Path:
    """80 synthetic CAPTCHAs, 4 to 5 characters, named by their text."""
    folder = tmp_path_factory.mktemp("captchas")
    make_text_captchas(folder, 80, seed=1)
    return folder


@pytest.fixture(scope="session")
def trained_run(tmp_path_factory, captchas) -> Path:
    """A crnn run trained for 2 epochs: enough to exercise every file of a run folder."""
    from hardsight import TrainConfig, train

    out = tmp_path_factory.mktemp("runs") / "crnn"
    train(TrainConfig(task="text", data=str(captchas), out=str(out), epochs=2, seed=0), progress=False)
    return out


@pytest.fixture(scope="session", autouse=True)
def picture_cache(tmp_path_factory) -> Path:
    """Disk caches and file indexes of the tests go to a folder of the session, never the user's ~/.cache."""
    import os

    folder = tmp_path_factory.mktemp("hardsight-cache")
    os.environ["HARDSIGHT_CACHE"] = str(folder)  # CLI tests run as subprocesses inherit it
    return folder
