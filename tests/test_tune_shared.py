"""`hardsight tune --storage`: worker processes (the CLI, as a user runs it) sharing one study, on a journal file and
on a real PostgreSQL (started by .ci/postgres.sh; skipped, saying why, where there is none); a killed worker's trial
failed and queued again; storages that cannot be reached, and studies of another search, refused in one line."""

from __future__ import annotations

import csv
import glob
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import yaml
from PIL import Image

from hardsight import TrainConfig
from hardsight.engine.tuner import tune
from hardsight.errors import ConfigError
from tests.cli_runner import run_cli

COLOURS = {"red": (200, 40, 40), "green": (40, 180, 60), "blue": (40, 60, 200)}
SPACE = {"lr": {"low": 1.0e-3, "high": 1.0e-2, "log": True}, "optimizer": {"choices": ["adamw", "sgd"]},
         "model_args.blocks": {"low": 1, "high": 2}, "model_args.filters": 8}
HEARTBEAT = 1  # seconds: a killed worker's trial is stale after 2
ROOT = Path(__file__).parent.parent


@pytest.fixture(scope="module")
def tiles(tmp_path_factory):
    """3 colour classes x 10 small tiles."""
    root = tmp_path_factory.mktemp("shared_tiles")
    for k, (name, colour) in enumerate(COLOURS.items()):
        (root / name).mkdir()
        for i in range(10):
            a = np.clip(np.array(colour) + np.random.default_rng(100 * k + i).normal(0, 25, (24, 24, 3)), 0, 255)
            Image.fromarray(a.astype(np.uint8)).save(root / name / f"{name}{i}.png")
    return root


@pytest.fixture(scope="module")
def space(tmp_path_factory):
    path = tmp_path_factory.mktemp("shared_space") / "space.yaml"
    path.write_text(yaml.safe_dump(SPACE))
    return path


@pytest.fixture(scope="module")
def postgres():
    """A PostgreSQL URL: $HARDSIGHT_TEST_POSTGRES (set by .ci/run), else a throwaway cluster of .ci/postgres.sh."""
    pytest.importorskip("psycopg", reason="psycopg is not installed (pip install 'hardsight[postgres]')")
    if os.environ.get("HARDSIGHT_TEST_POSTGRES"):
        yield os.environ["HARDSIGHT_TEST_POSTGRES"]
        return
    if not glob.glob("/usr/lib/postgresql/*/bin/initdb"):
        pytest.skip("no PostgreSQL: HARDSIGHT_TEST_POSTGRES is unset and no server is installed here "
                    "(.ci/run installs one: apt-get install postgresql)")
    started = subprocess.run(["bash", str(ROOT / ".ci" / "postgres.sh"), "start"], capture_output=True, text=True,
                             timeout=180)
    lines = started.stdout.split()
    if len(lines) != 2:
        pytest.skip(f"could not start a throwaway PostgreSQL: {started.stderr.strip()[-300:]}")
    try:
        yield lines[0]
    finally:
        subprocess.run(["bash", str(ROOT / ".ci" / "postgres.sh"), "stop", lines[1]], timeout=60)


@pytest.fixture
def spawn(tmp_path):
    """Start `hardsight tune` worker processes (output to a log file each); any left running are killed after."""
    started: list[subprocess.Popen] = []

    def start(tiles, space, out, storage, name, trials, epochs=2) -> subprocess.Popen:
        args = ["tune", "image", tiles, "--out", out, "--space", space, "--trials", trials, "--epochs", epochs,
                "--split", "0.6,0.2,0.2", "--set", "image_size=16", "--set", "batch_size=8", "--storage", storage,
                "--study-name", name, "--heartbeat", HEARTBEAT]
        env = {**os.environ, "COLUMNS": "200", "OMP_NUM_THREADS": "1"}  # two workers on two cores
        log = tmp_path / "logs" / f"worker-{len(started)}.log"
        log.parent.mkdir(exist_ok=True)
        with log.open("w") as f:
            proc = subprocess.Popen([sys.executable, "-m", "hardsight", *map(str, args)], stdout=f,
                                    stderr=subprocess.STDOUT, text=True, env=env)
        proc.log = log
        started.append(proc)
        return proc

    yield start
    for proc in started:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def _finish(proc: subprocess.Popen, timeout: float = 180) -> str:
    """What a worker said, once it has ended well."""
    proc.wait(timeout=timeout)
    said = proc.log.read_text()
    assert proc.returncode == 0, f"exit {proc.returncode}\n{said}"
    return said


def _wait(condition, timeout: float, what: str):
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        found = condition()
        if found:
            return found
        time.sleep(0.1)
    raise AssertionError(f"waited {timeout:g} s for {what}")


def _folders(out: Path) -> set[str]:
    return {p.name for p in (out / "trials").iterdir()} if (out / "trials").is_dir() else set()


def _rows(out: Path) -> list[dict]:
    with (out / "trials.csv").open() as f:
        return list(csv.DictReader(f))


def _finished(study):
    import optuna

    return study.get_trials(states=(optuna.trial.TrialState.COMPLETE, optuna.trial.TrialState.PRUNED))


def test_two_workers_share_a_journal_study(tiles, space, tmp_path, spawn):
    """No server: a journal file on a (shared) filesystem; each worker writes its own run folders."""
    import optuna

    journal = tmp_path / "shared" / "study.log"
    outs = [tmp_path / "a", tmp_path / "b"]
    workers = [spawn(tiles, space, out, f"journal://{journal}", "colours", 4) for out in outs]
    said = [_finish(w) for w in workers]
    study = optuna.load_study(study_name="colours", storage=optuna.storages.JournalStorage(
        optuna.storages.journal.JournalFileBackend(str(journal))))
    finished = _finished(study)
    assert 4 <= len(finished) <= 5  # a journal knows no live trials: a second worker may start one more
    a, b = (_folders(out) for out in outs)
    assert a and b and not a & b  # both worked, and no trial was run twice
    assert {Path(t.user_attrs["run"]).name for t in study.trials} == a | b
    for out, text in zip(outs, said):  # each report reads every worker's trials back from the study
        assert sorted(int(r["number"]) for r in _rows(out)) == sorted(t.number for t in study.trials)
        assert "shared by 2 worker(s)" in (out / "report.md").read_text() and "joined study 'colours'" in text
        assert (out / "best.yaml").is_file()


def test_a_study_of_another_search_or_task_is_refused_naming_the_difference(tiles, space, tmp_path):
    storage = f"journal://{tmp_path / 'study.log'}"
    base = TrainConfig(task="image", model="compact", data=str(tiles), epochs=1, image_size=16, batch_size=8,
                       split=(0.6, 0.2, 0.2))
    tune(base, tmp_path / "a", space, trials=2, max_minutes=1e-4, storage=storage, study_name="s")  # no trial runs
    other = tmp_path / "other.yaml"
    other.write_text(yaml.safe_dump({**SPACE, "lr": {"low": 1.0e-4, "high": 1.0e-2, "log": True},
                                     "batch_size": {"choices": [8, 16]}}))
    with pytest.raises(ConfigError, match=r"study 's' in .*study\.log.*space batch_size was 'not searched', now "
                                          r"\{'choices': \[8, 16\]\}.*space lr was .*'low': 0\.001.*--study-name"):
        tune(base, tmp_path / "b", other, trials=2, max_minutes=1e-4, storage=storage, study_name="s")
    result = run_cli("tune", "text", tiles, "--out", tmp_path / "c", "--storage", storage, "--study-name", "s",
                     check=False)
    said = " ".join(result.stderr.split())
    assert result.returncode == 2 and "task was 'image', now 'text'" in said and "Traceback" not in said
    assert not (tmp_path / "b" / "trials").exists() and not (tmp_path / "c" / "trials").exists()


@pytest.mark.parametrize("url", ["postgresql://hs:s3cret-pw@127.0.0.1:1/tune", "mysql+nosuchdriver://hs:s3cret-pw@h/db",
                                 "sqlite:////no/such/folder/study.db", "::not a url s3cret-pw"])
def test_a_storage_that_cannot_be_opened_is_one_line_without_the_password(tiles, space, tmp_path, url):
    out = tmp_path / "t"
    result = run_cli("tune", "image", tiles, "--out", out, "--space", space, "--storage", url, check=False)
    said = " ".join((result.stdout + result.stderr).split())
    assert result.returncode == 2 and said.count("error:") == 1 and "Traceback" not in said
    assert "s3cret-pw" not in said and "--storage" in said
    if "127.0.0.1" in url:
        assert "127.0.0.1:1" in said and "hs:***@" in said
    assert not out.exists()  # nothing made, nothing trained


def test_postgres_login_refused_names_the_host_not_the_password(postgres, tiles, space, tmp_path):
    from sqlalchemy.engine import make_url

    wrong = make_url(postgres).set(password="not-the-password")
    result = run_cli("tune", "image", tiles, "--out", tmp_path / "t", "--space", space, "--storage",
                     wrong.render_as_string(hide_password=False), check=False)
    said = " ".join((result.stdout + result.stderr).split())
    assert result.returncode == 2 and f"{wrong.host}:{wrong.port}" in said and "password" in said
    assert "not-the-password" not in said and make_url(postgres).password not in said
    assert not (tmp_path / "t").exists()


def test_two_workers_share_a_postgres_study_and_a_killed_workers_trial_is_queued_again(postgres, tiles, space,
                                                                                       tmp_path, spawn):
    """12 trials by two workers at once; one is killed mid-trial (SIGKILL) and started again."""
    import optuna
    from sqlalchemy.engine import make_url

    name, wanted = f"two-workers-{os.getpid()}", 12
    outs = [tmp_path / "a", tmp_path / "b"]
    a, b = (spawn(tiles, space, out, postgres, name, wanted, epochs=8) for out in outs)
    storage = optuna.storages.RDBStorage(postgres)
    study = _wait(lambda: _load(name, storage), 60, "the study to exist")

    def running_in_a():
        import optuna

        return [t for t in study.get_trials(states=(optuna.trial.TrialState.RUNNING,))
                if t.user_attrs.get("worker", "").endswith(f":{a.pid}")]

    def marked_state():
        state = next(t.state for t in study.get_trials() if t.number == victim.number)
        return None if state == optuna.trial.TrialState.RUNNING else state

    victim = _wait(running_in_a, 90, "a trial of worker a")[0]
    time.sleep(0.3)  # its heartbeat is on record
    a.send_signal(signal.SIGKILL)
    a.wait()
    killed = time.monotonic()
    again = spawn(tiles, space, outs[0], postgres, name, wanted, epochs=8)  # the same command, started again
    state = _wait(marked_state, 10 * HEARTBEAT + 10, "the killed worker's trial to be marked")
    marked = time.monotonic() - killed
    said = [_finish(b), _finish(again)]
    trials = study.get_trials()
    finished = _finished(study)
    print(f"\n{wanted} trials wanted: {len(finished)} finished, {len(trials)} in all; killed trial "
          f"#{victim.number} marked {state.name} {marked:.1f} s after the kill (heartbeat {HEARTBEAT} s)")
    assert state == optuna.trial.TrialState.FAIL and marked < 2 * HEARTBEAT + 2 * HEARTBEAT + 3
    assert len(finished) == wanted  # exactly what was asked, across workers
    retried = [t for t in trials if t.system_attrs.get("failed_trial") == victim.number]
    victim = next(t for t in trials if t.number == victim.number)  # as it stood when its worker died
    assert len(retried) == 1 and retried[0].params == victim.params  # queued again, with its settings
    assert retried[0].number in {t.number for t in finished}  # and run
    a_folders, b_folders = _folders(outs[0]), _folders(outs[1])
    assert not a_folders & b_folders  # no trial number run twice
    assert {Path(t.user_attrs["run"]).name for t in finished} <= a_folders | b_folders
    ran = {t.user_attrs["worker"].rsplit(":", 1)[1] for t in finished}
    assert str(b.pid) in ran and str(again.pid) in ran  # the restarted worker took part until the study was done
    assert all(sorted(int(r["number"]) for r in _rows(out)) == [t.number for t in trials] for out in outs)
    password = make_url(postgres).password
    for folder in (*outs, tmp_path / "logs"):  # credentials never reach run folders, reports or logs
        for f in folder.rglob("*"):
            assert not f.is_file() or password.encode() not in f.read_bytes(), f
    assert all(password not in text for text in said) and f"{make_url(postgres).username}:***@" in said[0]


def _load(name, storage):
    import optuna

    try:
        return optuna.load_study(study_name=name, storage=storage)
    except KeyError:  # not created yet
        return None
