"""Where a search's Optuna study lives, so that several `hardsight tune` workers can share it.

The default is OUT/study.db (SQLite), one process's alone. `--storage` names a shared one: any Optuna database URL
(PostgreSQL through psycopg, MySQL, SQLite) or `journal:///PATH`, a journal file on a shared filesystem (no server).
Database storages beat a heartbeat for each running trial: a trial whose worker died (its heartbeat silent for two
intervals) is marked failed and queued again, and every worker looks for such trials while it trains.

The URL's password never leaves this module: everything printed or written shows `where`, with the password masked.
"""

from __future__ import annotations

import os
import socket
import threading
import time
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from hardsight.errors import ConfigError

if TYPE_CHECKING:
    import optuna

JOURNAL = "journal://"
HEARTBEAT = 30  # seconds between a running trial's heartbeats; silent for two of them is a dead worker's trial
RETRIES = 2  # a dead worker's trial is queued again at most this often (a trial that kills its worker each time stops)
CONNECT_SECONDS = 10  # an unreachable server is an error after this, not a hang
DRIVERS = {"postgresql": "postgresql+psycopg", "postgres": "postgresql+psycopg"}  # psycopg 3: hardsight[postgres]
INSTALL = {"postgresql": "pip install 'hardsight[postgres]'",
           "mysql": "pip install PyMySQL and write the URL mysql+pymysql://USER:PASSWORD@HOST/DB"}
URL_FORMS = ("postgresql://USER:PASSWORD@HOST:PORT/DB, mysql+pymysql://USER:PASSWORD@HOST/DB, sqlite:///PATH "
             "or journal:///PATH")


@dataclass(frozen=True)
class StudyStorage:
    """An opened storage: what optuna.create_study takes, and how the search treats its running trials."""

    storage: Any  # an Optuna storage, or the URL of the local SQLite file
    where: str  # printable: a path, or the URL with its password masked
    shared: bool  # named by --storage: other workers may be running trials of the study
    heartbeat: int | None  # seconds between heartbeats (database storages), None where trials do not beat

    @property
    def knows_live_trials(self) -> bool:
        """Whether a running trial is a live worker's (so it counts toward --trials): true for the local file (this
        search marks what an earlier one left running as failed) and for storages with heartbeats; a journal's
        running trial may be a dead worker's."""
        return not self.shared or self.heartbeat is not None


def open_storage(url: str | None, out: Path, heartbeat: int = HEARTBEAT) -> StudyStorage:
    """The storage `url` names (None: OUT/study.db), connected and checked, or a one-line ConfigError naming it."""
    if url is None:
        return StudyStorage(f"sqlite:///{(out / 'study.db').resolve()}", str(out / "study.db"), False, None)
    if heartbeat < 1:
        raise ConfigError(f"--heartbeat {heartbeat}: give at least 1 second")
    if url.startswith(JOURNAL):
        return _journal(url)
    return _database(url, heartbeat)


def worker_name() -> str:
    """This worker, as a trial records who ran it: host and process."""
    return f"{socket.gethostname()}:{os.getpid()}"


def _journal(url: str) -> StudyStorage:
    import optuna
    from optuna.storages.journal import JournalFileBackend

    path = Path(url[len(JOURNAL):]).expanduser()
    if not path.name:
        raise ConfigError(f"--storage {url}: name the journal file, e.g. journal:///shared/tune/study.log")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        storage = optuna.storages.JournalStorage(JournalFileBackend(str(path)))
    except OSError as e:
        raise ConfigError(f"--storage {url}: cannot open the journal file {path} ({e.strerror or e}); give a "
                          "file on a filesystem every worker can write") from None
    return StudyStorage(storage, str(path), True, None)


def _database(url: str, heartbeat: int) -> StudyStorage:
    import optuna
    import sqlalchemy.exc
    from sqlalchemy.engine import make_url

    try:
        parsed = make_url(url)
    except (sqlalchemy.exc.ArgumentError, ValueError):  # not shown: it may hold a password
        raise ConfigError(f"--storage: not a storage URL (not shown, as it may hold a password); give {URL_FORMS}") \
            from None
    parsed = parsed.set(drivername=DRIVERS.get(parsed.drivername, parsed.drivername))
    where, secret, backend = parsed.render_as_string(hide_password=True), parsed.password, parsed.get_backend_name()
    if backend == "sqlite":
        engine: dict[str, Any] = {"connect_args": {"timeout": 60}}  # workers wait for each other's writes
    elif backend in ("postgresql", "mysql"):
        engine = {"pool_pre_ping": True, "connect_args": {"connect_timeout": CONNECT_SECONDS}}
    else:
        engine = {}
    retry = getattr(optuna.storages, "RetryHeartbeatStaleTrialCallback", None)  # optuna >= 4.9; the old name before
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # marked experimental
        hook = ({"heartbeat_stale_trial_callback": retry(max_retry=RETRIES)} if retry is not None else
                {"failed_trial_callback": optuna.storages.RetryFailedTrialCallback(max_retry=RETRIES)})
    try:
        for attempt in range(3):
            try:
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore")  # heartbeats and the retry callback are marked experimental
                    storage = optuna.storages.RDBStorage(parsed.render_as_string(hide_password=False),
                                                         engine_kwargs=engine, heartbeat_interval=heartbeat,
                                                         grace_period=2 * heartbeat, **hook)
                break
            except (sqlalchemy.exc.IntegrityError, sqlalchemy.exc.ProgrammingError):
                if attempt == 2:  # workers starting at once on a new database race to create its tables
                    raise
                time.sleep(0.5 * (attempt + 1))
    except sqlalchemy.exc.NoSuchModuleError:
        raise ConfigError(f"--storage {where}: unknown kind of database {parsed.drivername!r}; give {URL_FORMS}") \
            from None
    except ImportError as e:  # optuna's "Failed to import DB access module", from the driver's ModuleNotFoundError
        why = _first_line(e.__cause__ or e, secret)
        raise ConfigError(f"--storage {where}: the {backend} driver is not installed ({why}); "
                          f"{INSTALL.get(backend, 'install the driver the URL names')}") from None
    except (sqlalchemy.exc.SQLAlchemyError, RuntimeError, ValueError) as e:  # cannot connect, log in, or read it
        raise ConfigError(f"--storage {where}: cannot open the study storage on {_host(parsed)} "
                          f"({_first_line(getattr(e, 'orig', None) or e, secret)}); check the host, port, user, "
                          "password and database") from None
    return StudyStorage(storage, where, True, heartbeat)


def _host(parsed) -> str:
    if parsed.get_backend_name() == "sqlite":
        return f"file {parsed.database or ':memory:'}"
    return f"{parsed.host or 'localhost'}" + (f":{parsed.port}" if parsed.port else "")


def _first_line(e: BaseException, secret: str | None) -> str:
    text = (str(e).strip().splitlines() or [type(e).__name__])[0][:240]
    return text.replace(secret, "***") if secret else text


class StaleTrialWatch:
    """While this worker trains, fail and re-queue dead workers' trials every heartbeat (Optuna itself looks only
    when a worker starts its next trial, which may be a whole trial away)."""

    def __init__(self, study: optuna.Study, every: int | None):
        self.study, self.every = study, every
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def check(self) -> None:
        import optuna

        try:
            optuna.storages.fail_stale_trials(self.study)
        except Exception:  # noqa: BLE001  (a dropped connection: the next heartbeat tries again)
            pass

    def __enter__(self) -> StaleTrialWatch:
        if self.every is None:
            return self
        warnings.filterwarnings("ignore", message=r".*fail_stale_trials is experimental")  # said on every call
        self.check()  # a dead worker's trial is re-queued before this worker counts what is left
        self._thread = threading.Thread(target=self._run, name="hardsight-stale-trials", daemon=True)
        self._thread.start()
        return self

    def _run(self) -> None:
        while not self._stop.wait(self.every):
            self.check()

    def __exit__(self, *exc) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join()


__all__ = ["HEARTBEAT", "StaleTrialWatch", "StudyStorage", "open_storage", "worker_name"]
