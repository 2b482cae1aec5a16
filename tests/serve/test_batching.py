"""The server's dynamic batcher: requests waiting while the model is busy share one call, and get their own answers."""

from __future__ import annotations

import asyncio
import threading

import pytest

from hardsight.serve.batching import Batcher


def test_waiting_requests_share_one_model_call_and_get_their_own_results():
    calls: list[list[int]] = []
    release = threading.Event()

    def model(items: list[int]) -> list[int]:
        calls.append(list(items))
        release.wait(5)  # the first call holds the model while others queue up
        return [x * 10 for x in items]

    async def main():
        batcher = Batcher(model, max_items=5)
        first = asyncio.create_task(batcher.submit([1]))
        await asyncio.sleep(0.05)  # the model is busy with [1]
        waiting = [asyncio.create_task(batcher.submit(items)) for items in ([2, 3], [4], [5, 6], [7])]
        await asyncio.sleep(0.05)
        release.set()
        answers = [await first] + [await t for t in waiting]
        batcher.close()
        return answers

    answers = asyncio.run(main())
    assert answers == [[10], [20, 30], [40], [50, 60], [70]]
    assert calls == [[1], [2, 3, 4, 5, 6], [7]]  # merged up to max_items, in arrival order


def test_a_failing_batch_fails_its_requests_and_the_next_one_is_served():
    def model(items: list[int]) -> list[int]:
        if 0 in items:
            raise ValueError("bad input")
        return items

    async def main():
        batcher = Batcher(model, max_items=8)
        with pytest.raises(ValueError, match="bad input"):
            await batcher.submit([0, 1])
        answer = await batcher.submit([2])
        batcher.close()
        return answer

    assert asyncio.run(main()) == [2]
