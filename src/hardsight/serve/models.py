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
from hardsight.runs import RunFolder
from hardsight.serve.batching import Batcher
from hardsight.serve.errors import ApiError
from hardsight.serve.settings import ServeSettings

ROUTES: dict[str, str] = {"read": "text", "classify": "image", "solve": "image"}  # route -> task of its models


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

    async def answer(self, model: LoadedModel, route: str, prepared: list[Any], names: list[str],
                     fields: dict[str, Any]) -> list[dict[str, Any]]: ...


class TextHandler:
    """Readers: one `{file, text, confidence}` per image."""

    task = "text"

    def load(self, run: RunFolder, name: str, settings: ServeSettings) -> LoadedModel:
        from hardsight.predict import Predictor

        predictor = Predictor(run.path, batch_size=settings.max_batch, threads=settings.model_threads,
                              engine=settings.engine)
        spec = predictor.reader.spec

        def read(items: list[tuple[str, Any]]):
            return predictor.read_prepared([tensor for _, tensor in items], [name for name, _ in items])

        info = {"architecture": predictor.config.model, "charset": predictor.reader.decode.charset,
                "max_length": predictor.reader.max_length,
                "input": {"height": spec.height, "width": spec.width, "channels": spec.channels,
                          "keep_aspect": spec.keep_aspect}}
        return LoadedModel(name, self.task, run.path, predictor.engine, lambda im, route: predictor.preprocess(im),
                           Batcher(read, settings.max_batch, name), self, info)

    async def answer(self, model: LoadedModel, route: str, prepared: list[Any], names: list[str],
                     fields: dict[str, Any]) -> list[dict[str, Any]]:
        return [p.to_json() for p in await model.batcher.submit(list(zip(names, prepared)))]


class ImageHandler:
    """Classifiers: `/v1/classify` gives `{file, label, probabilities, top_k}` per image; `/v1/solve` takes
    grid images plus a `target` (and optional `grid`, `threshold`) and gives the chosen cells."""

    task = "image"

    def load(self, run: RunFolder, name: str, settings: ServeSettings) -> LoadedModel:
        from hardsight.predict_image import ImagePredictor

        predictor = ImagePredictor(run.path, batch_size=settings.max_batch, threads=settings.model_threads,
                                   engine=settings.engine)

        def classify(items: list[tuple[str, Any]]):  # (name, what predictor.prepare gave)
            return predictor.predict_prepared([n for n, _ in items], [p for _, p in items])

        def prepare(image: Image.Image, route: str):  # solve splits the grid itself: it takes the whole image
            return image if route == "solve" else predictor.prepare(image)

        info = {"architecture": predictor.config.model, "classes": predictor.classes,
                "multi_label": predictor.multi_label, "thresholds": predictor.thresholds}
        return LoadedModel(name, self.task, run.path, predictor.engine, prepare,
                           Batcher(classify, settings.max_batch, name), self, info, predictor)

    async def answer(self, model: LoadedModel, route: str, prepared: list[Any], names: list[str],
                     fields: dict[str, Any]) -> list[dict[str, Any]]:
        if route != "solve":
            return [p.to_json() for p in await model.batcher.submit(list(zip(names, prepared)))]
        if not str(fields.get("target") or "").strip():
            raise ApiError(400, "missing target", "/v1/solve needs a `target` field naming the class, e.g. buses")
        import asyncio

        from hardsight.errors import HardsightError
        from hardsight.grid import solve

        cells = BatchedCells(model, asyncio.get_running_loop())
        try:
            threshold = float(fields["threshold"]) if fields.get("threshold") not in (None, "") else None
        except ValueError:
            raise ApiError(400, "bad threshold", f"threshold {fields['threshold']!r} is not a number") from None
        out = []
        for name, image in zip(names, prepared):
            try:
                sol = await asyncio.to_thread(solve, cells, image, str(fields["target"]),
                                              str(fields.get("grid") or "auto"), threshold)
            except HardsightError as e:
                raise ApiError(400, "unknown target class" if "target" in str(e) else "bad grid request",
                               str(e)) from None
            out.append({"file": name, **sol.to_json()})
        return out


class BatchedCells:
    """What `grid.solve` asks of a classifier, for a solve running on a request thread: it prepares the cells there
    and sends them through the model's batcher, so solves share batches and the model's thread with classify."""

    def __init__(self, model: LoadedModel, loop):
        self.classes, self.thresholds = model.predictor.classes, model.predictor.thresholds
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
    for path in settings.runs:
        run = RunFolder.open(path)
        task = run.load_config().task
        if task not in HANDLERS:
            raise ConfigError(f"{run.path}: a {task!r} run cannot be served by this version "
                              f"(it serves: {', '.join(HANDLERS)})")
        if settings.engine == "onnx" and not run.onnx.is_file():
            raise RunError(f"{run.path}: no model.onnx for --engine onnx; write it with "
                           f"`hardsight export {run.path}`")


def load_models(settings: ServeSettings) -> dict[str, LoadedModel]:
    """Every run folder of the settings (see check_runs), loaded once, named after its folder (made unique)."""
    models: dict[str, LoadedModel] = {}
    for path in settings.runs:
        run = RunFolder.open(path)
        name = unique_name(run.path, models)
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
