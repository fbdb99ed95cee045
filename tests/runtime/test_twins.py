"""Other-mode twins: same arguments, same results, the original's signature, late binding."""

from __future__ import annotations

import asyncio
import inspect
import threading
from collections.abc import AsyncIterator, Coroutine, Iterator
from typing import Any, TypeVar

import pytest

from checkpoint_pg._runtime.twins import (
    blocking_iter_twin,
    blocking_twin,
    threaded_iter_twin,
    threaded_twin,
)

T = TypeVar("T")


class AsyncThing:
    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self.loop = loop

    def _blocking(self, coro: Coroutine[Any, Any, T]) -> T:
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result()

    async def aadd(self, x: int, *, y: int = 1) -> int:
        return x + y

    async def acount(self, n: int) -> AsyncIterator[int]:
        for i in range(n):
            yield i

    add = blocking_twin(aadd)
    count = blocking_iter_twin(acount)


class BlockingThing:
    def mul(self, x: int, *, y: int = 1) -> int:
        return x * y

    def count(self, n: int) -> Iterator[int]:
        yield from range(n)

    amul = threaded_twin(mul)
    acount = threaded_iter_twin(count)


@pytest.fixture
def loop() -> Iterator[asyncio.AbstractEventLoop]:
    loop = asyncio.new_event_loop()
    thread = threading.Thread(target=loop.run_forever, daemon=True)
    thread.start()
    yield loop
    loop.call_soon_threadsafe(loop.stop)
    thread.join()
    loop.close()


@pytest.mark.timeout(30)
def test_a_blocking_twin_returns_what_the_coroutine_returns(
    loop: asyncio.AbstractEventLoop,
) -> None:
    assert AsyncThing(loop).add(2, y=3) == 5


@pytest.mark.timeout(30)
def test_a_blocking_iterator_twin_yields_every_item_across_chunks(
    loop: asyncio.AbstractEventLoop,
) -> None:
    assert list(AsyncThing(loop).count(250)) == list(range(250))


async def test_a_threaded_twin_returns_what_the_method_returns() -> None:
    assert await BlockingThing().amul(2, y=5) == 10


async def test_a_threaded_iterator_twin_yields_every_item_across_chunks() -> None:
    assert [i async for i in BlockingThing().acount(250)] == list(range(250))


def test_a_twin_has_the_original_signature_and_its_own_name() -> None:
    assert inspect.signature(AsyncThing.add) == inspect.signature(AsyncThing.aadd)
    assert (AsyncThing.add.__name__, BlockingThing.amul.__name__) == ("add", "amul")


async def test_a_twin_calls_a_subclass_override_of_its_original() -> None:
    class Doubled(BlockingThing):
        def mul(self, x: int, *, y: int = 1) -> int:
            return 2 * x * y

    assert await Doubled().amul(2, y=5) == 20
