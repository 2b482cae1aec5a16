"""What `hardsight serve` is started with: run folders, engine, the limits on requests and who may send them."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

from hardsight.engine.runtimes import ENGINES
from hardsight.errors import ConfigError

LOOPBACK_HOSTS = ("localhost", "127.0.0.1", "[::1]")  # Host headers always accepted (see allowed_hosts)


@dataclass(frozen=True)
class ServeSettings:
    runs: tuple[Path, ...]
    checkpoint: str = "best"  # of every run: best, last, epoch-N or a .ckpt path (RunFolder.checkpoint)
    engine: str = "auto"  # onnx, torch, or auto (ONNX Runtime when RUN/model.onnx was exported from `checkpoint`)
    threads: int | None = None  # CPU threads per model; None = all cores but one (see model_threads)
    tta: bool = False  # image models average each image with its horizontal flip
    max_upload_mb: float = 10.0  # largest request body
    max_pixels: int = 16_000_000  # largest image, width x height, checked before decoding
    max_batch: int = 64  # most images in one request (and in one merged inference batch)
    body_timeout_s: float = 30.0  # a client that stops sending its body mid-way gets a 408 after this
    header_timeout_s: float = 10.0  # a connection must send its request line and headers within this
    keep_alive_s: float = 5.0  # an idle connection is closed this long after its last response
    # Host headers served (DNS-rebinding guard): names or IP literals ("[::1]"), "*" for any
    allowed_hosts: tuple[str, ...] = LOOPBACK_HOSTS
    api_key: str | None = field(default=None, repr=False)  # when set, every route but /healthz and the pages needs it

    def __post_init__(self) -> None:
        if not self.runs:
            raise ConfigError("serve needs at least one run folder")
        if self.engine not in ENGINES:
            raise ConfigError(f"unknown engine {self.engine!r}; choose one of {', '.join(ENGINES)}")
        for name in ("max_upload_mb", "max_pixels", "max_batch", "body_timeout_s", "header_timeout_s",
                     "keep_alive_s"):
            if getattr(self, name) <= 0:
                raise ConfigError(f"{name} must be positive, got {getattr(self, name)}")
        if self.api_key is not None and not self.api_key.strip():
            raise ConfigError("the API key is empty: pass a non-empty --api-key (or HARDSIGHT_API_KEY), or none")

    @property
    def model_threads(self) -> int:
        """One core is left to the event loop and to decoding uploads, which run beside the model."""
        return self.threads or max(1, (os.cpu_count() or 1) - 1)

    @property
    def max_upload_bytes(self) -> int:
        return int(self.max_upload_mb * 1024 * 1024)
