"""`app_data.Database` on a DSN that cannot connect: `DatabaseConnectionFailedError` in seconds.

It is also the savers' `ConnectionFailedError` (so a ``psycopg.OperationalError``), carries
libpq's reason and never the password; the start-up retry gives up within ``connect_deadline``.
"""

from __future__ import annotations

import time

import pytest
from sqlalchemy import text

from app_data import Database, DatabaseConnectionFailedError, DatabaseUnavailableError
from tests.support.connect import BadDsn, assert_reported


async def test_start_up_fails_within_seconds_with_the_reason(bad_dsn: BadDsn) -> None:
    started = time.monotonic()
    with pytest.raises(DatabaseConnectionFailedError) as caught:
        async with Database(bad_dsn.dsn):
            pass
    assert_reported(caught.value, bad_dsn, time.monotonic() - started)
    assert isinstance(caught.value, DatabaseUnavailableError)


async def test_a_unit_of_work_without_start_up_fails_at_once_with_the_reason(
    bad_dsn: BadDsn,
) -> None:
    db = Database(bad_dsn.dsn)
    started = time.monotonic()
    try:
        with pytest.raises(DatabaseConnectionFailedError) as caught:
            async with db.transaction() as session:
                await session.execute(text("SELECT 1"))
        assert_reported(caught.value, bad_dsn, time.monotonic() - started)
    finally:
        await db.close()


async def test_what_retrying_cannot_fix_is_tried_once(bad_dsn: BadDsn) -> None:
    if bad_dsn.name == "refused":
        pytest.skip("a refusal is retried: a server that is starting refuses for a moment")
    with pytest.raises(DatabaseConnectionFailedError, match=r"after 1 attempt\(s\)"):
        async with Database(bad_dsn.dsn):
            pass
