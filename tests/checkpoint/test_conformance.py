"""LangGraph's own checkpointer conformance suite, every capability, on a real database."""

from __future__ import annotations

from collections.abc import AsyncIterator

import psycopg
import pytest
from langgraph.checkpoint.conformance import checkpointer_test, validate

from checkpoint_pg import AsyncPostgresSaver


@pytest.mark.parametrize("pooled", [False, True], ids=["conn", "pool"])
async def test_async_saver_passes_every_conformance_capability(dsn: str, pooled: bool) -> None:
    from psycopg_pool import AsyncConnectionPool

    async def factory() -> AsyncIterator[AsyncPostgresSaver]:
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

    registered = checkpointer_test(name="checkpoint_pg")(factory)
    report = await validate(registered)
    failures = {
        name: result.failures for name, result in report.results.items() if not result.passed
    }
    assert failures == {}
    assert all(result.detected for result in report.results.values())
