"""The run folder: the one artifact that holds a trained recogniser (layout in DESIGN.md)."""

from __future__ import annotations

import contextlib
import json
import pickle
import platform
import re
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from hardsight.config import TrainConfig, load_config, save_config
from hardsight.errors import RunError
from hardsight.runs.shipped import resolve

# the layout of a run folder this version writes (env.json's `format_version`); `migrate` brings older layouts up to it
FORMAT_VERSION = 1
MIGRATIONS: dict[int, Any] = {}  # version -> function(RunFolder) rewriting a folder of that version into the next


@dataclass(frozen=True)
class RunFolder:
    """Paths of one run folder; creating and reading it happens only here."""

    path: Path

    @property
    def config(self) -> Path:
        return self.path / "config.yaml"

    @property
    def labels(self) -> Path:
        return self.path / "labels.json"

    @property
    def split(self) -> Path:
        return self.path / "split.json"

    @property
    def checkpoints(self) -> Path:
        return self.path / "checkpoints"

    @property
    def best(self) -> Path:
        return self.checkpoints / "best.ckpt"

    @property
    def last(self) -> Path:
        return self.checkpoints / "last.ckpt"

    @property
    def interrupted(self) -> Path:
        return self.checkpoints / "interrupted.ckpt"

    @property
    def metrics(self) -> Path:
        return self.path / "metrics.csv"

    @property
    def report(self) -> Path:
        return self.path / "report.md"

    @property
    def plots(self) -> Path:
        return self.path / "plots"

    @property
    def onnx(self) -> Path:
        return self.path / "model.onnx"

    @property
    def env(self) -> Path:
        return self.path / "env.json"

    @property
    def test_metrics(self) -> Path:
        return self.path / "test_metrics.json"

    @property
    def test_predictions(self) -> Path:
        return self.path / "test_predictions.json"

    @property
    def test_images(self) -> Path:
        """Thumbnails of the test images test_predictions.json names (what the model saw)."""
        return self.path / "test_predictions"

    # -- creating ---------------------------------------------------------------------------
    @classmethod
    def create(cls, out: str | Path | None, task: str, model: str, root: Path = Path("runs")) -> RunFolder:
        """A new, empty run folder; never reuses one that holds anything."""
        path = cls.planned(out, task, model, root)
        if path.exists() and (not path.is_dir() or any(path.iterdir())):
            raise RunError(f"{path} already exists and is not empty: pass --resume to continue that run, "
                           "or choose another --out")
        run = cls(path)
        run.checkpoints.mkdir(parents=True, exist_ok=True)
        run.plots.mkdir(exist_ok=True)
        return run

    @staticmethod
    def planned(out: str | Path | None, task: str, model: str, root: Path = Path("runs")) -> Path:
        """The folder `create` would make now: `out`, else the next free runs/TASK/MODEL-N."""
        return Path(out) if out else next_free(root / task / model)

    def write_start(self, cfg: TrainConfig, labels: dict[str, Any], split: dict[str, Any]) -> None:
        """The files a run starts with, all or none: a half-written folder would block the rerun and --resume."""
        try:
            save_config(cfg, self.config)
            write_json(self.labels, labels)
            write_json(self.split, split)
            write_json(self.env, environment())
        except BaseException:
            for path in (self.config, self.labels, self.split, self.env):
                path.unlink(missing_ok=True)
            for folder in (self.checkpoints, self.plots):
                with contextlib.suppress(OSError):  # only if still empty: never remove what someone else put there
                    folder.rmdir()
            raise

    # -- reading ----------------------------------------------------------------------------
    @classmethod
    def open(cls, path: str | Path) -> RunFolder:
        """An existing run folder with at least a config and a checkpoint, or a shipped run by name (`general`)."""
        run = cls(resolve(path))
        if not run.path.is_dir():
            raise RunError(f"{run.path}: no such run folder")
        if not run.config.is_file():
            raise RunError(f"{run.path}: not a run folder (no config.yaml)")
        run.migrate()
        return run

    def format_version(self) -> int:
        """The layout version the folder was written in (1: every folder written before the setting existed)."""
        try:
            return int(json.loads(self.env.read_text()).get("format_version", 1))
        except (OSError, ValueError, AttributeError):
            return 1

    def migrate(self) -> None:
        """Bring the folder's layout up to FORMAT_VERSION, one step per version; a newer one is refused."""
        version = self.format_version()
        if version > FORMAT_VERSION:
            raise RunError(f"{self.path}: written by a newer hardsight (run folder format {version}, this version "
                           f"reads up to {FORMAT_VERSION}); upgrade hardsight to open it")
        while version < FORMAT_VERSION:
            MIGRATIONS[version](self)
            version += 1

    def load_config(self) -> TrainConfig:
        return load_config(self.config)

    def load_labels(self) -> dict[str, Any]:
        return read_json(self.labels)

    def load_split(self) -> dict[str, Any]:
        return read_json(self.split)

    def load_test_predictions(self) -> list[dict[str, Any]]:
        """test_predictions.json as rows of {file, truth, prediction, confidence, correct, image}; a text run written
        before the card kept every test image as {file, label, text, confidence}, and reads the same way."""
        rows = read_json(self.test_predictions)
        if not isinstance(rows, list):
            raise RunError(f"{self.test_predictions}: expected a list of predictions")
        out = []
        for r in rows:
            truth, prediction = r.get("truth", r.get("label")), r.get("prediction", r.get("text"))
            out.append({"file": r.get("file"), "truth": truth, "prediction": prediction,
                        "confidence": r.get("confidence"), "correct": r.get("correct", truth == prediction),
                        "image": r.get("image")})
        return out

    def checkpoint(self, which: str = "best") -> Path:
        """The file `which` names, the one place `--checkpoint` is read: `best` (else last) for predicting, `last`
        (else best), `epoch-N` (kept by --save-every-epoch), a path to a .ckpt file, or `resume`: the newest of
        interrupted / last, to continue from."""
        if which == "resume":
            order = sorted((p for p in (self.interrupted, self.last) if p.is_file()),
                           key=lambda p: p.stat().st_mtime, reverse=True)
        elif which in ("best", "last"):
            order = [self.best, self.last] if which == "best" else [self.last, self.best]
        elif epoch := re.fullmatch(r"epoch-(\d+)", which):
            order = [self.epoch_checkpoint(int(epoch.group(1)))]
        else:
            order = [Path(which)] if which.endswith(".ckpt") else []
        for ckpt in order:
            if ckpt.is_file():
                return ckpt
        if which in ("best", "last", "resume"):
            raise RunError(f"{self.path}: no checkpoint in {self.checkpoints} (did training finish an epoch?)")
        held = ", ".join(sorted(p.name for p in self.checkpoints.glob("*.ckpt"))) or "none"
        raise RunError(f"{self.path}: no checkpoint {which!r} (give best, last, epoch-N or a .ckpt file; "
                       f"{self.checkpoints} holds: {held})")

    def epoch_checkpoint(self, epoch: int) -> Path:
        """What --save-every-epoch writes after epoch `epoch`, counted from 1 as in metrics.csv."""
        return self.checkpoints / f"epoch-{epoch:03d}.ckpt"

    def epoch_checkpoints(self) -> list[tuple[int, Path]]:
        """(epoch, file) of every checkpoint --save-every-epoch kept, in epoch order."""
        found = ((re.fullmatch(r"epoch-(\d+)\.ckpt", p.name), p) for p in self.checkpoints.glob("epoch-*.ckpt"))
        return sorted((int(m.group(1)), p) for m, p in found if m)


def next_free(base: Path) -> Path:
    """runs/text/crnn-1, -2, ... : the first number not taken."""
    taken = [int(m.group(1)) for p in base.parent.glob(f"{base.name}-*")
             if (m := re.fullmatch(rf"{re.escape(base.name)}-(\d+)", p.name))]
    return base.parent / f"{base.name}-{max(taken, default=0) + 1}"


def write_json(path: Path, obj: Any) -> None:
    """Written whole or not at all: another rank, or a listing of runs, may read it at any moment."""
    from hardsight.jobs.files import atomic_write

    with atomic_write(path) as tmp:
        tmp.write_text(json.dumps(obj, indent=1, ensure_ascii=False) + "\n")


def read_json(path: Path) -> Any:
    try:
        return json.loads(path.read_text())
    except FileNotFoundError:
        raise RunError(f"{path}: missing from the run folder") from None
    except json.JSONDecodeError as e:
        raise RunError(f"{path}: not valid JSON ({e})") from None


def environment() -> dict[str, Any]:
    """Versions and device, so a result can be traced to what produced it."""
    import lightning
    import torch

    try:
        sha = subprocess.run(["git", "rev-parse", "HEAD"], capture_output=True, text=True, timeout=5,
                             cwd=Path(__file__).parent).stdout.strip() or None
    except (OSError, subprocess.SubprocessError):
        sha = None
    from hardsight import __version__

    return {"format_version": FORMAT_VERSION, "hardsight": __version__, "python": platform.python_version(), "torch": torch.__version__,
            "lightning": lightning.__version__, "platform": platform.platform(),
            "cuda": torch.cuda.is_available(), "threads": torch.get_num_threads(), "git_sha": sha}


@contextlib.contextmanager
def refusing_pickled_code(ckpt: Path | None):
    """Around a weights_only load of a run's checkpoint (user input): a file that needs more than tensors and plain
    values to load is refused in one line, naming the object torch would not unpickle."""
    try:
        yield
    except pickle.UnpicklingError as e:
        found = re.search(r"GLOBAL ([\w.]+)", str(e))  # torch: "Unsupported global: GLOBAL io.open was not ..."
        what = f" ({found.group(1)})" if found else ""
        raise RunError(f"{ckpt}: refused: the checkpoint holds a pickled object{what}, not only weights and plain "
                       f"values; hardsight loads checkpoints with weights_only=True") from None
