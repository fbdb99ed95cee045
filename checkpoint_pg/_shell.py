"""What every sync or async shell (savers and stores alike) does with its connection.

A shell holds a psycopg connection or pool (and optionally a pipeline of that connection) and
runs core operations on it. A single connection is used by one operation at a time (a lock per
shell); a pool hands each operation its own connection, with no lock at all.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, contextmanager
from typing import Any, TypeVar

from psycopg import AsyncConnection, AsyncPipeline, Connection, Pipeline
from psycopg_pool import AsyncConnectionPool, ConnectionPool

from checkpoint_pg import _driver
from checkpoint_pg._protocol import Operation
from checkpoint_pg.connection import connection_kwargs, resolve_pooler, tuned_dsn

T = TypeVar("T")


class SyncShell:
    """Runs operations on a `Connection` (serialised) or a `ConnectionPool` (concurrently)."""

    conn: Connection[Any] | ConnectionPool[Any]
    pipe: Pipeline | None
    lock: threading.Lock

    def _attach(self, conn: Any, pipe: Pipeline | None) -> None:
        if not isinstance(conn, (Connection, ConnectionPool)):
            raise TypeError(
                f"conn must be a psycopg Connection or ConnectionPool, not {type(conn).__name__}"
            )
        if isinstance(conn, ConnectionPool) and pipe is not None:
            raise ValueError("a pipeline belongs to one Connection: it cannot be used with a pool")
        self.conn = conn
        self.pipe = pipe
        self.lock = threading.Lock()

    @contextmanager
    def _connection(self) -> Iterator[Connection[Any]]:
        if isinstance(self.conn, ConnectionPool):
            with self.conn.connection() as conn:
                yield conn
        else:
            with self.lock:
                yield self.conn

    def _run(self, op: Operation[T]) -> T:
        with self._connection() as conn:
            return _driver.run(conn, op, self.pipe)


class AsyncShell:
    """Runs operations on an `AsyncConnection` (serialised) or an `AsyncConnectionPool`."""

    conn: AsyncConnection[Any] | AsyncConnectionPool[Any]
    pipe: AsyncPipeline | None
    lock: asyncio.Lock
    loop: asyncio.AbstractEventLoop | None

    def _attach(self, conn: Any, pipe: AsyncPipeline | None) -> None:
        if not isinstance(conn, (AsyncConnection, AsyncConnectionPool)):
            raise TypeError(
                "conn must be a psycopg AsyncConnection or AsyncConnectionPool, "
                f"not {type(conn).__name__}"
            )
        if isinstance(conn, AsyncConnectionPool) and pipe is not None:
            raise ValueError("a pipeline belongs to one connection: it cannot be used with a pool")
        self.conn = conn
        self.pipe = pipe
        self.lock = asyncio.Lock()
        try:
            self.loop = asyncio.get_running_loop()
        except RuntimeError:
            self.loop = None

    async def _run(self, op: Operation[T]) -> T:
        if isinstance(self.conn, AsyncConnectionPool):
            async with self.conn.connection() as conn:
                return await _driver.arun(conn, op, self.pipe)
        async with self.lock:
            return await _driver.arun(self.conn, op, self.pipe)


# The pools run no check query on checkout: it cost a round trip per operation (1.85x slower
# across a 1 ms network). Dead peers are found by TCP keepalives (see connection.tuned_dsn), and
# a connection that breaks is discarded by the pool when it is returned.


@contextmanager
def connect_sync(
    dsn: str, *, pipeline: bool, pool_size: int, pooler: bool | None
) -> Iterator[tuple[Connection[Any] | ConnectionPool[Any], Pipeline | None]]:
    """A pool (or one pipelined connection) configured the way this package wants it."""
    dsn = tuned_dsn(dsn)
    kwargs = connection_kwargs(pooler=resolve_pooler(dsn, pooler))
    if pipeline:
        with Connection.connect(dsn, **kwargs) as conn, conn.pipeline() as pipe:  # type: ignore[arg-type]
            yield conn, pipe
        return
    with ConnectionPool(
        dsn,
        min_size=1,
        max_size=pool_size,
        kwargs=kwargs,
        name="checkpoint-pg",
        open=False,
    ) as pool:
        yield pool, None


@asynccontextmanager
async def connect_async(
    dsn: str, *, pipeline: bool, pool_size: int, pooler: bool | None
) -> AsyncIterator[tuple[AsyncConnection[Any] | AsyncConnectionPool[Any], AsyncPipeline | None]]:
    """Async twin of `connect_sync`."""
    dsn = tuned_dsn(dsn)
    kwargs = connection_kwargs(pooler=resolve_pooler(dsn, pooler))
    if pipeline:
        async with (
            await AsyncConnection.connect(dsn, **kwargs) as conn,  # type: ignore[arg-type]
            conn.pipeline() as pipe,
        ):
            yield conn, pipe
        return
    async with AsyncConnectionPool(
        dsn,
        min_size=1,
        max_size=pool_size,
        kwargs=kwargs,
        name="checkpoint-pg",
        open=False,
    ) as pool:
        yield pool, None
