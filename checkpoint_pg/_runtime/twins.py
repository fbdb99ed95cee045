"""The other-mode twin of a method, written once for every class that needs one.

An async saver or store also answers blocking calls from other threads (LangGraph makes
some), and a blocking one also answers coroutine calls (by running in a worker thread).
Each such twin only forwards, so instead of a hand-kept copy of every signature, a class
body declares ``get_tuple = blocking_twin(aget_tuple)``: the twin takes the same
arguments, and `inspect.signature` and `help` show the original's.

The twin looks its original up by name on the instance when called, so a subclass that
overrides the original changes the twin too.
"""

from __future__ import annotations

import asyncio
import functools
from collections.abc import AsyncIterator, Callable, Coroutine, Iterator
from itertools import islice
from typing import Any, ClassVar, Concatenate, ParamSpec, TypeVar

__all__ = [
    "LoopBridge",
    "ThreadBridge",
    "blocking_iter_twin",
    "blocking_twin",
    "coroutine_alias",
    "threaded_iter_twin",
    "threaded_twin",
]

P = ParamSpec("P")
T = TypeVar("T")

# Items moved per hop between threads when an iterator is bridged: one hop per item would
# pay the thread switch per checkpoint.
_CHUNK = 100

F = TypeVar("F", bound=Callable[..., Any])


def _named(twin: F, original: Callable[..., Any], name: str, doc: str) -> F:
    """`twin` with the original's signature (for `inspect` and `help`), its own name and doc."""
    functools.update_wrapper(twin, original)
    twin.__name__ = twin.__qualname__ = name
    twin.__doc__ = doc
    return twin


def _blocking_name(name: str) -> str:
    return name[1:] if name.startswith("a") else name


def _blocking_doc(name: str) -> str:
    return f"Blocking twin of `{name}`, for callers on threads other than its loop's."


def blocking_twin(
    original: Callable[Concatenate[Any, P], Coroutine[Any, Any, T]],
) -> Callable[Concatenate[Any, P], T]:
    """A blocking method that runs the coroutine method `original` on the instance's loop.

    The instance provides ``_blocking(coro)``, which waits for `coro` on its event loop.
    """
    name = original.__name__

    def twin(self: Any, /, *args: P.args, **kwargs: P.kwargs) -> T:
        result: T = self._blocking(getattr(self, name)(*args, **kwargs))
        return result

    return _named(twin, original, _blocking_name(name), _blocking_doc(name))


def threaded_twin(
    original: Callable[Concatenate[Any, P], T],
) -> Callable[Concatenate[Any, P], Coroutine[Any, Any, T]]:
    """A coroutine method that runs the blocking method `original` in a worker thread."""
    name = original.__name__

    async def twin(self: Any, /, *args: P.args, **kwargs: P.kwargs) -> T:
        method = getattr(self, name)
        return await asyncio.to_thread(functools.partial(method, *args, **kwargs))

    return _named(twin, original, "a" + name, f"`{name}`, run in a worker thread.")


def blocking_iter_twin(
    original: Callable[Concatenate[Any, P], AsyncIterator[T]],
) -> Callable[Concatenate[Any, P], Iterator[T]]:
    """A blocking iterator over the async iterator method `original`, fetched in chunks."""
    name = original.__name__

    def twin(self: Any, /, *args: P.args, **kwargs: P.kwargs) -> Iterator[T]:
        source = getattr(self, name)(*args, **kwargs)

        async def chunk() -> list[T]:
            items: list[T] = []
            async for item in source:
                items.append(item)
                if len(items) == _CHUNK:
                    break
            return items

        while items := self._blocking(chunk()):
            yield from items
            if len(items) < _CHUNK:
                return

    return _named(twin, original, _blocking_name(name), _blocking_doc(name))


def threaded_iter_twin(
    original: Callable[Concatenate[Any, P], Iterator[T]],
) -> Callable[Concatenate[Any, P], AsyncIterator[T]]:
    """An async iterator over the blocking iterator method `original`, run in worker threads."""
    name = original.__name__

    async def twin(self: Any, /, *args: P.args, **kwargs: P.kwargs) -> AsyncIterator[T]:
        source = iter(getattr(self, name)(*args, **kwargs))
        while items := await asyncio.to_thread(lambda: [*islice(source, _CHUNK)]):
            for item in items:
                yield item
            if len(items) < _CHUNK:
                return

    return _named(twin, original, "a" + name, f"`{name}`, run in worker threads.")


def coroutine_alias(
    original: Callable[Concatenate[Any, P], Coroutine[Any, Any, T]],
) -> Callable[Concatenate[Any, P], Coroutine[Any, Any, T]]:
    """Another name for the coroutine method `original` (``asetup`` for an async ``setup``).

    In a generated blocking module it becomes `threaded_twin`: there, the async name runs
    the blocking original in a worker thread.
    """
    name = original.__name__

    async def alias(self: Any, /, *args: P.args, **kwargs: P.kwargs) -> T:
        result: T = await getattr(self, name)(*args, **kwargs)
        return result

    return _named(alias, original, "a" + name, f"Another name for `{name}`.")


class LoopBridge:
    """What an async shell needs for its blocking twins: its event loop, and a way to wait.

    In a generated blocking module this is `ThreadBridge`, which needs neither.
    """

    loop: asyncio.AbstractEventLoop | None = None
    # The async calls a caller should make instead of a blocking one, for the error message.
    _async_hint: ClassVar[str] = "await the a-prefixed methods"

    def _bind_loop(self) -> None:
        """Remember the running loop (if any): blocking twins run their coroutines on it."""
        try:
            self.loop = asyncio.get_running_loop()
        except RuntimeError:
            self.loop = None

    def _blocking(self, coro: Coroutine[Any, Any, T]) -> T:
        """Run `coro` on the shell's event loop from another thread, and wait for it.

        The blocking twins of the async methods come here. They serve code on other threads
        (LangGraph makes such calls); on the loop's own thread they would deadlock, and
        without a running loop nothing would run the coroutine: both raise.
        """
        loop = self.loop
        try:
            on_loop = asyncio.get_running_loop() is loop
        except RuntimeError:
            on_loop = False
        if loop is None or on_loop or not loop.is_running():
            coro.close()
            raise asyncio.InvalidStateError(
                f"Synchronous calls to {type(self).__name__} are only allowed from a different "
                "thread, while the event loop it was created on runs. From that loop, use the "
                f"async interface: {self._async_hint}."
            )
        return asyncio.run_coroutine_threadsafe(coro, loop).result()


class ThreadBridge:
    """The blocking counterpart of `LoopBridge`: coroutine twins run in worker threads
    (`threaded_twin`), so there is no loop to bind."""

    _async_hint: ClassVar[str] = ""

    def _bind_loop(self) -> None:
        """Nothing to bind: the blocking shell has no event loop."""
