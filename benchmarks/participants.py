"""The two implementations under test, and the raw-psycopg floor, built the same way.

Both savers (and both stores) get connections made with the settings the official package
requires (``autocommit=True, prepare_threshold=0, row_factory=dict_row``) and the same
serializer (or embeddings), so the only thing that differs between them is their code.
Their modules are imported lazily: a subprocess measuring one implementation's memory never
loads the other.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from typing import Any

import psycopg
from langgraph.checkpoint.base import BaseCheckpointSaver
from langgraph.checkpoint.serde.jsonplus import JsonPlusSerializer
from langgraph.store.base import BaseStore
from psycopg.rows import DictRow, dict_row
from psycopg_pool import AsyncConnectionPool, ConnectionPool

__all__ = [
    "FLOOR",
    "IMPLEMENTATIONS",
    "LABELS",
    "OFFICIAL",
    "OURS",
    "Floor",
    "apool",
    "async_saver",
    "connect",
    "default_saver",
    "make_async_saver",
    "pool",
    "setup_schema",
    "sync_saver",
    "sync_store",
]

OFFICIAL = "official"
OURS = "checkpoint_pg"
FLOOR = "floor"
IMPLEMENTATIONS = (OFFICIAL, OURS)
LABELS = {
    OFFICIAL: "langgraph-checkpoint-postgres",
    OURS: "checkpoint-pg",
    FLOOR: "raw psycopg",
}

Saver = BaseCheckpointSaver[str]


def _kwargs() -> dict[str, Any]:
    return {"autocommit": True, "prepare_threshold": 0, "row_factory": dict_row}


def connect(dsn: str) -> psycopg.Connection[DictRow]:
    """A connection as the official saver requires it."""
    return psycopg.Connection.connect(dsn, **_kwargs())


def pool(dsn: str, size: int) -> ConnectionPool[psycopg.Connection[DictRow]]:
    """An open pool of exactly `size` connections, all connected before it is returned."""
    p: ConnectionPool[psycopg.Connection[DictRow]] = ConnectionPool(
        dsn, min_size=size, max_size=size, kwargs=_kwargs(), open=True, name="bench"
    )
    p.wait(timeout=30)
    return p


async def apool(dsn: str, size: int) -> AsyncConnectionPool[psycopg.AsyncConnection[DictRow]]:
    """Async twin of `pool` (call it on the loop that will use the pool)."""
    p: AsyncConnectionPool[psycopg.AsyncConnection[DictRow]] = AsyncConnectionPool(
        dsn, min_size=size, max_size=size, kwargs=_kwargs(), open=False, name="bench"
    )
    await p.open(wait=True, timeout=30)
    return p


def sync_saver(
    impl: str,
    conn: psycopg.Connection[DictRow] | ConnectionPool[psycopg.Connection[DictRow]],
    serde: Any = None,
) -> Saver:
    """Implementation `impl`'s blocking saver on `conn` (LangGraph's default serializer)."""
    if impl == OFFICIAL:
        from langgraph.checkpoint.postgres import PostgresSaver as Official

        return Official(conn, serde=serde or JsonPlusSerializer())
    if impl == OURS:
        from checkpoint_pg import PostgresSaver

        return PostgresSaver(conn, serde=serde or JsonPlusSerializer())
    raise ValueError(f"unknown implementation {impl!r}")


def async_saver(
    impl: str,
    conn: psycopg.AsyncConnection[DictRow] | AsyncConnectionPool[psycopg.AsyncConnection[DictRow]],
) -> Saver:
    """Implementation `impl`'s asyncio saver on `conn` (call it on the loop that will use it)."""
    if impl == OFFICIAL:
        from langgraph.checkpoint.postgres.aio import AsyncPostgresSaver as Official

        return Official(conn, serde=JsonPlusSerializer())
    if impl == OURS:
        from checkpoint_pg import AsyncPostgresSaver

        return AsyncPostgresSaver(conn, serde=JsonPlusSerializer())
    raise ValueError(f"unknown implementation {impl!r}")


async def make_async_saver(
    impl: str,
    conn: psycopg.AsyncConnection[DictRow] | AsyncConnectionPool[psycopg.AsyncConnection[DictRow]],
) -> Saver:
    """`async_saver`, as a coroutine: the official saver must be built on its running loop."""
    return async_saver(impl, conn)


def setup_schema(impl: str, dsn: str) -> None:
    """Create implementation `impl`'s tables in the database `dsn`."""
    with connect(dsn) as conn:
        if impl == OFFICIAL:
            from langgraph.checkpoint.postgres import PostgresSaver as Official

            Official(conn).setup()
        else:
            from checkpoint_pg import PostgresSaver

            PostgresSaver(conn).setup()


def sync_store(
    impl: str,
    conn: psycopg.Connection[DictRow],
    *,
    index: Mapping[str, Any] | None = None,
    range_index_fields: Sequence[str] = (),
) -> BaseStore:
    """Implementation `impl`'s blocking store on `conn` (not set up yet).

    `range_index_fields` is checkpoint-pg's own keyword; the official store has no such
    option, and gets none.
    """
    if impl == OFFICIAL:
        from langgraph.store.postgres import PostgresStore as Official

        return Official(conn, index=index)  # type: ignore[arg-type]
    if impl == OURS:
        from store import PostgresStore

        return PostgresStore(conn, index=index, range_index_fields=range_index_fields)
    raise ValueError(f"unknown implementation {impl!r}")


@contextmanager
def default_saver(impl: str, dsn: str) -> Iterator[Saver]:
    """The saver a user gets from `from_conn_string(dsn)` with no other argument."""
    if impl == OFFICIAL:
        from langgraph.checkpoint.postgres import PostgresSaver as Official

        with Official.from_conn_string(dsn) as official:
            yield official
        return
    from checkpoint_pg import PostgresSaver

    with PostgresSaver.from_conn_string(dsn) as ours:
        yield ours


class Floor:
    """The physical floor: one raw single-row statement per operation, binary results."""

    TABLE = "bench_floor"

    def __init__(self, conn: psycopg.Connection[DictRow]) -> None:
        self.conn = conn
        self.cur = conn.cursor(binary=True)

    def setup(self) -> None:
        self.conn.execute(
            f"CREATE TABLE IF NOT EXISTS {self.TABLE} (id TEXT PRIMARY KEY, data BYTEA NOT NULL)"
        )

    def insert(self, key: str, data: bytes) -> None:
        self.cur.execute(f"INSERT INTO {self.TABLE} (id, data) VALUES (%s, %s)", (key, data))

    def select(self, key: str) -> bytes:
        self.cur.execute(f"SELECT data FROM {self.TABLE} WHERE id = %s", (key,))
        row = self.cur.fetchone()
        assert row is not None
        return bytes(row["data"])

    def round_trip(self) -> None:
        self.cur.execute("SELECT 1")
        self.cur.fetchone()
