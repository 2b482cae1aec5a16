"""`hardsight serve RUN [RUN...]`: the HTTP service and its web page."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from hardsight.cli import app
from hardsight.cli.options import CheckpointOption, EngineOption, TtaOption


@app.command()
def serve(
    runs: Annotated[list[Path], typer.Argument(help="Run folders to load; each is served under its folder name.")],
    host: Annotated[str, typer.Option(help="Interface to listen on (beyond loopback: see --api-key).")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="TCP port.")] = 8000,
    checkpoint: CheckpointOption = "best",
    engine: EngineOption = "auto",
    threads: Annotated[int | None, typer.Option(help="CPU threads per model (default: all cores but one).")] = None,
    tta: TtaOption = False,
    max_upload_mb: Annotated[float, typer.Option(help="Largest request body accepted, in MB.")] = 10.0,
    max_pixels: Annotated[int, typer.Option(help="Largest image, in pixels (decompression-bomb guard).")] = 16_000_000,
    max_batch: Annotated[int, typer.Option(help="Most images in one request.")] = 64,
    api_key: Annotated[str | None, typer.Option(envvar="HARDSIGHT_API_KEY", show_default=False,
                                                help="Key every route but /healthz and the pages needs "
                                                     "(Authorization: Bearer KEY, or X-API-Key).")] = None,
    allowed_hosts: Annotated[list[str] | None, typer.Option(
        help="Host header names to answer besides localhost, 127.0.0.1, [::1] and --host "
             "(repeat or comma-separate; * for any).")] = None,
    header_timeout_s: Annotated[float, typer.Option(help="Seconds a connection has to send its headers.")] = 10.0,
    keep_alive_s: Annotated[float, typer.Option(help="Seconds an idle connection stays open after a response.")] = 5.0,
    access_log: Annotated[bool, typer.Option(help="Log every request.")] = True,
) -> None:
    """Serve readers over HTTP: POST /v1/read, GET /v1/models, /healthz, OpenAPI docs at /docs, a web page at /."""
    from hardsight.serve import ServeSettings, run_server
    from hardsight.serve.settings import LOOPBACK_HOSTS

    hosts = (*LOOPBACK_HOSTS, *(h.strip() for given in allowed_hosts or [] for h in given.split(",") if h.strip()))
    run_server(ServeSettings(runs=tuple(runs), checkpoint=checkpoint, engine=engine, threads=threads, tta=tta,
                             max_upload_mb=max_upload_mb, max_pixels=max_pixels, max_batch=max_batch,
                             api_key=api_key, allowed_hosts=hosts,
                             header_timeout_s=header_timeout_s, keep_alive_s=keep_alive_s),
               host, port, access_log=access_log)
