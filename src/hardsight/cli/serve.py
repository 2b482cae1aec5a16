"""`hardsight serve RUN [RUN...]`: the HTTP service and its web page."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from hardsight.cli import app


@app.command()
def serve(
    runs: Annotated[list[Path], typer.Argument(help="Run folders to load; each is served under its folder name.")],
    host: Annotated[str, typer.Option(help="Interface to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="TCP port.")] = 8000,
    engine: Annotated[str, typer.Option(help="onnx, torch, or auto (ONNX Runtime if RUN/model.onnx is current).")] = "auto",
    threads: Annotated[int | None, typer.Option(help="CPU threads per model (default: all cores but one).")] = None,
    max_upload_mb: Annotated[float, typer.Option(help="Largest request body accepted, in MB.")] = 10.0,
    max_pixels: Annotated[int, typer.Option(help="Largest image, in pixels (decompression-bomb guard).")] = 16_000_000,
    max_batch: Annotated[int, typer.Option(help="Most images in one request.")] = 64,
    access_log: Annotated[bool, typer.Option(help="Log every request.")] = True,
) -> None:
    """Serve readers over HTTP: POST /v1/read, GET /v1/models, /healthz, OpenAPI docs at /docs, a web page at /."""
    from hardsight.serve import ServeSettings, run_server

    run_server(ServeSettings(runs=tuple(runs), engine=engine, threads=threads, max_upload_mb=max_upload_mb,
                             max_pixels=max_pixels, max_batch=max_batch), host, port, access_log=access_log)
