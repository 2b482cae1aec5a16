"""The one error type of the service: an HTTP status, a short `error` and a `detail` that says what to change."""

from __future__ import annotations

from typing import Any

from fastapi.responses import JSONResponse


class ApiError(Exception):
    """Answered as JSON `{"error": ..., "detail": ...}` with `status`; the server keeps serving."""

    def __init__(self, status: int, error: str, detail: Any = None, headers: dict[str, str] | None = None):
        super().__init__(f"{status} {error}: {detail}")
        self.status, self.error, self.detail, self.headers = status, error, detail, headers

    def to_json(self) -> dict[str, Any]:
        return {"error": self.error, "detail": self.detail}

    def response(self) -> JSONResponse:
        return JSONResponse(self.to_json(), status_code=self.status, headers=self.headers)
