"""Robustness studies: train conditions x test conditions on one split. The occlusion study comes first.

`occlusion_study` repeats the experiment of the VR-headset study end to end: faces are cropped and
aligned once (landmarks cached in STUDY/landmarks), split once by group (a performer never on two
sides; with `test_dir` the test faces are that folder's and DATA is split into train and val only), and
occluded on the aligned crop from its landmarks. One image run per train condition
(STUDY/runs/<condition>/) is scored on every test condition:

- train: clean; occluded; mixed (both versions of every training face); mixed-unique (each training
  face once, half of them occluded, half of each class);
- test: clean; occluded; mixed-unique (each test face once, half of them occluded, half of each class: the
  study's mixed test set); mixed (both versions of every test face: each face twice).

Each run is scored from its best-validation checkpoint and, with `checkpoints=("best", "last")`, from its last
one too. STUDY/study.csv has one row per cell (train x test x checkpoint) with two relative changes: against the
same model's clean-test result (`vs clean`) and against its own test (`vs own`: the test condition drawn as its
training set was, as the study's tables compare); beside them the checkpoint's epoch and validation scores
(from the run's metrics.csv). STUDY/study.md has a table per train condition, STUDY/study.png a plot,
STUDY/mixed-unique.json the faces that mixed-unique shows occluded. A rerun skips finished cells and never
retrains a finished run to score another checkpoint.
"""

from __future__ import annotations

import csv
import dataclasses
import json
import random
import shutil
import zlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from hardsight.config import TrainConfig
from hardsight.console import console
from hardsight.data.image.labels import ImageItem, Occlusion
from hardsight.errors import ConfigError, RunError
from hardsight.jobs.files import atomic_write
from hardsight.jobs.manifest import refuse_other_settings

TRAIN_CONDITIONS = ("clean", "occluded", "mixed", "mixed-unique")
TEST_CONDITIONS = ("clean", "occluded", "mixed-unique", "mixed")
CHECKPOINTS = ("best", "last")  # best validation objective, last epoch trained
# may change between runs of one study; the rest may not
BUDGET_KEYS = ("out", "max_minutes", "conditions", "checkpoints")
# what the study decides for every condition alike: a recipe (--config) may not change these
STUDY_OWNED = ("task", "data", "out", "split", "seed", "label_col", "group_col", "faces", "landmarks", "face_detector",
               "occluder", "occlusion_prob", "val_dir", "test_dir", "multi_label", "extra_labels", "limit_per_class")


def fine_tuning() -> dict[str, Any]:
    """How a pretrained backbone is fine-tuned in a study: as `train image` does (config.FINE_TUNE)."""
    from hardsight.config import FINE_TUNE

    return {k: FINE_TUNE[k] for k in ("body_lr_ratio", "freeze_epochs")}


@dataclass(frozen=True)
class StudyConfig:
    """Every setting of an occlusion study; the same split and seed serve every condition."""

    data: str
    out: str
    occluder: str = "vr-headset"
    area: float = 0.2  # random-patch only
    label_col: str = "label"
    group_col: str | None = None  # e.g. the performer: nobody is in both train and test
    landmarks: str | None = None  # folder of <stem>_lnd.npy; faces without one are detected
    face_detector: str = "hog"
    model: str = "compact"
    pretrained: bool = False  # start from pretrained weights, found offline first (models/weights.py)
    image_size: int = 64
    epochs: int = 30
    max_minutes: float | None = None  # per train condition
    batch_size: int = 32
    lr: float = 3e-3
    split: tuple[float, float, float] = (0.7, 0.1, 0.2)
    seed: int = 0
    test_dir: str | None = None  # the test faces (any layout DATA may have); DATA is then split into train and val
    limit_per_class: int | None = None  # at most this many faces per class of DATA, drawn by `seed` before splitting
    conditions: tuple[str, ...] = TRAIN_CONDITIONS
    checkpoints: tuple[str, ...] = ("best",)  # which checkpoints of each run are scored
    settings: dict[str, Any] = field(default_factory=dict)  # other image-task settings (optimizer, augment, ...)

    def __post_init__(self) -> None:
        from hardsight.faces.occluders import get_occluder

        get_occluder(self.occluder)
        bad = [c for c in self.conditions if c not in TRAIN_CONDITIONS]
        if bad or not self.conditions:
            raise ConfigError(f"train conditions {bad or '(none)'}: choose from {list(TRAIN_CONDITIONS)}")
        bad = [c for c in self.checkpoints if c not in CHECKPOINTS]
        if bad or not self.checkpoints:
            raise ConfigError(f"checkpoints {bad or '(none)'}: choose from {list(CHECKPOINTS)}")
        owned = sorted(set(self.settings) & {*STUDY_OWNED, *(f.name for f in dataclasses.fields(self))})
        if owned:
            raise ConfigError(f"settings {owned} are the study's own: give them as its options, not as settings")
        self.train_config()  # the image-task settings are checked there

    def train_config(self, out: Path | None = None) -> TrainConfig:
        """The image run of one train condition (faces on; the items come from the study)."""
        return TrainConfig.from_dict({**self._recipe(out), **self.settings}, source="study settings")

    def _recipe(self, out: Path | None) -> dict[str, Any]:
        """The study's training settings before `settings`: faces on, its data, split and seed."""
        return dict(task="image", data=self.data, out=str(out) if out else None, model=self.model,
                    pretrained=self.pretrained, image_size=self.image_size, epochs=self.epochs,
                    max_minutes=self.max_minutes, batch_size=self.batch_size, lr=self.lr, weight_decay=5e-4,
                    split=tuple(self.split), seed=self.seed, label_col=self.label_col, group_col=self.group_col,
                    test_dir=self.test_dir, limit_per_class=self.limit_per_class, faces=True, landmarks=self.landmarks, face_detector=self.face_detector,
                    # light: smaller crops of a tight face cut off the mouth or brows (on TFEID's clean faces the
                    # accuracy is within noise of the heavier earlier recipe: benchmarks/face_recipes.py)
                    augment=0.5, min_scale=0.8,
                    patience=max(15, self.epochs // 2),  # a 10% val split is noisy: do not stop on it early
                    **(fine_tuning() if self.pretrained else {}))

    @classmethod
    def split_settings(cls, recipe: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any], list[str]]:
        """A training-settings mapping (e.g. a tune search's best.yaml) as (study options, other settings, keys
        left out because the study decides them)."""
        own = {f.name for f in dataclasses.fields(cls)} - {"settings"}
        left_out = sorted(k for k in recipe if k in STUDY_OWNED or k in ("conditions", "checkpoints", "area"))
        options = {k: v for k, v in recipe.items() if k in own and k not in left_out}
        return options, {k: v for k, v in recipe.items() if k not in own and k not in STUDY_OWNED}, left_out

    def to_dict(self) -> dict[str, Any]:
        d = dataclasses.asdict(self)
        d["split"], d["conditions"], d["checkpoints"] = list(self.split), list(self.conditions), list(self.checkpoints)
        return d


@dataclass(frozen=True)
class StudyCell:
    """One train condition's checkpoint scored on one test condition, beside its validation scores."""

    train: str
    test: str
    checkpoint: str  # best or last
    images: int
    accuracy: float
    balanced_accuracy: float
    macro_f1: float
    accuracy_vs_clean: float  # relative to the same checkpoint's clean-test accuracy
    accuracy_vs_own: float  # relative to its accuracy on its own test (see relative_changes)
    macro_f1_vs_clean: float
    macro_f1_vs_own: float
    per_class_f1: dict[str, float]
    train_minutes: float
    epochs: int  # trained
    stopped_by: str
    checkpoint_epoch: int  # the epoch the checkpoint was saved after
    val_loss: float  # at that epoch
    val_accuracy: float
    best_val_loss: float  # the lowest of any epoch

    def to_json(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    def row(self) -> dict[str, Any]:
        d = {k: round(v, 4) if isinstance(v, float) else v for k, v in self.to_json().items() if k != "per_class_f1"}
        d["train_minutes"] = round(self.train_minutes, 2)
        return {**d, **{f"f1_{c}": round(v, 4) for c, v in self.per_class_f1.items()}}

    @classmethod
    def from_row(cls, row: dict[str, str]) -> StudyCell:
        parse = {"int": int, "float": float, "str": str}
        return cls(**{f.name: parse[f.type](row[f.name]) for f in dataclasses.fields(cls) if f.name in ROW_FIELDS},
                   per_class_f1={k[3:]: float(v) for k, v in row.items() if k.startswith("f1_")})


ROW_FIELDS = tuple(f.name for f in dataclasses.fields(StudyCell) if f.name != "per_class_f1")  # study.csv's columns


@dataclass
class StudyResult:
    out: Path
    cells: list[StudyCell]
    trained: list[str]  # train conditions trained by this call
    reused: list[str]  # trained by an earlier call, not trained again
    split: dict[str, int]  # faces per part
    skipped: list[tuple[str, str]] = field(default_factory=list)  # (file, why): unreadable, no face

    @property
    def table(self) -> Path:
        return self.out / "study.md"

    def cell(self, train: str, test: str, checkpoint: str = "best") -> StudyCell:
        return next(c for c in self.cells if (c.train, c.test, c.checkpoint) == (train, test, checkpoint))

    def to_json(self) -> dict[str, Any]:
        return {"out": str(self.out), "csv": str(self.out / "study.csv"), "table": str(self.table),
                "plot": str(self.out / "study.png"), "trained": self.trained, "reused": self.reused,
                "split": self.split, "skipped": [{"file": f, "why": w} for f, w in self.skipped],
                "cells": [c.to_json() for c in self.cells]}


def occlusion_study(cfg: StudyConfig, progress: bool | None = None) -> StudyResult:
    """Run (or finish) the study in `cfg.out`: one run per train condition, scored on every test condition."""
    from hardsight.data.image.prepare import prepare_image_data, print_image_summary
    from hardsight.faces.stage import FaceStage

    out = Path(cfg.out)
    _check_settings(out, cfg)
    base = cfg.train_config()
    stage = FaceStage.for_config(base, cache=out / "landmarks", write_cache=True)
    split_file = out / "split.json"
    saved = json.loads(split_file.read_text()) if split_file.is_file() else None
    data = prepare_image_data(base, saved, {"classes": saved["classes"]} if saved else None, stage)
    print_image_summary(data)
    if saved is None:
        split_file.write_text(json.dumps({**data.split_json(cfg.seed), "classes": data.classes}, indent=1) + "\n")
    versions = _conditions(data.items, cfg)
    _write_mixed_unique(data.items, cfg, out / "mixed-unique.json")
    _sample_figure(data.items["test"], versions, out / "samples.png")

    cells = {(c.train, c.test, c.checkpoint): c for c in _read_cells(out / "study.csv")}
    trained, reused = [], []
    for i, cond in enumerate(cfg.conditions, start=1):
        run_dir = out / "runs" / cond
        info = _finished(run_dir)
        if info is None:
            console.print(f"[bold]\\[{i}/{len(cfg.conditions)}] train {cond}[/bold]: "
                          f"{len(versions['train'][cond])} training faces")
            info = _train(cfg, cond, run_dir, data, versions, stage, progress)
            trained.append(cond)
        else:
            reused.append(cond)
        for ckpt in cfg.checkpoints:
            if all((cond, t, ckpt) in cells for t in TEST_CONDITIONS):
                continue
            scored = _score(run_dir, cond, ckpt, versions["test"], data.classes, info)
            cells.update({(cond, t, ckpt): c for t, c in scored.items()})
            _write_outputs(out, cfg, list(cells.values()))
    wanted = [(c, t, k) for c in cfg.conditions for k in cfg.checkpoints for t in TEST_CONDITIONS]
    result = StudyResult(out, [cells[key] for key in wanted], trained, reused,
                         {s: len(v) for s, v in data.items.items()}, data.skipped.unreadable + data.skipped.bad_label)
    _write_outputs(out, cfg, list(cells.values()))
    return result


def _check_settings(out: Path, cfg: StudyConfig) -> None:
    """A rerun finishes the same study; a different one needs a new folder.

    study.json keeps the study's settings and the training settings they resolved to (`training`), so a rerun by
    a version whose recipe changed (augmentation, face crop, ...) cannot mix two recipes in one table.
    """
    path = out / "study.json"
    now = json.loads(json.dumps({**cfg.to_dict(), "training": _training(cfg)}))  # tuples as JSON lists
    if path.is_file():
        old = json.loads(path.read_text())
        if "training" not in old:
            raise RunError(f"{out}: holds a study whose training settings were not recorded by the version that "
                           "started it, so a rerun cannot be checked against them; choose a new --out")
        was, new = ({**{k: v for k, v in s.items() if k not in (*BUDGET_KEYS, "training")},
                     **{f"training.{k}": v for k, v in s["training"].items()}} for s in (old, now))
        refuse_other_settings(out, was, new, "a study", "--out", RunError)
    elif out.exists() and any(out.iterdir()):
        raise RunError(f"{out}: exists and holds no study (no study.json); choose a new --out")
    out.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(now, indent=1) + "\n")


def _training(cfg: StudyConfig) -> dict[str, Any]:
    """Every condition's training settings but the budget and the run folder (which may change between reruns)."""
    return {k: v for k, v in cfg.train_config().to_dict().items() if k not in ("out", "max_minutes", "cache")}


def _data_root(cfg: StudyConfig) -> Path:
    return Path(cfg.data) if Path(cfg.data).is_dir() else Path(cfg.data).parent


def _name(item: ImageItem, root: Path) -> str:
    """The face's file as the study names it: relative to the data folder."""
    return str(item.path.relative_to(root) if root in item.path.parents else item.path)


def _occluded(item: ImageItem, cfg: StudyConfig, root: Path) -> ImageItem:
    """The same face with the occluder drawn on its aligned crop whenever it is read (seeded by file, for a random
    patch): the picture itself is shared with the clean version, never held twice."""
    seed = zlib.crc32(f"{cfg.seed}/{_name(item, root)}".encode())
    return dataclasses.replace(item, paths=list(item.paths), labels=list(item.labels),
                               occlusion=Occlusion(cfg.occluder, seed, cfg.area))


def _half(items: list[ImageItem], seed: int) -> set[int]:
    """Indices of half of the items, half of each class (odd counts round up and down in turn)."""
    by_class: dict[str, list[int]] = {}
    for i, it in enumerate(items):
        by_class.setdefault(it.labels[0], []).append(i)
    rng, chosen, up = random.Random(seed), set(), 0
    for cls in sorted(by_class):
        idx = by_class[cls]
        rng.shuffle(idx)
        k = (len(idx) + up) // 2
        up ^= len(idx) % 2
        chosen.update(idx[:k])
    return chosen


def _conditions(parts: dict[str, list[ImageItem]], cfg: StudyConfig) -> dict[str, dict[str, list[ImageItem]]]:
    """{part: {condition: items}} for each split part; every condition is one way of drawing a part (train, val or
    test) from its clean and occluded faces."""
    root = _data_root(cfg)
    out: dict[str, dict[str, list[ImageItem]]] = {}
    for part, items in parts.items():
        occ = [_occluded(it, cfg, root) for it in items]
        half = _half(items, cfg.seed)
        out[part] = {"clean": items, "occluded": occ, "mixed": items + occ,
                     "mixed-unique": [occ[i] if i in half else it for i, it in enumerate(items)]}
    return out


def _write_mixed_unique(parts: dict[str, list[ImageItem]], cfg: StudyConfig, path: Path) -> None:
    """Which faces of each part mixed-unique shows occluded and which clean, so its seeded half can be checked."""
    root = _data_root(cfg)
    record = {}
    for part, items in parts.items():
        half = _half(items, cfg.seed)
        record[part] = {"occluded": [_name(it, root) for i, it in enumerate(items) if i in half],
                        "clean": [_name(it, root) for i, it in enumerate(items) if i not in half]}
    path.write_text(json.dumps(record, indent=1) + "\n")


def _train(cfg: StudyConfig, cond: str, run_dir: Path, data, versions, stage, progress) -> dict[str, Any]:
    """Train (or finish training) the run of one condition; validation follows the training condition."""
    import hardsight

    resume = (run_dir / "config.yaml").is_file() and any((run_dir / "checkpoints").glob("*.ckpt"))
    if run_dir.exists() and not resume:
        shutil.rmtree(run_dir)  # a start that never finished an epoch; the folder is the study's own
    prepared = dataclasses.replace(data, items={"train": versions["train"][cond], "val": versions["val"][cond],
                                                "test": versions["test"]["clean"]})
    result = hardsight.train(cfg.train_config(run_dir), resume=resume, progress=progress, preprocess=stage,
                             prepared=prepared)
    info = {"train_minutes": result.minutes, "epochs": result.epochs, "stopped_by": result.stopped_by}
    _info_file(run_dir).write_text(json.dumps(info) + "\n")
    return info


def _info_file(run_dir: Path) -> Path:
    return run_dir.parent / f"{run_dir.name}.json"


def _finished(run_dir: Path) -> dict[str, Any] | None:
    """How a finished run trained (minutes, epochs, stopped by), or None while it still needs training."""
    info_file = _info_file(run_dir)
    if (run_dir / "report.md").is_file() and info_file.is_file():
        return json.loads(info_file.read_text())
    return None


def _score(run_dir: Path, cond: str, checkpoint: str, tests: dict[str, list[ImageItem]], classes: list[str],
           info: dict[str, Any]) -> dict[str, StudyCell]:
    """One checkpoint of a run scored on every test condition."""
    import numpy as np

    from hardsight.engine.evaluator import image_scores
    from hardsight.engine.image_predictor import ImagePredictor
    from hardsight.engine.metrics import classification_metrics

    predictor = ImagePredictor(run_dir, checkpoint=checkpoint)
    if predictor.classes != classes:
        raise RunError(f"{run_dir}: classes {predictor.classes} differ from the study's {classes}")
    metrics, scored = {}, {}
    for t in ("clean", "occluded", "mixed-unique"):
        metrics[t], *scored[t] = image_scores(predictor, tests[t], False, None)
    probs = np.concatenate([scored["clean"][0], scored["occluded"][0]])
    truth = scored["clean"][1] + scored["occluded"][1]
    metrics["mixed"] = classification_metrics(truth, probs, classes, False, None)  # both versions of every test face
    accuracy = relative_changes({(cond, t): m.accuracy for t, m in metrics.items()})
    macro_f1 = relative_changes({(cond, t): m.macro_f1 for t, m in metrics.items()})
    val = _validation(run_dir, checkpoint)
    return {t: StudyCell(cond, t, checkpoint, m.n, m.accuracy, m.balanced_accuracy, m.macro_f1,
                         *accuracy[(cond, t)], *macro_f1[(cond, t)],
                         {c: m.per_class.get(c, {}).get("f1", 0.0) for c in classes}, info["train_minutes"],
                         info["epochs"], info["stopped_by"], **val) for t, m in metrics.items()}


# each training condition's own test set, as the study compares: its mixed model (trained on both versions of every
# face) against the study's mixed test set, which holds each face once, half of them occluded
OWN_TEST = {"clean": "clean", "occluded": "occluded", "mixed": "mixed-unique", "mixed-unique": "mixed-unique"}


def relative_changes(table: dict[tuple[str, str], float]) -> dict[tuple[str, str], tuple[float, float]]:
    """(vs clean, vs own) for each (train, test) score: its relative change against the same model's clean-test
    score, and against its own test's (OWN_TEST: the study's test set of its training condition), the reference of
    the study's tables. 0 against a reference of 0; NaN where the reference test set was not scored."""
    return {(train, test): (_change(v, table.get((train, "clean"))), _change(v, table.get((train, OWN_TEST[train]))))
            for (train, test), v in table.items()}


def _change(value: float, reference: float | None) -> float:
    if reference is None:
        return float("nan")
    return (value - reference) / reference if reference else 0.0


def _validation(run_dir: Path, checkpoint: str) -> dict[str, Any]:
    """The checkpoint's epoch and validation scores from metrics.csv (best: the best epoch by the run's `monitor`,
    as the checkpoint callback chose it; last: the last epoch), and the lowest validation loss of any epoch."""
    from hardsight.runs.folder import RunFolder
    from hardsight.tasks import ImageClassifier

    run = RunFolder(run_dir)
    metric, mode = ImageClassifier.monitored(run.load_config().monitor)
    path = run.metrics
    # a resumed run may have logged an epoch twice: its later row is the one its checkpoints saw
    rows = list({r["epoch"]: r for r in csv.DictReader(path.open())}.values()) if path.is_file() else []
    if not rows:
        raise RunError(f"{path}: no epochs recorded, so the checkpoint's validation scores are unknown")
    if checkpoint == "best":
        row = (min if mode == "min" else max)(rows, key=lambda r: float(r[metric]))
    else:
        row = max(rows, key=lambda r: int(r["epoch"]))
    return {"checkpoint_epoch": int(row["epoch"]), "val_loss": float(row["val/loss"]),
            "val_accuracy": float(row["val/accuracy"]), "best_val_loss": min(float(r["val/loss"]) for r in rows)}


def _read_cells(path: Path) -> list[StudyCell]:
    """The cells of study.csv; rows written by an older version (fewer columns) are left out to be scored again."""
    if not path.is_file():
        return []
    with path.open(newline="", encoding="utf-8") as f:
        return [StudyCell.from_row(r) for r in csv.DictReader(f) if set(ROW_FIELDS) <= set(r)]


def _write_outputs(out: Path, cfg: StudyConfig, cells: list[StudyCell]) -> None:
    """study.csv, study.md and study.png from every finished cell, in condition and checkpoint order."""
    cells = sorted(cells, key=lambda c: (TRAIN_CONDITIONS.index(c.train), CHECKPOINTS.index(c.checkpoint),
                                         TEST_CONDITIONS.index(c.test)))
    if not cells:
        return
    rows = [c.row() for c in cells]
    with atomic_write(out / "study.csv") as tmp, tmp.open("w", newline="", encoding="utf-8") as f:
        writer = csv.DictWriter(f, list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    (out / "study.md").write_text(study_markdown(cfg, cells))
    _plot([c for c in cells if c.checkpoint == cfg.checkpoints[0]], cfg.checkpoints[0], out / "study.png")


TEST_MEANING = ("Test conditions: clean; occluded; mixed-unique: each test face once, a seeded half of them occluded "
                "(half of each class), the study's mixed test set; mixed: both versions of every test face (each "
                "face twice). Changes are relative: *vs clean test* to the same model and checkpoint on clean test, "
                "*vs own test* to it on the test condition drawn as its training set was (the study's reference).")


def study_markdown(cfg: StudyConfig, cells: list[StudyCell]) -> str:
    """A table per train condition: its checkpoints' epochs and validation scores, and accuracy and macro-F1 per
    test condition with their changes against clean test and against its own test."""
    trains = list(dict.fromkeys(c.train for c in cells))
    by = {(c.train, c.test, c.checkpoint): c for c in cells}
    lines = [f"# Occlusion study: {cfg.occluder}", "",
             f"Data `{cfg.data}`" + (f", split by `{cfg.group_col}`" if cfg.group_col else "")
             + (f", at most {cfg.limit_per_class} faces per class" if cfg.limit_per_class else "")
             + (f", test faces from `{cfg.test_dir}`" if cfg.test_dir else "")
             + f", seed {cfg.seed}; {cfg.model} at {cfg.image_size} px, faces cropped and aligned by landmarks.", "",
             TEST_MEANING, "",
             "| train | checkpoint | " + " | ".join(TEST_CONDITIONS) + " |",
             "|---|---|" + "---|" * len(TEST_CONDITIONS)]
    for t, k in dict.fromkeys((c.train, c.checkpoint) for c in cells):
        lines.append(f"| {t} | {k} | " + " | ".join(f"{by[(t, x, k)].accuracy:.1%}" if (t, x, k) in by else ""
                                                      for x in TEST_CONDITIONS) + " |")
    for t in trains:
        mine = [c for c in cells if c.train == t]
        info, ckpts = mine[0], list(dict.fromkeys(c.checkpoint for c in mine))
        lines += ["", f"## Trained on {t} faces", "",
                  f"Epochs: {info.epochs}, {info.train_minutes:.1f} min (stopped by {info.stopped_by}); lowest "
                  f"validation loss {info.best_val_loss:.4f}; own test: {OWN_TEST[t]}; run folder `runs/{t}/`.", "",
                  "| checkpoint | epoch | val loss | val accuracy |", "|---|---|---|---|"]
        for k in ckpts:
            c = next(c for c in mine if c.checkpoint == k)
            lines.append(f"| {k} | {c.checkpoint_epoch} | {c.val_loss:.4f} | {c.val_accuracy:.2%} |")
        lines += ["", "| test | checkpoint | images | accuracy | vs clean test | vs own test | macro-F1 "
                  "| vs clean test | vs own test |", "|---|---|---|---|---|---|---|---|---|"]
        lines += [f"| {c.test} | {c.checkpoint} | {c.images} | {c.accuracy:.2%} | {c.accuracy_vs_clean:+.1%} | "
                  f"{c.accuracy_vs_own:+.1%} | {c.macro_f1:.3f} | {c.macro_f1_vs_clean:+.1%} | "
                  f"{c.macro_f1_vs_own:+.1%} |" for c in mine]
        heads = [c.test if len(ckpts) == 1 else f"{c.test} ({c.checkpoint})" for c in mine]
        lines += ["", "| class F1 | " + " | ".join(heads) + " |", "|---|" + "---|" * len(mine)]
        lines += [f"| {k} | " + " | ".join(f"{c.per_class_f1.get(k, 0):.3f}" for c in mine) + " |"
                  for k in info.per_class_f1]
    lines += ["", f"![accuracy per train and test condition, {cfg.checkpoints[0]} checkpoint](study.png)", "",
              "![clean and occluded test faces](samples.png)", ""]
    return "\n".join(lines)


def _plot(cells: list[StudyCell], checkpoint: str, out: Path) -> Path:
    """Accuracy per train condition, a bar per test condition, over a dashed chance line (1 / classes)."""
    import numpy as np

    from hardsight.engine.plots import save_figure, plt

    trains = list(dict.fromkeys(c.train for c in cells))
    by = {(c.train, c.test): c.accuracy for c in cells}
    fig, ax = plt.subplots(figsize=(8, 3.8))
    x, width = np.arange(len(trains)), 0.8 / len(TEST_CONDITIONS)
    for j, t in enumerate(TEST_CONDITIONS):
        vals = [by.get((tr, t), np.nan) for tr in trains]
        bars = ax.bar(x + (j - (len(TEST_CONDITIONS) - 1) / 2) * width, vals, width,
                      label=f"test {t}" + (" (each face twice)" if t == "mixed" else ""))
        ax.bar_label(bars, fmt="%.2f", fontsize=7)
    classes = len(cells[0].per_class_f1)
    ax.axhline(1 / classes, color="grey", linestyle="--", linewidth=1, label=f"chance (1/{classes})")
    ax.set_xticks(x, [f"train {t}" for t in trains])
    ax.set(ylabel="accuracy", ylim=(0, 1.2), yticks=np.linspace(0, 1, 6),
           title=f"occlusion study ({checkpoint} checkpoint)")
    ax.legend(fontsize=8, loc="upper center", ncols=len(TEST_CONDITIONS) + 1)
    ax.grid(axis="y", alpha=0.3)
    return save_figure(fig, out)


def _sample_figure(test: list[ImageItem], versions, out: Path, n: int = 6) -> None:
    """A few test faces as the networks see them, clean above occluded."""
    from hardsight.engine.plots import image_grid

    if out.is_file() or not test:
        return
    occ = versions["test"]["occluded"]
    picks = list(range(0, len(test), max(1, len(test) // n)))[:n]
    images = [x.picture().permute(1, 2, 0).numpy() for x in [test[i] for i in picks] + [occ[i] for i in picks]]
    titles = [test[i].labels[0] for i in picks] + ["occluded"] * len(picks)
    image_grid(images, titles, out, cols=len(picks))


def print_study(result: StudyResult) -> None:
    """Accuracy (and its change against clean test and against its own test) per train x test condition and
    checkpoint, as a rich table."""
    from rich.table import Table

    table = Table("train", "checkpoint", *TEST_CONDITIONS,
                  title=f"occlusion study: accuracy (change vs clean test / vs own test), {result.out}")
    for t, k in dict.fromkeys((c.train, c.checkpoint) for c in result.cells):
        table.add_row(t, k, *[f"{c.accuracy:.1%} ({c.accuracy_vs_clean:+.0%} / {c.accuracy_vs_own:+.0%})"
                              for c in [result.cell(t, x, k) for x in TEST_CONDITIONS]])
    console.print(table)
    console.print("mixed-unique: each test face once, half occluded; mixed: both versions of every test face")
    minutes = {c.train: c.train_minutes for c in result.cells}
    console.print("training minutes: " + ", ".join(f"{k} {v:.1f}" for k, v in minutes.items())
                  + f"; faces {result.split}; reused {result.reused or 'none'}")
    if result.skipped:
        console.print(f"[yellow]{len(result.skipped)} images skipped[/yellow] (no face or unreadable), e.g. "
                      + "; ".join(f"{f}: {w}" for f, w in result.skipped[:3]))
    console.print(f"table: {result.table}")
