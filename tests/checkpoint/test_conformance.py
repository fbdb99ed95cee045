"""LangGraph's own checkpointer conformance suite, every capability, on a real database."""

from __future__ import annotations

import os
from collections.abc import AsyncIterator

import psycopg
import pytest
from langgraph.checkpoint.base import BaseCheckpointSaver
from langgraph.checkpoint.conformance import checkpointer_test, validate
from psycopg_pool import AsyncConnectionPool, ConnectionPool

from checkpoint_pg import AsyncPostgresSaver, PostgresSaver, RowBoundEncryption


async def _async_saver(dsn: str, pooled: bool) -> AsyncIterator[BaseCheckpointSaver[str]]:
    if pooled:
        async with AsyncConnectionPool(dsn, max_size=4, open=False) as pool:
            saver = AsyncPostgresSaver(pool)
            await saver.setup()
            yield saver
    else:
        async with await psycopg.AsyncConnection.connect(dsn) as conn:
            saver = AsyncPostgresSaver(conn)
            await saver.setup()
            yield saver


async def _sync_saver(dsn: str, pooled: bool) -> AsyncIterator[BaseCheckpointSaver[str]]:
    # The sync saver's async methods run its blocking code in worker threads.
    if pooled:
        with ConnectionPool(dsn, max_size=4, open=False) as pool:
            saver = PostgresSaver(pool)
            saver.setup()
            yield saver
    else:
        with psycopg.connect(dsn) as conn:
            saver = PostgresSaver(conn)
            saver.setup()
            yield saver


@pytest.mark.parametrize("pooled", [False, True], ids=["conn", "pool"])
@pytest.mark.parametrize("kind", ["async", "sync"])
async def test_saver_passes_every_conformance_capability(dsn: str, kind: str, pooled: bool) -> None:
    make = _async_saver if kind == "async" else _sync_saver

    async def factory() -> AsyncIterator[BaseCheckpointSaver[str]]:
        async for saver in make(dsn, pooled):
            yield saver

    report = await validate(checkpointer_test(name=f"checkpoint_pg-{kind}")(factory))
    failures = {name: r.failures for name, r in report.results.items() if not r.passed}
    assert failures == {}
    assert sorted(report.results) == sorted(
        [
            "put",
            "put_writes",
            "get_tuple",
            "list",
            "delete_thread",
            "delete_for_runs",
            "copy_thread",
            "prune",
        ]
    )
    assert all(r.detected and r.tests_skipped == 0 for r in report.results.values())


async def test_an_encrypting_saver_passes_every_conformance_capability(dsn: str) -> None:
    """With `encryption=`, LangGraph's suite passes as it does without (copy_thread seals
    every value again for the new thread)."""
    encryption = RowBoundEncryption({"k1": os.urandom(32)})

    async def factory() -> AsyncIterator[BaseCheckpointSaver[str]]:
        async with await psycopg.AsyncConnection.connect(dsn, autocommit=True) as conn:
            saver = AsyncPostgresSaver(conn, encryption=encryption)
            await saver.setup()
            yield saver

    report = await validate(checkpointer_test(name="checkpoint_pg-encrypted")(factory))
    failures = {name: r.failures for name, r in report.results.items() if not r.passed}
    assert failures == {}
    assert len(report.results) == 8
    assert all(r.detected and r.tests_skipped == 0 for r in report.results.values())
