"""Hyperparameter search with Optuna: each trial is a normal run folder, hopeless trials are pruned.

A search space is a YAML mapping of settings (TrainConfig fields, or `model_args.NAME`) to what to try:

    lr: {low: 1.0e-4, high: 1.0e-2, log: true}      # a float range (log-uniform)
    model_args.blocks: {low: 2, high: 5}             # integer ends: an integer range (`step` optional)
    optimizer: {choices: [adamw, adam, sgd, rmsprop]}
    model: compact                                   # a plain value: fixed for every trial

The TPE sampler draws from ranges; the grid sampler tries every combination once, so its ranges need a `step`
(integer ranges step by 1 unless given one). The study lives in `OUT/study.db` (SQLite); running the same search
again resumes it. With a shared storage (engine/study_storage.py) any number of workers join one study, each writing
its trials' run folders under its own OUT; `trials` then counts the study's trials, whoever ran them.
"""

from __future__ import annotations

import contextlib
import csv
import difflib
import json
import math
import re
import time
import warnings
import zlib
from dataclasses import dataclass, fields
from pathlib import Path
from typing import TYPE_CHECKING, Any

import yaml
from lightning.pytorch.callbacks import Callback

from hardsight.config import TrainConfig, read_settings
from hardsight.console import console
from hardsight.engine.study_storage import HEARTBEAT, StaleTrialWatch, StudyStorage, open_storage, worker_name
from hardsight.errors import ConfigError, HardsightError, RunError
from hardsight.jobs.manifest import refuse_other_settings
from hardsight.runs.folder import RunFolder

if TYPE_CHECKING:
    import optuna

SPACES = Path(__file__).parent.parent / "tune_spaces"  # the default space of each task: text.yaml, image.yaml
MONITOR = "val/objective"  # what every trial minimises (as training.MONITOR; not imported, to keep import light)
NOT_SEARCHED = {"task", "data", "out", "seed", "split", "val_dir", "test_dir", "model_args"}  # the split stays fixed
DATA_SETTINGS = {"image_size", "label_col", "group_col", "extra_labels", "faces", "landmarks", "face_detector",
                 "limit_per_class"}
STUDY_NAME = "hardsight-tune"
SAMPLERS = ("tpe", "grid")
_RANGE_KEYS = {"low", "high", "log", "step"}


@dataclass(frozen=True)
class Dimension:
    """One searched setting: `choices`, or a range from `low` to `high` (integers when both ends are)."""

    name: str  # a TrainConfig setting, or model_args.NAME
    choices: tuple[Any, ...] | None = None
    low: float | None = None
    high: float | None = None
    log: bool = False
    step: float | None = None
    integer: bool = False

    def suggest(self, trial: optuna.Trial) -> Any:
        if self.choices is not None:
            return trial.suggest_categorical(self.name, list(self.choices))
        if self.integer:
            return trial.suggest_int(self.name, int(self.low), int(self.high), step=int(self.step or 1), log=self.log)
        return trial.suggest_float(self.name, self.low, self.high, step=self.step, log=self.log)

    def grid(self, source: str) -> list[Any]:
        """Every value a grid search tries: the choices, or the range from `low` to `high` by `step`."""
        if self.choices is not None:
            return list(self.choices)
        if self.log or (self.step is None and not self.integer):
            raise ConfigError(f"{source}: {self.name}: a grid search needs listed values; give the range a `step` "
                              "(and no `log`), or list `choices`")
        step = self.step or 1
        values = [self.low + k * step for k in range(math.floor((self.high - self.low) / step + 1e-9) + 1)]
        return [int(v) for v in values] if self.integer else [round(v, 12) for v in values]

    def extremes(self) -> list[Any]:
        """The values that bound what this dimension can give (checked against TrainConfig before searching)."""
        return list(self.choices) if self.choices is not None else [self.low, self.high]


@dataclass(frozen=True)
class SearchSpace:
    dimensions: tuple[Dimension, ...]
    fixed: dict[str, Any]  # settings every trial shares
    source: str

    @classmethod
    def load(cls, path: str | Path) -> SearchSpace:
        """Read and check a space file; every error names the file and the setting."""
        raw = read_settings(path, "search space")
        known = {f.name for f in fields(TrainConfig)} - NOT_SEARCHED
        unknown = [k for k in raw if not (str(k) in known or re.fullmatch(r"model_args\.[A-Za-z_]\w*", str(k)))]
        if unknown:
            hints = {k: difflib.get_close_matches(str(k), known, n=1) for k in unknown}
            raise ConfigError(f"{path}: unknown setting(s) {hints} (close matches shown); a space names TrainConfig "
                              f"settings other than {sorted(NOT_SEARCHED)}, or model_args.NAME")
        dims, fixed = [], {}
        for key, spec in raw.items():
            if isinstance(spec, dict):
                dims.append(_dimension(str(key), spec, str(path)))
            else:
                fixed[str(key)] = spec
        return cls(tuple(dims), fixed, str(path))

    @classmethod
    def default(cls, task: str) -> SearchSpace:
        return cls.load(SPACES / f"{task}.yaml")

    def check(self, base: TrainConfig) -> TrainConfig:
        """`base` with the fixed settings applied; each searched setting's end values must make a valid config."""
        base = _with(base, self.fixed, self.source)
        for d in self.dimensions:
            for value in d.extremes():
                _with(base, {d.name: value}, f"{self.source}: {d.name}")
        return base

    def sample(self, trial: optuna.Trial) -> dict[str, Any]:
        return {d.name: d.suggest(trial) for d in self.dimensions}

    def grid(self) -> dict[str, list[Any]]:
        """The values of each searched setting a grid search combines (a ConfigError for a range without a step)."""
        return {d.name: d.grid(self.source) for d in self.dimensions}

    def record(self) -> dict[str, Any]:
        """What each searched setting may take, as a study stores it (so a worker with another space is refused)."""
        return json.loads(json.dumps({d.name: {"choices": list(d.choices)} if d.choices is not None else
                                      {"low": d.low, "high": d.high, "log": d.log, "step": d.step}
                                      for d in self.dimensions}))


def _dimension(key: str, spec: dict, source: str) -> Dimension:
    where = f"{source}: {key}"
    bad = set(spec) - _RANGE_KEYS - {"choices"}
    if bad or not spec:
        raise ConfigError(f"{where}: unknown field(s) {sorted(bad)}; use {{choices: [...]}} or "
                          "{low: A, high: B, log: true|false, step: S}")
    if "choices" in spec:
        choices = spec["choices"]
        if set(spec) != {"choices"} or not isinstance(choices, list) or not choices:
            raise ConfigError(f"{where}: `choices` is a non-empty list and takes no other fields")
        if not all(c is None or isinstance(c, (str, int, float, bool)) for c in choices):
            raise ConfigError(f"{where}: choices must be plain values (text, numbers, true/false), got {choices}")
        return Dimension(key, choices=tuple(choices))
    if not {"low", "high"} <= set(spec):
        raise ConfigError(f"{where}: a range needs both `low` and `high`")
    low, high, step = (_number(spec.get(k), f"{where}.{k}") for k in ("low", "high", "step"))
    log = spec.get("log", False)
    integer = all(isinstance(spec.get(k), int) and not isinstance(spec.get(k), bool) for k in ("low", "high")) and (
        step is None or float(step).is_integer())
    if not isinstance(log, bool):
        raise ConfigError(f"{where}: `log` is true or false, got {log!r}")
    if not low < high:
        raise ConfigError(f"{where}: `low` ({low}) must be below `high` ({high})")
    if log and (low <= 0 or step is not None):
        raise ConfigError(f"{where}: a log range needs `low` above 0 and no `step`")
    return Dimension(key, low=low, high=high, log=log, step=step, integer=integer)


def _number(value: Any, where: str) -> float | int | None:
    """YAML reads `1e-4` (no dot) as text; accept it as the number it means."""
    if value is None or (isinstance(value, (int, float)) and not isinstance(value, bool)):
        return value
    try:
        return float(value)
    except (TypeError, ValueError):
        raise ConfigError(f"{where}: expected a number, got {value!r}") from None


def _with(base: TrainConfig, settings: dict[str, Any], source: str) -> TrainConfig:
    """`base` with `settings` (model_args.NAME keys merge into model_args), checked by TrainConfig."""
    raw = base.to_dict()
    model_args = dict(base.model_args)
    for key, value in settings.items():
        if key.startswith("model_args."):
            model_args[key.split(".", 1)[1]] = value
        else:
            raw[key] = value
    try:
        return TrainConfig.from_dict({**raw, "model_args": model_args}, source=source)
    except ConfigError as e:  # range checks in TrainConfig do not name the file
        raise (e if str(e).startswith(source) else ConfigError(f"{source}: {e}")) from None


class TrialPruning(Callback):
    """Report `val/objective` to the Optuna trial after every validation; stop the run when the pruner says so."""

    def __init__(self, trial: optuna.Trial, monitor: str = MONITOR):
        self.trial, self.monitor = trial, monitor
        self.best: float | None = None  # the trial's value: the best epoch, as the best checkpoint keeps
        self.epochs = 0

    def on_validation_end(self, trainer, module) -> None:
        import optuna

        value = trainer.callback_metrics.get(self.monitor)
        if trainer.sanity_checking or value is None or not math.isfinite(float(value)):
            return
        value, step = float(value), trainer.current_epoch
        self.best = value if self.best is None else min(self.best, value)
        self.epochs = step + 1
        self.trial.set_user_attr("epochs", self.epochs)
        self.trial.report(value, step)
        if self.trial.should_prune():
            raise optuna.TrialPruned(f"epoch {step + 1}: {self.monitor} {value:.4f}")


@dataclass(frozen=True)
class TuneResult:
    out: Path
    best_run: Path | None  # the best trial's run folder
    best_value: float | None
    best_params: dict[str, Any]
    complete: int
    pruned: int
    failed: int

    @property
    def report(self) -> Path:
        return self.out / "report.md"


def tune(base: TrainConfig, out: str | Path, space: str | Path | None = None, trials: int = 20,
         max_minutes: float | None = None, pruner: str | optuna.pruners.BasePruner = "median",
         startup_trials: int = 3, verbose: bool = False, sampler: str = "tpe", storage: str | None = None,
         study_name: str = STUDY_NAME, heartbeat: int = HEARTBEAT) -> TuneResult:
    """Search `space` (default: the task's shipped one) around `base`; trials are run folders in OUT/trials/.

    Args:
        base: the settings every trial starts from (task, data, seed and split are never searched); its
            max_minutes is each trial's budget.
        trials: finished (complete or pruned) trials wanted in the study, counting those of earlier runs.
        max_minutes: budget of this call: no trial starts after it, and none runs past it.
        pruner: "median", "asha" (successive halving), "none", or an Optuna pruner.
        startup_trials: trials that are never pruned (and that TPE draws at random).
        sampler: "tpe", or "grid": every combination of the space's values once (at most `trials` of them).
        storage: a study storage workers share: a database URL (postgresql://, mysql+pymysql://, sqlite:///) or
            journal:///PATH; None keeps the study in OUT/study.db, this search's alone.
        study_name: the study in `storage`: every worker given the same storage and name joins it.
        heartbeat: seconds between a running trial's heartbeats in a database storage; a trial silent for two
            is a dead worker's: marked failed and queued again.
    """
    import optuna

    start = time.monotonic()
    out = Path(out)
    if base.devices * base.num_nodes > 1:
        raise ConfigError("hardsight tune trains each trial in one process; leave devices and num_nodes at 1")
    if sampler not in SAMPLERS:
        raise ConfigError(f"unknown sampler {sampler!r}; choose from {list(SAMPLERS)}")
    search = SearchSpace.load(space) if space else SearchSpace.default(base.task)
    base = search.check(base.replace(data=str(Path(base.data).resolve()), out=None))
    grid = search.grid() if sampler == "grid" else None  # a range without a step fails here, before OUT exists
    store = open_storage(storage, out, heartbeat)  # an unreachable or refused storage too, before any training
    out.mkdir(parents=True, exist_ok=True)
    verbosity = optuna.logging.get_verbosity()  # the caller's, given back at the end
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    try:
        return _search(base, search, out, trials, max_minutes, pruner, startup_trials, verbose, start, grid, store,
                       study_name)
    finally:
        optuna.logging.set_verbosity(verbosity)


def _search(base: TrainConfig, search: SearchSpace, out: Path, trials: int, max_minutes: float | None, pruner: str,
            startup_trials: int, verbose: bool, start: float, grid: dict[str, list] | None, store: StudyStorage,
            study_name: str) -> TuneResult:
    """The search itself: the study opened (or joined, or resumed), then one trial at a time until the study holds
    `trials`, this worker is out of time or, with a `grid`, out of combinations."""
    import optuna

    study = optuna.create_study(study_name=study_name, storage=store.storage, direction="minimize",
                                pruner=_pruner(pruner, startup_trials), load_if_exists=True)
    where = f"study {study_name!r} in {store.where}" if store.shared else str(out)
    _check_same_search(study, base, search, where, "tpe" if grid is None else "grid",
                       "--study-name" if store.shared else "--out")
    if not store.shared:  # the study is this search's alone: what is running was left by an interrupted one
        for t in study.get_trials(deepcopy=False, states=(optuna.trial.TrialState.RUNNING,)):
            study.tell(t.number, state=optuna.trial.TrialState.FAIL)
            console.print(f"trial {t.number}: left unfinished by an earlier, interrupted search; marked failed")
    with StaleTrialWatch(study, store.heartbeat):  # shared: dead workers' trials are failed and queued again
        done = _count(study, "COMPLETE", "PRUNED")
        # a fresh seed per call, so a resumed search does not redraw the configurations it already tried; workers of
        # one study each add their own, or they would all draw the same settings (and lie about running trials)
        salt = zlib.crc32(worker_name().encode()) if store.shared else 0
        if grid is None:  # shared: running trials count as tried (constant liar), so workers spread out
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")  # constant_liar is experimental before optuna 5
                study.sampler = optuna.samplers.TPESampler(seed=(base.seed + len(study.trials) + salt) % 2**32,
                                                           n_startup_trials=startup_trials,
                                                           **({"constant_liar": True} if store.shared else {}))
        else:  # one seed always: trial N takes combination N of the seeded order, which must not change on resuming
            study.sampler = optuna.samplers.GridSampler(grid, seed=base.seed)
            combinations = math.prod(len(values) for values in grid.values())
            trials = min(trials, combinations)
        prepared = _prepare_once(base, search)
        deadline = start + max_minutes * 60 if max_minutes else None
        if store.shared:
            console.print(f"joined {where}: {done} of {trials} trials finished, "
                          f"{_count(study, 'RUNNING')} running; this worker's run folders go to {out / 'trials'}")
        elif done:
            console.print(f"resuming {out}: {done} of {trials} trials finished")
        objective = _Objective(base, search, out.resolve() if store.shared else out, prepared, deadline, verbose,
                               trials if store.knows_live_trials else None)
        attempts, waiting = max(0, trials - done), False  # failed trials do not count, but are not retried forever
        try:
            while attempts > 0:
                if deadline is not None and deadline - time.monotonic() < 1:
                    console.print(f"search budget of {max_minutes:g} min spent")
                    break
                if grid is not None and _count(study, "COMPLETE", "PRUNED", "FAIL") >= combinations:
                    console.print(f"every one of the grid's {combinations} combinations tried")
                    break
                if _claimed(study, store.knows_live_trials) >= trials:
                    if not store.shared or _count(study, "COMPLETE", "PRUNED") >= trials:
                        break
                    # the last trials run in other workers: wait for them, taking over any whose worker dies
                    if not waiting:
                        console.print("the study's last trials are running in other workers: waiting for them")
                        waiting = True
                    time.sleep(store.heartbeat or 1)
                    continue
                attempts -= 1
                study.optimize(objective, n_trials=1, catch=(RuntimeError, ValueError),
                               callbacks=[lambda s, t: _progress(s, t, trials)])
        except BaseException:  # Ctrl-C or a crash: what finished is still on record
            write_trials_csv(study, out / "trials.csv")
            raise
    return write_outputs(study, base, out, store.where if store.shared else None)


def _claimed(study: optuna.Study, live_running: bool, before: int | None = None) -> int:
    """Trials that count toward --trials: finished ones, and running ones where they are known to be live (a
    running trial will finish, so a worker does not start one more than the study needs); only those numbered
    below `before`, when given."""
    import optuna

    states = ("COMPLETE", "PRUNED", "RUNNING") if live_running else ("COMPLETE", "PRUNED")
    wanted = tuple(getattr(optuna.trial.TrialState, s) for s in states)
    return sum(1 for t in study.get_trials(deepcopy=False, states=wanted) if before is None or t.number < before)


class _Objective:
    """Train one trial into OUT/trials/trial-NNN; its value is the run's best val/objective."""

    def __init__(self, base: TrainConfig, space: SearchSpace, out: Path, prepared, deadline: float | None,
                 verbose: bool, quota: int | None = None):
        self.base, self.space, self.out, self.prepared = base, space, out, prepared
        self.deadline, self.verbose = deadline, verbose
        self.quota = quota  # the study's --trials, where running trials are known to be live

    def __call__(self, trial: optuna.Trial) -> float:
        from hardsight.engine.trainer import train

        trial.set_user_attr("worker", worker_name())
        if "epochs" in trial.user_attrs:  # a dead worker's trial, queued again with what it had recorded
            trial.set_user_attr("epochs", 0)
        if self.quota is not None and _claimed(trial.study, True, before=trial.number) >= self.quota:
            # another worker started the study's last trial between this worker's count and its start
            trial.set_user_attr("error", f"not run: the study's {self.quota} trials were finished or running")
            return float("nan")
        params = self.space.sample(trial)
        minutes = self.base.max_minutes
        if self.deadline is not None:
            left = max((self.deadline - time.monotonic()) / 60, 0.01)
            minutes = min(minutes or left, left)
        run = self.out / "trials" / f"trial-{trial.number:03d}"
        trial.set_user_attr("run", str(run))
        cfg = _with(self.base, params, f"trial {trial.number}").replace(out=str(run), max_minutes=minutes)
        pruning = TrialPruning(trial)
        try:
            with _quiet(not self.verbose):
                result = train(cfg, progress=False, prepared=self.prepared, extra_callbacks=[pruning])
        except (RuntimeError, ValueError) as e:  # e.g. a sampled network too deep for the input: this trial fails
            trial.set_user_attr("error", f"{type(e).__name__}: {str(e).splitlines()[0][:120]}")
            raise
        except RunError as e:  # e.g. the budget ran out before the first checkpoint
            trial.set_user_attr("error", str(e)[:160])
            return float("nan")
        trial.set_user_attr("stopped_by", result.stopped_by)
        trial.set_user_attr("epochs", result.epochs)
        for key, value in (result.test.to_json().items() if result.test is not None else ()):
            if isinstance(value, float):
                trial.set_user_attr(f"test_{key}", value)
        if pruning.best is None:
            trial.set_user_attr("error", "no epoch finished within the time budget")
            return float("nan")  # Optuna records a nan value as a failed trial
        return pruning.best


def _pruner(name: str | optuna.pruners.BasePruner, startup_trials: int) -> optuna.pruners.BasePruner:
    import optuna

    if not isinstance(name, str):
        return name
    pruners = {
        "median": lambda: optuna.pruners.MedianPruner(n_startup_trials=startup_trials, n_warmup_steps=1),
        "asha": lambda: optuna.pruners.SuccessiveHalvingPruner(min_resource=2, reduction_factor=3),
        "none": optuna.pruners.NopPruner,
    }
    if name not in pruners:
        raise ConfigError(f"unknown pruner {name!r}; choose from {list(pruners)}")
    return pruners[name]()


def _check_same_search(study: optuna.Study, base: TrainConfig, space: SearchSpace, where: str, sampler: str,
                       new: str) -> None:
    """A study holds one search: resuming or joining it with another task, other base settings, another space or
    another sampler would mix incomparable trials (studies from before the grid sampler are TPE's; those from before
    spaces were recorded take this one's)."""
    settings = json.loads(json.dumps({k: v for k, v in base.to_dict().items() if k != "workers"}))  # as stored
    record = {"task": base.task, "settings": settings, "sampler": sampler, "space": space.record()}
    stored = study.user_attrs
    if "settings" not in stored:
        for key, value in record.items():
            study.set_user_attr(key, value)
        return
    if "space" not in stored:
        study.set_user_attr("space", record["space"])
    was_space, now_space = stored.get("space", record["space"]), record["space"]
    names = sorted(set(was_space) | set(now_space))
    saved = {"task": stored.get("task", stored["settings"].get("task")), **stored["settings"],
             "sampler": stored.get("sampler", "tpe"), **{f"space {k}": was_space.get(k, "not searched") for k in names}}
    now = {"task": base.task, **settings, "sampler": sampler,
           **{f"space {k}": now_space.get(k, "not searched") for k in names}}
    refuse_other_settings(where, saved, now, "a search", new, ConfigError)


def _prepare_once(base: TrainConfig, space: SearchSpace):
    """The data read and split once for every trial (where the task can share it), unless the space changes how
    it is read."""
    if {d.name for d in space.dimensions} & DATA_SETTINGS:
        return None
    from hardsight.tasks import task_of

    with _quiet(True):
        return task_of(base.task).prepare_shared(base)


@contextlib.contextmanager
def _quiet(on: bool):
    """Silence the training output of a trial (the search prints one line per trial instead)."""
    was = console.quiet
    console.quiet = was or on
    try:
        yield
    finally:
        console.quiet = was


def _count(study: optuna.Study, *states: str) -> int:
    import optuna

    wanted = tuple(getattr(optuna.trial.TrialState, s) for s in states)
    return len(study.get_trials(deepcopy=False, states=wanted))


def _best(study: optuna.Study) -> optuna.trial.FrozenTrial | None:
    return study.best_trial if _count(study, "COMPLETE") else None


def _minutes(t: optuna.trial.FrozenTrial) -> float | None:
    return t.duration.total_seconds() / 60 if t.duration else None


def _progress(study: optuna.Study, t: optuna.trial.FrozenTrial, total: int) -> None:
    """One line per trial: finished/wanted, state, value, minutes, best so far, the sampled settings."""
    best = _best(study)
    value = f"{t.value:.4f}" if t.value is not None else "-"
    params = " ".join(f"{k.removeprefix('model_args.')}={_short(v)}" for k, v in t.params.items())
    why = f"  ({t.user_attrs['error']})" if "error" in t.user_attrs else ""
    so_far = f"best {best.value:.4f} (#{best.number})  " if best else ""
    console.print(f"[{_count(study, 'COMPLETE', 'PRUNED')}/{total}] trial {t.number:<3} {t.state.name.lower():8} "
                  f"{value:>7}  {_minutes(t) or 0:5.1f} min  {so_far}{params}{why}", markup=False, highlight=False,
                  soft_wrap=True)


def _short(v: Any) -> str:
    return f"{v:.3g}" if isinstance(v, float) else str(v)


def write_trials_csv(study: optuna.Study, path: Path) -> Path:
    """One row per trial: number, state, value, minutes, epochs, run folder, worker, then each parameter and test
    score."""
    trials = study.get_trials(deepcopy=False)
    params = sorted({k for t in trials for k in t.params})
    tests = sorted({k for t in trials for k in t.user_attrs if k.startswith("test_")})
    with path.open("w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["number", "state", "value", "minutes", "epochs", "stopped_by", "run", "worker", *params, *tests])
        for t in trials:
            minutes = _minutes(t)
            w.writerow([t.number, t.state.name, "" if t.value is None else f"{t.value:.6g}",
                        "" if minutes is None else f"{minutes:.2f}", t.user_attrs.get("epochs", ""),
                        t.user_attrs.get("stopped_by", "pruned" if t.state.name == "PRUNED" else ""),
                        t.user_attrs.get("run", ""), t.user_attrs.get("worker", ""),
                        *(t.params.get(k, "") for k in params),
                        *(f"{t.user_attrs[k]:.6g}" if k in t.user_attrs else "" for k in tests)])
    return path


def write_outputs(study: optuna.Study, base: TrainConfig, out: Path, shared: str | None = None) -> TuneResult:
    """trials.csv, best.yaml, plots/ and report.md for the study so far (every worker's trials, read from the study;
    `shared`: where a shared study lives, masked)."""
    write_trials_csv(study, out / "trials.csv")
    best = _best(study)
    best_run = Path(best.user_attrs["run"]) if best else None
    if best_run is not None:
        try:
            cfg = RunFolder(best_run).load_config()
        except (HardsightError, OSError):  # another worker's folder, on another machine: the same settings
            cfg = _with(base, dict(best.params), f"trial {best.number}")
        cfg = cfg.replace(out=None, max_minutes=base.max_minutes)  # a fresh folder; the trial budget, uncapped
        (out / "best.yaml").write_text(f"# best trial #{best.number} of {out}: {MONITOR} {best.value:.6g}\n"
                                       f"# run folder: {best_run}\n" + yaml.safe_dump(cfg.to_dict(), sort_keys=False))
    plots = _plots(study, out / "plots")
    importances = _importances(study)
    _write_report(study, base, out, best, plots, importances, shared)
    return TuneResult(out, best_run, best.value if best else None, dict(best.params) if best else {},
                      _count(study, "COMPLETE"), _count(study, "PRUNED"), _count(study, "FAIL"))


def _plots(study: optuna.Study, folder: Path) -> dict[str, Path | str]:
    """Optimisation history and parallel coordinates (Optuna's matplotlib plots): path, or why there is none."""
    import optuna

    from hardsight.engine import plots as _  # noqa: F401  (selects the Agg backend)
    import matplotlib.pyplot as plt

    made: dict[str, Path | str] = {}
    if not _count(study, "COMPLETE"):
        return {"optimization_history": "no complete trial yet", "parallel_coordinate": "no complete trial yet"}
    folder.mkdir(parents=True, exist_ok=True)
    for name, plot in (("optimization_history", optuna.visualization.matplotlib.plot_optimization_history),
                       ("parallel_coordinate", optuna.visualization.matplotlib.plot_parallel_coordinate)):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # ExperimentalWarning on every call
            try:
                ax = plot(study)
            except (ValueError, RuntimeError) as e:
                made[name] = f"not drawn: {e}"
                continue
        fig = ax.figure if hasattr(ax, "figure") else ax.flat[0].figure
        wide = name == "parallel_coordinate"  # one axis a parameter
        fig.set_size_inches(max(9.0, 1.2 * len(study.best_trial.params) + 3) if wide else 9.0, 5.5)
        fig.tight_layout()
        fig.savefig(folder / f"{name}.png", dpi=110)
        plt.close(fig)
        made[name] = folder / f"{name}.png"
    return made


def _importances(study: optuna.Study) -> dict[str, float] | str:
    """fANOVA importances of the parameters, or why there are none (they need two complete trials)."""
    import optuna

    if _count(study, "COMPLETE") < 2:
        return "needs at least two complete trials"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            return optuna.importance.get_param_importances(study)
        except (ValueError, RuntimeError) as e:
            return f"not computed: {e}"


def _write_report(study: optuna.Study, base: TrainConfig, out: Path, best, plots: dict, importances,
                  shared: str | None = None) -> None:
    complete, pruned, failed = (_count(study, s) for s in ("COMPLETE", "PRUNED", "FAIL"))
    from hardsight.tasks import task_of

    objective = task_of(base.task).objective
    folders = "Every trial is a run folder under `trials/`"
    if shared is not None:
        workers = len({t.user_attrs["worker"] for t in study.trials if "worker" in t.user_attrs})
        running = _count(study, "RUNNING")
        folders = (f"The study `{study.study_name}` lives in `{shared}`, shared by {workers} worker(s)"
                   + (f", {running} trial(s) still running" if running else "")
                   + "; every trial is a run folder under `trials/` of the `--out` of the worker that ran it "
                   "(columns `run` and `worker`)")
    lines = [f"# Hyperparameter search: {base.task} on `{base.data}`", "",
             f"{len(study.trials)} trials ({study.user_attrs.get('sampler', 'tpe')} sampler): {complete} complete, "
             f"{pruned} pruned, {failed} failed. Each trial minimises "
             f"`{MONITOR}` ({objective} on the validation split, best epoch); the split (seed {base.seed}) is the "
             f"same for all. {folders}; all of them are in `trials.csv`.", ""]
    if best is None:
        lines += ["No trial has completed yet.", ""]
    else:
        run = Path(best.user_attrs["run"])
        tests = {k.removeprefix("test_"): v for k, v in best.user_attrs.items() if k.startswith("test_")}
        lines += [f"## Best trial: #{best.number}, {MONITOR} {best.value:.4f}", "",
                  f"Run folder: `{run}` ([report]({_rel(run / 'report.md', out)})), "
                  f"{best.user_attrs.get('epochs', '?')} epochs in {_minutes(best) or 0:.1f} min. "
                  "Its full config is `best.yaml` (train it again with `hardsight train "
                  f"{base.task} DATA --config {out / 'best.yaml'}`).", ""]
        if tests:
            lines += ["Test split: " + ", ".join(f"{k} {v:.4f}" for k, v in tests.items()), ""]
        lines += ["Searched settings of the best trial:", "", "```yaml",
                  yaml.safe_dump(dict(best.params), sort_keys=False).strip(), "```", ""]
    lines += ["## Parameter importances (fANOVA)", ""]
    if isinstance(importances, dict):
        lines += ["| parameter | importance |", "|---|---|"]
        lines += [f"| {k} | {v:.3f} |" for k, v in importances.items()] + [""]
    else:
        lines += [f"Not available: {importances}.", ""]
    lines += ["## Plots", ""]
    for name, title in (("optimization_history", "optimisation history"),
                        ("parallel_coordinate", "parallel coordinates")):
        p = plots.get(name)
        lines += [f"![{title}]({_rel(p, out)})" if isinstance(p, Path) else f"{title}: {p}", ""]
    ranked = sorted((t for t in study.trials if t.value is not None), key=lambda t: t.value)[:10]
    if ranked:
        lines += ["## Top trials", "", "| trial | state | value | min | epochs | settings |",
                  "|---|---|---|---|---|---|"]
        lines += [f"| {t.number} | {t.state.name.lower()} | {t.value:.4f} | {_minutes(t) or 0:.1f} | "
                  f"{t.user_attrs.get('epochs', '')} | "
                  + ", ".join(f"{k}={_short(v)}" for k, v in t.params.items()) + " |" for t in ranked]
        lines += [""]
    (out / "report.md").write_text("\n".join(lines))


def _rel(path: Path, base: Path) -> str:
    try:
        return str(Path(path).resolve().relative_to(base.resolve()))
    except ValueError:
        return str(path)


__all__ = ["Dimension", "SearchSpace", "TrialPruning", "TuneResult", "tune", "write_outputs", "write_trials_csv"]
