"""What stands between a connection and the routes: timeouts, Host and API-key checks, body size, and 500s."""

from __future__ import annotations

import asyncio
import hmac
import ipaddress
import logging

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from hardsight.serve.errors import ApiError

log = logging.getLogger("hardsight.serve")

DOCS_ASSETS = "/docs/assets"  # Swagger UI and ReDoc files, served from the installed fastapi-offline package
PUBLIC = frozenset({"/healthz", "/", "/docs", "/redoc", "/openapi.json"})  # no data in them: no API key needed
INTERNAL = {"error": "internal error", "detail": "the server failed on this request; its log has the traceback"}


class InternalErrors:
    """Answer what the routes did not turn into a 4xx with a generic 500, and log its traceback off the loop.

    Formatting a traceback on the event loop stalls every client, and the exception text can hold paths or request
    data, so the client gets neither.
    """

    def __init__(self, app: ASGIApp):
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        started = False

        async def watched(message: Message) -> None:
            nonlocal started
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, receive, watched)
        except Exception as e:
            if not started:
                await ApiError(500, INTERNAL["error"], INTERNAL["detail"]).response()(scope, receive, send)
            await asyncio.to_thread(log.error, "%s %s failed", scope["method"], scope["path"], exc_info=e)


class HostCheck:
    """Answer only requests whose Host names this server: a page that rebinds its own DNS name to this address
    (DNS rebinding) sends that name, and gets a 400 instead of the API."""

    def __init__(self, app: ASGIApp, hosts: tuple[str, ...]):
        self.app, self.hosts = app, {h.lower() for h in hosts}

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and "*" not in self.hosts:
            host = host_name(dict(scope["headers"]).get(b"host", b"").decode("latin-1"))
            if host not in self.hosts:
                served = ", ".join(sorted(self.hosts))
                return await ApiError(400, "unknown host", f"Host {host!r} is not one this server answers to "
                                                           f"({served}); add it with --allowed-hosts"
                                      ).response()(scope, receive, send)
        await self.app(scope, receive, send)


def host_name(header: str) -> str:
    """'Example.com:8000' -> 'example.com', '[::1]:8000' -> '[::1]': the host of a Host header, without its port."""
    header = header.strip().lower()
    if header.startswith("["):
        return header[: header.find("]") + 1] if "]" in header else header
    return header.rsplit(":", 1)[0].rstrip(".") if header.count(":") <= 1 else header


def served_name(bind: str) -> str | None:
    """The Host name clients use for the `--host` address: '::1' -> '[::1]'; None for 0.0.0.0 and ::."""
    try:
        address = ipaddress.ip_address(bind.strip("[]"))
    except ValueError:
        return bind.lower()
    if address.is_unspecified:
        return None
    return f"[{address}]" if address.version == 6 else str(address)


def is_loopback(bind: str) -> bool:
    try:
        return ipaddress.ip_address(bind.strip("[]")).is_loopback
    except ValueError:
        return bind.lower() == "localhost"


class ApiKeyCheck:
    """Every route but PUBLIC (and the docs' files) needs the key: `Authorization: Bearer KEY` or `X-API-Key: KEY`.

    The pages are static and hold no data; they send the key with their own requests.
    """

    def __init__(self, app: ASGIApp, key: str):
        self.app, self.key = app, key.encode()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        path = scope.get("path", "")
        if scope["type"] != "http" or path in PUBLIC or path.startswith(DOCS_ASSETS + "/"):
            return await self.app(scope, receive, send)
        given = None
        for name, value in scope["headers"]:
            if name == b"x-api-key":
                given = value.strip()
            elif name == b"authorization" and value[:7].lower() == b"bearer ":
                given = value[7:].strip()
        if given is None or not hmac.compare_digest(given, self.key):
            error = "missing API key" if given is None else "wrong API key"
            return await ApiError(401, error, "this server needs its API key: send `Authorization: Bearer KEY` or "
                                              "`X-API-Key: KEY` (the key it was started with, --api-key or "
                                              "HARDSIGHT_API_KEY)", headers={"www-authenticate": "Bearer"}
                                  ).response()(scope, receive, send)
        await self.app(scope, receive, send)


class BodyLimit:
    """Refuse bodies over `max_bytes`: by Content-Length up front, or while streaming when it is absent."""

    def __init__(self, app: ASGIApp, max_bytes: int):
        self.app, self.max_bytes = app, max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        declared = dict(scope["headers"]).get(b"content-length")
        if declared is not None and declared.isdigit() and int(declared) > self.max_bytes:
            return await self.too_large(int(declared)).response()(scope, receive, send)
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


def header_timeout_protocol(seconds: float) -> type[asyncio.Protocol]:
    """uvicorn's httptools protocol, closing (with a 408) a connection whose request head is not in after `seconds`.

    uvicorn's keep-alive timeout only starts after a response, and it has no header timeout: a client that connects
    and sends nothing, or sends its headers a byte at a time, would otherwise hold its connection forever. The clock
    starts when the connection opens and again at the first byte of each request, and stops at the end of the
    headers; a body that stops arriving is the routes' business (--body-timeout, a 408 too).
    """
    from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

    body = (b'{"error":"request head too slow","detail":"the request line and headers did not arrive within '
            + f'{seconds:g} s"}}'.encode())
    answer = (b"HTTP/1.1 408 Request Timeout\r\ncontent-type: application/json\r\nconnection: close\r\n"
              b"content-length: " + str(len(body)).encode() + b"\r\n\r\n" + body)

    class HeaderTimeout(HttpToolsProtocol):
        _head_timer: asyncio.TimerHandle | None = None

        def connection_made(self, transport) -> None:  # type: ignore[override]
            super().connection_made(transport)
            self._start_clock()

        def connection_lost(self, exc: Exception | None) -> None:
            self._stop_clock()
            super().connection_lost(exc)

        def on_message_begin(self) -> None:
            super().on_message_begin()
            self._start_clock()

        def on_headers_complete(self) -> None:
            self._stop_clock()
            super().on_headers_complete()

        def _start_clock(self) -> None:
            self._stop_clock()
            self._head_timer = self.loop.call_later(seconds, self._too_slow)

        def _stop_clock(self) -> None:
            if self._head_timer is not None:
                self._head_timer.cancel()
                self._head_timer = None

        def _too_slow(self) -> None:
            self._head_timer = None
            if self.transport.is_closing():
                return
            if self.cycle is None or self.cycle.response_complete:  # not in the middle of a pipelined answer
                self.transport.write(answer)
            self.transport.close()

    return HeaderTimeout
