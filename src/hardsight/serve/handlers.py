"""Loaded models and the task handlers behind the routes.

A handler knows how to load a run folder of its task and answer a request with decoded images. Adding a
task means one handler class and one row in HANDLERS; ROUTES says which task each route serves.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Protocol

from PIL import Image

from hardsight.errors import ConfigError, RunError
from hardsight.runs.folder import RunFolder
from hardsight.serve.batching import Batcher
from hardsight.serve.errors import ApiError
from hardsight.serve.settings import ServeSettings

ROUTES: dict[str, str] = {"read": "text", "classify": "image", "solve": "image"}  # route -> task of its models
MAX_GRID = 8  # most rows and columns of a /v1/solve grid: challenges are 3x3 and 4x4, and each cell is a model run


@dataclass
class LoadedModel:
    """A served run: `prepare(image, route)` turns one decoded image into what the route gives the model (on a
    request thread), `batcher` runs the model on prepared inputs of many requests at once."""

    name: str
    task: str
    run: Path
    engine: str
    prepare: Callable[[Image.Image, str], Any]
    batcher: Batcher
    handler: TaskHandler
    info: dict[str, Any] = field(default_factory=dict)  # what GET /v1/models shows about it
    predictor: Any = None  # the loaded Predictor (solve reads the classes and thresholds from it)

    def describe(self) -> dict[str, Any]:
        return {"name": self.name, "task": self.task, "route": f"/v1/{route_of(self.task)}", "engine": self.engine,
                "run": str(self.run), **self.info}


class TaskHandler(Protocol):
    task: str

    def load(self, run: RunFolder, name: str, settings: ServeSettings) -> LoadedModel: ...

    def check(self, route: str, fields: dict[str, Any]) -> None:
        """Refuse bad request fields before any image is decoded."""

    async def answer(self, model: LoadedModel, route: str, prepared: list[Any], names: list[str],
                     fields: dict[str, Any]) -> list[dict[str, Any]]: ...

    def contract(self, model: LoadedModel) -> dict[str, Any]:
        """The model card's input contract: what an image must be made into before the model reads it."""

    def card(self, model: LoadedModel, metrics: dict[str, Any]) -> dict[str, Any]:
        """The model card's `metrics` (rates with 95% intervals), `confusions` and `per_class`, from the saved test
        metrics (test_metrics.json); the card lists the file as unreadable when this raises."""


class TextHandler:
    """Readers: one `{file, text, confidence}` per image."""

    task = "text"

    def check(self, route: str, fields: dict[str, Any]) -> None:
        pass

    def load(self, run: RunFolder, name: str, settings: ServeSettings) -> LoadedModel:
        from hardsight.engine.predictor import Predictor
        from hardsight.transforms import SmallerThanCrop

        predictor = Predictor(run.path, batch_size=settings.max_batch, threads=settings.model_threads,
                              engine=settings.engine, checkpoint=settings.checkpoint)
        spec = predictor.reader.spec

        def read(items: list[tuple[str, Any]]):
            return predictor.read_prepared([tensor for _, tensor in items], [name for name, _ in items])

        def prepare(image: Image.Image, route: str):
            try:
                return predictor.preprocess(image)
            except SmallerThanCrop as e:  # the run reads a fixed box of its images (--crop)
                raise ApiError(422, "image too small", str(e)) from None

        info = {"architecture": predictor.config.model, "charset": predictor.reader.decode.charset,
                "max_length": predictor.reader.max_length,
                "input": {"height": spec.height, "width": spec.width, "channels": spec.channels,
                          "keep_aspect": spec.keep_aspect, "crop": spec.crop}}
        return LoadedModel(name, self.task, run.path, predictor.engine, prepare,
                           Batcher(read, settings.max_batch, name), self, info)

    async def answer(self, model: LoadedModel, route: str, prepared: list[Any], names: list[str],
                     fields: dict[str, Any]) -> list[dict[str, Any]]:
        return [p.to_json() for p in await model.batcher.submit(list(zip(names, prepared)))]

    def contract(self, model: LoadedModel) -> dict[str, Any]:
        spec = model.info["input"]
        return {**{k: spec[k] for k in ("height", "width", "channels", "crop", "keep_aspect")},
                "charset": model.info["charset"], "max_length": model.info["max_length"]}

    def card(self, model: LoadedModel, metrics: dict[str, Any]) -> dict[str, Any]:
        from hardsight.serve.card import pairs, rate, score

        # char accuracy and CER count characters, which are not independent draws within an image: no interval
        return {"metrics": [rate("exact_match", "exact match", metrics["exact_match"], metrics["n"]),
                            score("char_accuracy", "character accuracy (per position)", metrics["char_accuracy"]),
                            score("cer", "character error rate", metrics["cer"])],
                "confusions": pairs(metrics.get("confusions") or [])}


class ImageHandler:
    """Classifiers: `/v1/classify` gives `{file, label, probabilities, top_k}` per image; `/v1/solve` takes
    grid images plus a `target` (and optional `grid`, `threshold`) and gives the chosen cells."""

    task = "image"

    def load(self, run: RunFolder, name: str, settings: ServeSettings) -> LoadedModel:
        from hardsight.engine.image_predictor import ImagePredictor

        predictor = ImagePredictor(run.path, batch_size=settings.max_batch, threads=settings.model_threads,
                                   engine=settings.engine, tta=settings.tta, checkpoint=settings.checkpoint)

        def classify(items: list[tuple[str, Any]]):  # (name, what predictor.prepare gave)
            return predictor.predict_prepared([n for n, _ in items], [p for _, p in items])

        def prepare(image: Image.Image, route: str):  # solve splits the grid itself: it takes the whole image
            return image if route == "solve" else predictor.prepare(image)

        info = {"architecture": predictor.config.model, "classes": predictor.classes,
                "multi_label": predictor.multi_label, "thresholds": predictor.thresholds, "tta": predictor.tta}
        return LoadedModel(name, self.task, run.path, predictor.engine, prepare,
                           Batcher(classify, settings.max_batch, name), self, info, predictor)

    def check(self, route: str, fields: dict[str, Any]) -> None:
        if route == "solve":
            solve_args(fields)

    async def answer(self, model: LoadedModel, route: str, prepared: list[Any], names: list[str],
                     fields: dict[str, Any]) -> list[dict[str, Any]]:
        if route != "solve":
            return [p.to_json() for p in await model.batcher.submit(list(zip(names, prepared)))]
        import asyncio

        from hardsight.errors import HardsightError, UnknownTargetError
        from hardsight.grid import solve

        target, grid, threshold = solve_args(fields)
        cells = BatchedCells(model, asyncio.get_running_loop())
        out = []
        for name, image in zip(names, prepared):
            try:
                sol = await asyncio.to_thread(solve, cells, image, target, grid, threshold)
            except UnknownTargetError as e:
                raise ApiError(400, "unknown target class", str(e)) from None
            except HardsightError as e:  # e.g. an image too small to split into the grid
                raise ApiError(400, "bad grid request", str(e)) from None
            out.append({"file": name, **sol.to_json()})
        return out

    def contract(self, model: LoadedModel) -> dict[str, Any]:
        p = model.predictor
        return {"size": p.size, "channels": 3, "classes": p.classes, "multi_label": p.multi_label}

    def card(self, model: LoadedModel, metrics: dict[str, Any]) -> dict[str, Any]:
        from hardsight.serve.card import rate, score, top_pairs

        n, multi = metrics["n"], model.predictor.multi_label
        rates = [rate("accuracy", "exact set match" if multi else "accuracy", metrics["accuracy"], n),
                 score("balanced_accuracy", "balanced accuracy", metrics["balanced_accuracy"]),
                 score("macro_f1", "macro-F1", metrics["macro_f1"], percent=False)]
        rates += [rate(k, f"{k} accuracy", v, n) for k, v in (metrics.get("top_k") or {}).items()]
        if metrics.get("mean_average_precision") is not None:
            rates.append(score("mean_average_precision", "mAP", metrics["mean_average_precision"], percent=False))
        per_class = []
        for name, pc in metrics["per_class"].items():
            recall = rate(name, name, pc["recall"], pc["support"])  # recall is a rate over the class's test images
            per_class.append({"name": name, "precision": score("p", "", pc["precision"])["value"],
                              "recall": recall["value"], "low": recall["low"], "high": recall["high"],
                              "f1": score("f", "", pc["f1"])["value"], "support": recall["n"]})
        return {"metrics": rates, "per_class": per_class,
                "confusions": top_pairs(metrics.get("confusion") or [], model.predictor.classes)}


def solve_args(fields: dict[str, Any]) -> tuple[str, str | tuple[int, int], float | None]:
    """(target, grid, threshold) of a /v1/solve request, or a 400 saying which field is wrong."""
    target, grid, threshold = fields.get("target"), fields.get("grid") or "auto", fields.get("threshold")
    if not isinstance(target, str) or not target.strip():
        raise ApiError(400, "missing target", "/v1/solve needs a `target` field naming the class, e.g. buses")
    if not isinstance(grid, str) or len(grid) > 32:  # also keeps int() off thousand-digit numbers
        raise ApiError(400, "bad grid request", f"grid {_shown(grid)}: expected auto or ROWSxCOLS, like 3x3")
    from hardsight.errors import HardsightError
    from hardsight.grid import parse_grid

    try:
        size = parse_grid(grid)
    except HardsightError as e:
        raise ApiError(400, "bad grid request", str(e)) from None
    if size and max(size) > MAX_GRID:
        raise ApiError(400, "grid too large", f"grid {grid!r}: this server solves grids of at most "
                                              f"{MAX_GRID}x{MAX_GRID} cells (challenges are 3x3 or 4x4)")
    if threshold in (None, ""):
        return target.strip(), size or "auto", None
    try:
        value = float(threshold) if isinstance(threshold, (str, int, float)) else None
    except ValueError:
        value = None
    if value is None or not 0.0 <= value <= 1.0:  # nan fails the comparison too
        raise ApiError(400, "bad threshold", f"threshold {_shown(threshold)}: expected a probability "
                                             "between 0 and 1")
    return target.strip(), size or "auto", value


def _shown(value: Any) -> str:
    """A field for an error message: short, and never the repr of a nested JSON value."""
    if isinstance(value, (str, int, float)):
        return repr(value[:20] if isinstance(value, str) else value)
    return f"of JSON type {type(value).__name__}"


class BatchedCells:
    """What `grid.solve` asks of a classifier, for a solve running on a request thread: it prepares the cells there
    and sends them through the model's batcher, so solves share batches and the model's thread with classify."""

    def __init__(self, model: LoadedModel, loop):
        self.classes, self.thresholds = model.predictor.classes, model.predictor.thresholds
        self.grid_thresholds = model.predictor.grid_thresholds
        self._model, self._loop = model, loop

    def predict_images(self, images: list[Image.Image], names: list[str] | None = None) -> list[Any]:
        import asyncio

        names = names or [f"cell-{i}" for i in range(len(images))]
        prepared = [self._model.prepare(im, "classify") for im in images]
        job = self._model.batcher.submit(list(zip(names, prepared)))
        return asyncio.run_coroutine_threadsafe(job, self._loop).result()


HANDLERS: dict[str, TaskHandler] = {"text": TextHandler(), "image": ImageHandler()}


def route_of(task: str) -> str:
    return next(route for route, t in ROUTES.items() if t == task)


def check_runs(settings: ServeSettings) -> None:
    """Fail before serving, with the folder named, when a run cannot be loaded as asked."""
    tasks = [RunFolder.open(path).load_config().task for path in settings.runs]
    if settings.tta and "image" not in tasks:  # --tta applies to the image models among the runs
        raise ConfigError("--tta (horizontal-flip test-time augmentation) is for image classifiers; "
                          "none of the runs served is one")
    for path in settings.runs:
        run = RunFolder.open(path)
        task = run.load_config().task
        if task not in HANDLERS:
            raise ConfigError(f"{run.path}: a {task!r} run cannot be served by this version "
                              f"(it serves: {', '.join(HANDLERS)})")
        if settings.engine == "onnx" and not run.onnx.is_file():
            raise RunError(f"{run.path}: no model.onnx for --engine onnx; write it with "
                           f"`hardsight export {run.path}`")
        if settings.checkpoint != "best":  # one named must exist in every run (best may be model.onnx alone)
            run.checkpoint(settings.checkpoint)


def load_models(settings: ServeSettings) -> dict[str, LoadedModel]:
    """Every run folder of the settings (see check_runs), loaded once, named after its folder (made unique)."""
    models: dict[str, LoadedModel] = {}
    for path in settings.runs:
        run = RunFolder.open(path)
        name = unique_name(Path(path), models)  # as given: a shipped run is served as `general`, not its copy
        models[name] = HANDLERS[run.load_config().task].load(run, name, settings)
    return models


def unique_name(path: Path, taken: dict[str, Any]) -> str:
    name = path.resolve().name
    if name in taken:
        name = f"{path.resolve().parent.name}-{name}"
    base, i = name, 2
    while name in taken:
        name, i = f"{base}-{i}", i + 1
    return name


def pick_model(models: dict[str, LoadedModel], route: str, requested: str | None) -> LoadedModel:
    """The model a request asked for (or the first of the route's task), or a 4xx that says what is loaded."""
    task = ROUTES[route]
    loaded = ", ".join(f"{m.name} ({m.task})" for m in models.values()) or "none"
    if requested:
        if requested not in models:
            raise ApiError(404, "unknown model", f"no model named {requested!r}; loaded: {loaded}")
        model = models[requested]
        if model.task != task:
            raise ApiError(400, "wrong task for the model",
                           f"{requested!r} is a {model.task} model; send it to /v1/{route_of(model.task)}, "
                           f"/v1/{route} needs a {task} model")
        return model
    for model in models.values():
        if model.task == task:
            return model
    raise ApiError(404, f"no {route} model loaded",
                   f"/v1/{route} needs a run folder of the {task!r} task; start `hardsight serve` with one "
                   f"(loaded: {loaded})")
