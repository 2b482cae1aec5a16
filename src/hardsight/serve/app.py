"""The FastAPI app: routes, limits, JSON errors, and models loaded once in the lifespan."""

from __future__ import annotations

import asyncio
import copy
import gc
import os
import time
from concurrent.futures import ThreadPoolExecutor
from contextlib import asynccontextmanager
from dataclasses import replace
from http import HTTPStatus
from importlib.resources import files
from typing import TYPE_CHECKING, Any

from fastapi import FastAPI, Request, Security
from fastapi.concurrency import run_in_threadpool
from fastapi.encoders import jsonable_encoder
from fastapi.exceptions import RequestValidationError
from fastapi.openapi.docs import get_redoc_html, get_swagger_ui_html
from fastapi.responses import HTMLResponse, JSONResponse
from fastapi.security import APIKeyHeader
from fastapi.staticfiles import StaticFiles
from starlette.exceptions import HTTPException
from starlette.requests import ClientDisconnect

from hardsight import __version__
from hardsight.console import console
from hardsight.serve.errors import ApiError
from hardsight.serve.guards import (DOCS_ASSETS, ApiKeyCheck, BodyLimit, HostCheck, InternalErrors,
                                    header_timeout_protocol, is_loopback, served_name)
from hardsight.serve.handlers import HANDLERS, ROUTES, LoadedModel, check_runs, load_models, pick_model
from hardsight.serve.schemas import (ERRORS, ClassifyResponse, Health, ModelCard, ModelsResponse, ReadResponse,
                                     SolveResponse, image_request_body)
from hardsight.serve.settings import ServeSettings
from hardsight.serve.uploads import Upload, decode_image, read_upload

if TYPE_CHECKING:
    import uvicorn


def create_app(settings: ServeSettings, models: dict[str, LoadedModel] | None = None) -> FastAPI:
    """The service for `settings.runs`; run folders are checked now, models load when the app starts.

    Args:
        models: already loaded (`run_server` loads them first, so that a run that cannot load is a one-line error).
    """
    check_runs(settings)

    @asynccontextmanager
    async def lifespan(app: FastAPI):
        start = time.perf_counter()
        app.state.models = models if models is not None else await run_in_threadpool(load_models, settings)
        app.state.decoders = ThreadPoolExecutor(max_workers=os.cpu_count() or 1, thread_name_prefix="decode")
        gc.collect()
        gc.freeze()  # the loaded models are permanent: keep them out of every later collection
        if models is None:
            console.print(_loaded(app.state.models, time.perf_counter() - start))
        yield
        for model in app.state.models.values():
            model.batcher.close()
        app.state.decoders.shutdown(wait=False, cancel_futures=True)

    app = FastAPI(title="hardsight", version=__version__, lifespan=lifespan, docs_url=None, redoc_url=None,
                  description="Read text CAPTCHAs with trained hardsight run folders. Send images as multipart "
                              "(`file`, or several `files`) or as base64 JSON; errors are JSON "
                              "`{error, detail}` with a 4xx status.")
    app.state.settings = settings
    app.add_middleware(BodyLimit, max_bytes=settings.max_upload_bytes)
    if settings.api_key:
        app.add_middleware(ApiKeyCheck, key=settings.api_key)
    app.add_middleware(HostCheck, hosts=settings.allowed_hosts)
    app.add_middleware(InternalErrors)  # outermost: catches what every layer below lets through
    _add_error_handlers(app)
    _add_docs(app)
    page = files("hardsight.serve").joinpath("static/index.html").read_text(encoding="utf-8")
    # with a key, the docs show an Authorize button for it (ApiKeyCheck does the checking)
    keyed = [Security(APIKeyHeader(name="X-API-Key", auto_error=False))] if settings.api_key else []

    @app.get("/", include_in_schema=False)
    async def index() -> HTMLResponse:
        return HTMLResponse(page)

    @app.get("/healthz", response_model=Health)
    async def healthz(request: Request) -> dict[str, Any]:
        """Liveness: ok once the models are loaded."""
        return {"status": "ok", "models": len(request.app.state.models)}

    @app.get("/v1/models", response_model=ModelsResponse, dependencies=keyed)
    async def list_models(request: Request) -> dict[str, Any]:
        """The loaded models (use `name` as `model` in requests) and the request limits."""
        return {"models": [m.describe() for m in request.app.state.models.values()],
                "limits": {"max_upload_mb": settings.max_upload_mb, "max_pixels": settings.max_pixels,
                           "max_batch": settings.max_batch}}

    @app.get("/v1/models/{name}/card", response_model=ModelCard, responses={404: ERRORS[404]}, dependencies=keyed)
    async def card(request: Request, name: str) -> dict[str, Any]:
        """A loaded model's card, from its run folder's files: task, input contract, training data, test metrics
        with 95% intervals, curves, most confused pairs, test images with their predictions (errors first). Files
        it could not read are listed in `missing`."""
        from hardsight.serve.card import model_card

        models = request.app.state.models
        if name not in models:
            loaded = ", ".join(models) or "none"
            raise ApiError(404, "unknown model", f"no model named {name!r}; loaded: {loaded}")
        return await run_in_threadpool(model_card, models[name])

    @app.post("/v1/read", response_model=ReadResponse, responses=ERRORS, openapi_extra=image_request_body(),
              dependencies=keyed)
    async def read(request: Request) -> JSONResponse:
        """Read the text in one or more CAPTCHA images: `text` and `confidence` per image."""
        return await _answer(request, "read", settings)

    @app.post("/v1/classify", response_model=ClassifyResponse, responses=ERRORS, openapi_extra=image_request_body(),
              dependencies=keyed)
    async def classify(request: Request) -> JSONResponse:
        """Classify tiles or faces with an image-task model: `label`, `probabilities` and `top_k` per image."""
        return await _answer(request, "classify", settings)

    @app.post("/v1/solve", response_model=SolveResponse, responses=ERRORS, openapi_extra=image_request_body(),
              dependencies=keyed)
    async def solve(request: Request) -> JSONResponse:
        """Choose the cells of a grid CAPTCHA that show `target`, with an image-task model."""
        return await _answer(request, "solve", settings)

    return app


async def _answer(request: Request, route: str, settings: ServeSettings) -> JSONResponse:
    """Body -> model -> decoded, prepared images (request thread) -> batched model run (model thread) -> JSON.

    The JSON is built here (the route's response_model documents it) rather than validated again per request.
    """
    start = time.perf_counter()
    try:
        async with asyncio.timeout(settings.body_timeout_s):
            upload = await read_upload(request, settings.max_batch)
    except TimeoutError:
        raise ApiError(408, "request body too slow",
                       f"the body did not arrive within {settings.body_timeout_s:g} s") from None
    model: LoadedModel = pick_model(request.app.state.models, route, upload.model)
    upload.check_count(settings.max_batch)
    model.handler.check(route, upload.fields)  # cheap field checks before any image is decoded
    prepared = await asyncio.get_running_loop().run_in_executor(request.app.state.decoders, _prepare_all, model,
                                                                 upload, route, settings.max_pixels)
    results = await model.handler.answer(model, route, prepared, [name for name, _ in upload.images], upload.fields)
    return JSONResponse({"model": model.name, "task": model.task, "engine": model.engine, "results": results,
                         "ms": round((time.perf_counter() - start) * 1000, 2)})


def _prepare_all(model: LoadedModel, upload: Upload, route: str, max_pixels: int) -> list[Any]:
    """Decode and preprocess on a request thread, so the model's thread only runs the model."""
    return [model.prepare(decode_image(data, name, max_pixels), route) for name, data in upload.images]


def _add_error_handlers(app: FastAPI) -> None:
    """Every failure is JSON `{error, detail}`; bad input is a 4xx and never reaches the 500 handler."""

    @app.exception_handler(ApiError)
    async def api_error(request: Request, e: ApiError) -> JSONResponse:
        return e.response()

    @app.exception_handler(HTTPException)
    async def http_error(request: Request, e: HTTPException) -> JSONResponse:
        return JSONResponse({"error": HTTPStatus(e.status_code).phrase.lower(), "detail": e.detail},
                            status_code=e.status_code, headers=getattr(e, "headers", None))

    @app.exception_handler(RequestValidationError)
    async def invalid(request: Request, e: RequestValidationError) -> JSONResponse:
        return JSONResponse({"error": "invalid request", "detail": jsonable_encoder(e.errors())}, status_code=422)

    @app.exception_handler(ClientDisconnect)
    async def disconnected(request: Request, e: ClientDisconnect) -> JSONResponse:
        return JSONResponse({"error": "client disconnected", "detail": "the body ended early"}, status_code=400)


def _add_docs(app: FastAPI) -> None:
    """Swagger UI at /docs and ReDoc at /redoc from files shipped in fastapi-offline: FastAPI's own pages load them
    from a CDN, and are blank offline."""
    app.mount(DOCS_ASSETS, StaticFiles(directory=str(files("fastapi_offline").joinpath("static"))), name="docs-assets")

    @app.get("/docs", include_in_schema=False)
    async def swagger() -> HTMLResponse:
        return get_swagger_ui_html(openapi_url=app.openapi_url, title="hardsight - API docs",
                                   swagger_js_url=f"{DOCS_ASSETS}/swagger-ui-bundle.js",
                                   swagger_css_url=f"{DOCS_ASSETS}/swagger-ui.css",
                                   swagger_favicon_url=f"{DOCS_ASSETS}/favicon.png",
                                   swagger_ui_parameters={"validatorUrl": None})  # no badge from swagger.io

    @app.get("/redoc", include_in_schema=False)
    async def redoc() -> HTMLResponse:
        return get_redoc_html(openapi_url=app.openapi_url, title="hardsight - API docs",
                              redoc_js_url=f"{DOCS_ASSETS}/redoc.standalone.js",
                              redoc_favicon_url=f"{DOCS_ASSETS}/favicon.png", with_google_fonts=False)


def _loaded(models: dict[str, LoadedModel], seconds: float) -> str:
    return f"loaded {', '.join(f'{m.name} ({m.task}, {m.engine})' for m in models.values())} in {seconds:.1f} s"


def exposure_warning(settings: ServeSettings, host: str) -> str | None:
    """What to tell someone who binds beyond loopback; None on loopback."""
    if is_loopback(host):
        return None
    guard = "" if settings.api_key else "; anyone who can reach it can use it: set --api-key (or HARDSIGHT_API_KEY)"
    hosts = ("any Host" if "*" in settings.allowed_hosts else
             f"only a Host of {', '.join(settings.allowed_hosts)}; name others with --allowed-hosts")
    return f"listening on {host}: other machines can reach this server{guard}. It answers {hosts}"


def server_config(settings: ServeSettings, host: str = "127.0.0.1", port: int = 8000, access_log: bool = True,
                  log_level: str = "info", models: dict[str, LoadedModel] | None = None) -> uvicorn.Config:
    """uvicorn as `hardsight serve` runs it: the keep-alive and header timeouts, and the service's log."""
    import uvicorn
    from uvicorn.config import LOGGING_CONFIG

    logs = copy.deepcopy(LOGGING_CONFIG)  # uvicorn's format for the 500 tracebacks too
    logs["loggers"]["hardsight.serve"] = {"handlers": ["default"], "level": "INFO", "propagate": False}
    return uvicorn.Config(create_app(settings, models), host=host, port=port, log_level=log_level,
                          access_log=access_log, log_config=logs, timeout_keep_alive=settings.keep_alive_s,
                          http=header_timeout_protocol(settings.header_timeout_s))


def run_server(settings: ServeSettings, host: str = "127.0.0.1", port: int = 8000, access_log: bool = True) -> None:
    """Load the models (a run that cannot load raises here, before any server), then serve until Ctrl-C."""
    import uvicorn

    name = served_name(host)
    if name and name not in settings.allowed_hosts:
        settings = replace(settings, allowed_hosts=(*settings.allowed_hosts, name))
    check_runs(settings)
    start = time.perf_counter()
    models = load_models(settings)
    console.print(_loaded(models, time.perf_counter() - start))
    if warning := exposure_warning(settings, host):
        console.print(f"[bold yellow]warning:[/bold yellow] {warning}")
    server = uvicorn.Server(server_config(settings, host, port, access_log, models=models))
    console.print(f"hardsight serving at [bold]http://{name or host}:{port}/[/bold] (API docs at /docs); "
                  f"tasks: {', '.join(sorted(set(ROUTES.values()) & set(HANDLERS)))}")
    server.run()
    if not server.started:  # e.g. the port is taken: uvicorn has said why
        raise SystemExit(3)
