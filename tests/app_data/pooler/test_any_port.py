"""app_data through a transaction pooler on any port, with no configuration.

PgBouncer listens on a port of its own and the URL has no ``pgbouncer=true``: the engine starts
with prepared statements. The pooler's first error about one switches the engine to unprepared
statements (new connections and every checkout), logs one WARNING naming ``?pgbouncer=true``,
and the unit of work runs again: the caller sees success. ``pooler=False`` turns this off.
"""

from __future__ import annotations

import asyncio

import pytest

from app_data import AppDataService, Database, DatabaseError, ProjectType, migrations
from tests.app_data.conftest import FAST_RETRY
from tests.support.pooler import CLIENTS, any_port_dsn, one_server_dsn, pooler_warnings

__all__ = ["any_port_dsn", "one_server_dsn"]  # fixtures

ROUNDS = 8  # more than psycopg's prepare_threshold (5): the statements get prepared


async def units(service: AppDataService, n: int) -> None:
    user = await service.create_user(f"0xany{n}")
    project = await service.create_project(user.id, f"p{n}", ProjectType.FULLSTACK)
    for i in range(ROUNDS):
        await service.save_file(project.id, f"f{i}.md", f"{n}:{i}")
        got = await service.get_file(project.id, f"f{i}.md")
        assert got is not None
        assert got.content == f"{n}:{i}"


async def test_units_of_work_from_many_clients_all_succeed(
    any_port_dsn: str, database_dsn: str, caplog: pytest.LogCaptureFixture
) -> None:
    await migrations.upgrade(database_dsn)
    with caplog.at_level("WARNING", logger="app_data"):
        async with Database(any_port_dsn, **FAST_RETRY) as db:
            assert not db.target.pooler
            service = AppDataService(db)
            await asyncio.gather(*(units(service, n) for n in range(CLIENTS * 2)))
            async with db.engine.connect() as conn:  # a pooled connection opened before
                raw = await conn.get_raw_connection()
                assert raw.driver_connection.prepare_threshold is None  # type: ignore[union-attr]
    assert len(pooler_warnings(caplog.records, "pgbouncer=true")) == 1


async def test_the_second_engine_on_one_server_connection_switches_and_succeeds(
    one_server_dsn: str, database_dsn: str, caplog: pytest.LogCaptureFixture
) -> None:
    await migrations.upgrade(database_dsn)
    with caplog.at_level("WARNING", logger="app_data"):
        async with (
            Database(one_server_dsn, pool_size=1, **FAST_RETRY) as first,
            Database(one_server_dsn, pool_size=1, **FAST_RETRY) as second,
        ):
            await units(AppDataService(first), 1)
            await units(AppDataService(second), 2)
            await units(AppDataService(first), 3)
    assert len(pooler_warnings(caplog.records, "pgbouncer=true")) == 1


async def test_pooler_false_lets_the_error_surface(
    one_server_dsn: str, database_dsn: str, caplog: pytest.LogCaptureFixture
) -> None:
    await migrations.upgrade(database_dsn)
    with caplog.at_level("WARNING", logger="app_data"):
        async with (
            Database(one_server_dsn, pool_size=1, pooler=False, **FAST_RETRY) as first,
            Database(one_server_dsn, pool_size=1, pooler=False, **FAST_RETRY) as second,
        ):
            await units(AppDataService(first), 1)
            with pytest.raises(DatabaseError, match="prepared statement"):
                await units(AppDataService(second), 2)
    assert pooler_warnings(caplog.records, "pgbouncer=true") == []


def test_pgbouncer_false_in_the_url_turns_detection_off() -> None:
    url = "postgresql://app@db.example.com:7000/app"
    assert Database(url).target.detect
    assert not Database(url + "?pgbouncer=false").target.detect
    assert not Database(url, pooler=False).target.detect
