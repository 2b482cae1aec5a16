"""The one error type of the service: an HTTP status, a short `error` and a `detail` that says what to change."""

from __future__ import annotations

from typing import Any


class ApiError(Exception):
    """Answered as JSON `{"error": ..., "detail": ...}` with `status`; the server keeps serving."""

    def __init__(self, status: int, error: str, detail: Any = None):
        super().__init__(f"{status} {error}: {detail}")
        self.status, self.error, self.detail = status, error, detail

    def to_json(self) -> dict[str, Any]:
        return {"error": self.error, "detail": self.detail}
