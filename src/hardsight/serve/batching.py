"""Dynamic batching: one inference thread per model; requests that arrive while it is busy go in one batch."""

from __future__ import annotations

import asyncio
from concurrent.futures import ThreadPoolExecutor
from typing import Callable, Generic, TypeVar

T = TypeVar("T")
R = TypeVar("R")


class Batcher(Generic[T, R]):
    """`await batcher.submit(items)` runs `fn` on those items, together with other waiting requests' items.

    Inference runs off the event loop on a single thread, so the model uses all its threads for one batch
    at a time instead of contending with itself; waiting requests are merged up to `max_items`.
    """

    def __init__(self, fn: Callable[[list[T]], list[R]], max_items: int, name: str = "model"):
        self.fn, self.max_items = fn, max_items
        self._pending: list[tuple[list[T], asyncio.Future]] = []
        self._worker: asyncio.Task | None = None
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix=f"infer-{name}")

    async def submit(self, items: list[T]) -> list[R]:
        future = asyncio.get_running_loop().create_future()
        self._pending.append((items, future))
        if self._worker is None or self._worker.done():
            self._worker = asyncio.create_task(self._drain())
        return await future

    async def _drain(self) -> None:
        loop = asyncio.get_running_loop()
        while self._pending:
            taken, count = [], 0
            while self._pending and (not taken or count + len(self._pending[0][0]) <= self.max_items):
                items, future = self._pending.pop(0)
                if not future.cancelled():  # the client went away while waiting
                    taken.append((items, future))
                    count += len(items)
            if not taken:
                continue
            try:
                results = await loop.run_in_executor(self._executor, self.fn, [x for items, _ in taken for x in items])
            except Exception as e:  # handed to every waiting request; the worker keeps going
                for _, future in taken:
                    if not future.done():
                        future.set_exception(e)
                continue
            start = 0
            for items, future in taken:
                if not future.done():
                    future.set_result(results[start:start + len(items)])
                start += len(items)

    def close(self) -> None:
        self._executor.shutdown(wait=False, cancel_futures=True)
