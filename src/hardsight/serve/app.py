"""The FastAPI app: routes, limits, JSON errors, and models loaded once in the lifespan."""

from __future__ import annotations

import asyncio
import gc
import os
import time
from concurrent.futures import ThreadPoolExecutor
from contextlib import asynccontextmanager
from http import HTTPStatus
from importlib.resources import files
from typing import Any

from fastapi import FastAPI, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.encoders import jsonable_encoder
from fastapi.exceptions import RequestValidationError
from fastapi.responses import HTMLResponse, JSONResponse
from starlette.exceptions import HTTPException
from starlette.requests import ClientDisconnect
from starlette.types import ASGIApp, Receive, Scope, Send

from hardsight import __version__
from hardsight.console import console
from hardsight.serve.errors import ApiError
from hardsight.serve.models import HANDLERS, ROUTES, LoadedModel, check_runs, load_models, pick_model
from hardsight.serve.schemas import ERRORS, Health, ModelsResponse, ReadResponse, image_request_body
from hardsight.serve.settings import ServeSettings
from hardsight.serve.uploads import Upload, decode_image, read_upload


class BodyLimit:
    """Refuse bodies over `max_bytes`: by Content-Length up front, or while streaming when it is absent."""

    def __init__(self, app: ASGIApp, max_bytes: int):
        self.app, self.max_bytes = app, max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        declared = dict(scope["headers"]).get(b"content-length")
        if declared is not None and declared.isdigit() and int(declared) > self.max_bytes:
            return await _error_response(self.too_large(int(declared)))(scope, receive, send)
        seen = 0

        async def capped() -> dict:
            nonlocal seen
            message = await receive()
            seen += len(message.get("body", b""))
            if seen > self.max_bytes:
                raise self.too_large(seen)
            return message

        await self.app(scope, capped, send)

    def too_large(self, size: int) -> ApiError:
        return ApiError(413, "upload too large", f"the body is {size / 2**20:.1f} MB or more; this server takes "
                                                 f"at most {self.max_bytes / 2**20:g} MB (--max-upload-mb)")


def _error_response(e: ApiError) -> JSONResponse:
    return JSONResponse(e.to_json(), status_code=e.status)


def create_app(settings: ServeSettings) -> FastAPI:
    """The service for `settings.runs`; run folders are checked now, models load when the app starts."""
    check_runs(settings)

    @asynccontextmanager
    async def lifespan(app: FastAPI):
        start = time.perf_counter()
        app.state.models = await run_in_threadpool(load_models, settings)
        app.state.decoders = ThreadPoolExecutor(max_workers=os.cpu_count() or 1, thread_name_prefix="decode")
        gc.collect()
        gc.freeze()  # the loaded models are permanent: keep them out of every later collection
        console.print(f"loaded {', '.join(f'{m.name} ({m.task}, {m.engine})' for m in app.state.models.values())} "
                      f"in {time.perf_counter() - start:.1f} s")
        yield
        for model in app.state.models.values():
            model.batcher.close()
        app.state.decoders.shutdown(wait=False, cancel_futures=True)

    app = FastAPI(title="hardsight", version=__version__, lifespan=lifespan,
                  description="Read text CAPTCHAs with trained hardsight run folders. Send images as multipart "
                              "(`file`, or several `files`) or as base64 JSON; errors are JSON "
                              "`{error, detail}` with a 4xx status.")
    app.state.settings = settings
    app.add_middleware(BodyLimit, max_bytes=settings.max_upload_bytes)
    _add_error_handlers(app)
    page = files("hardsight.serve").joinpath("static/index.html").read_text(encoding="utf-8")

    @app.get("/", include_in_schema=False)
    async def index() -> HTMLResponse:
        return HTMLResponse(page)

    @app.get("/healthz", response_model=Health)
    async def healthz(request: Request) -> dict[str, Any]:
        """Liveness: ok once the models are loaded."""
        return {"status": "ok", "models": len(request.app.state.models)}

    @app.get("/v1/models", response_model=ModelsResponse)
    async def list_models(request: Request) -> dict[str, Any]:
        """The loaded models (use `name` as `model` in requests) and the request limits."""
        return {"models": [m.describe() for m in request.app.state.models.values()],
                "limits": {"max_upload_mb": settings.max_upload_mb, "max_pixels": settings.max_pixels,
                           "max_batch": settings.max_batch}}

    @app.post("/v1/read", response_model=ReadResponse, responses=ERRORS, openapi_extra=image_request_body())
    async def read(request: Request) -> JSONResponse:
        """Read the text in one or more CAPTCHA images: `text` and `confidence` per image."""
        return await _answer(request, "read", settings)

    @app.post("/v1/classify", responses=ERRORS, openapi_extra=image_request_body())
    async def classify(request: Request) -> JSONResponse:
        """Classify tiles or faces with an image-task model (none can be loaded by this version yet)."""
        return await _answer(request, "classify", settings)

    @app.post("/v1/solve", responses=ERRORS, openapi_extra=image_request_body())
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
        return _error_response(e)

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

    @app.exception_handler(Exception)
    async def internal(request: Request, e: Exception) -> JSONResponse:
        console.print_exception()
        return JSONResponse({"error": "internal error", "detail": f"{type(e).__name__}: {e}"}, status_code=500)


def run_server(settings: ServeSettings, host: str = "127.0.0.1", port: int = 8000, access_log: bool = True) -> None:
    """Serve until Ctrl-C."""
    import uvicorn

    app = create_app(settings)
    console.print(f"hardsight serving at [bold]http://{host}:{port}/[/bold] (API docs at /docs); "
                  f"tasks: {', '.join(sorted(set(ROUTES.values()) & set(HANDLERS)))}")
    uvicorn.run(app, host=host, port=port, log_level="info", access_log=access_log, timeout_keep_alive=5)
