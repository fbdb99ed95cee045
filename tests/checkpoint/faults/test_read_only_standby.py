"""A saver or store pointed at a standby by mistake: reads work, a write fails at once, typed.

PostgreSQL answers a write on a hot standby with SQLSTATE 25006 (read_only_sql_transaction).
That is a verdict about the server, not a transient fault: the same server refuses every
retry. So the write raises `ReadOnlyServerError` (also a
`psycopg.errors.ReadOnlySqlTransaction`), at once, naming the server but never a password,
and saying to ask for the primary with ``target_session_attrs=read-write``.
"""

from __future__ import annotations

import logging
import pickle
import shutil
import tempfile
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest
from langchain_core.runnables import RunnableConfig
from psycopg.conninfo import make_conninfo

from checkpoint_pg import AsyncPostgresSaver, PostgresSaver
from checkpoint_pg._runtime.retry import classify
from checkpoint_pg.errors import CheckpointPgError, ReadOnlyServerError
from store import AsyncPostgresStore, PostgresStore
from tests.support.failover import SYSTEM_USER, Pair, rig_unavailable
from tests.support.faults import checkpoint

pytestmark = [pytest.mark.timeout(60), pytest.mark.failover]

SECRET = "not-a-real-password-7f3a"


def standby_only(pair: Pair) -> str:
    """A DSN naming only the standby, with a password (trust auth ignores it) to leak."""
    return make_conninfo(pair.standby.dsn(pair.dbname), password=SECRET)


@pytest.fixture(scope="module")
def pair() -> Iterator[Pair]:
    """One synchronous pair for the module (nothing here stops a server), set up on the
    primary and replayed by the standby."""
    if (why := rig_unavailable()) is not None:
        pytest.skip(why)
    root = Path(tempfile.mkdtemp(prefix="cpg-failover-"))
    shutil.chown(root, user=SYSTEM_USER, group=SYSTEM_USER)
    built = Pair(root)
    try:
        built.start(synchronous=True)
        with PostgresSaver.from_conn_string(built.dsn) as saver:
            saver.setup()
        with PostgresStore.from_conn_string(built.dsn) as store:
            store.setup()
        built.wait_replayed()
        yield built
    finally:
        built.close()


def assert_names_the_standby(exc: ReadOnlyServerError, pair: Pair) -> None:
    message = str(exc)
    assert isinstance(exc, CheckpointPgError)
    assert isinstance(exc, psycopg.errors.ReadOnlySqlTransaction)
    assert f"port={pair.standby.port}" in message
    assert "standby" in message
    assert "target_session_attrs=read-write" in message
    assert SECRET not in message
    assert SECRET not in repr(exc)
    assert classify(exc) is None  # never retried


def test_a_write_on_a_standby_fails_at_once_naming_it(
    pair: Pair, caplog: pytest.LogCaptureFixture
) -> None:
    config: RunnableConfig = {"configurable": {"thread_id": uuid.uuid4().hex, "checkpoint_ns": ""}}
    caplog.set_level(logging.WARNING, logger="checkpoint_pg.retry")
    with PostgresSaver.from_conn_string(standby_only(pair)) as saver:
        assert saver.get_tuple(config) is None  # reads are fine on a standby
        cp, versions = checkpoint(saver, 1)
        started = time.monotonic()
        with pytest.raises(ReadOnlyServerError) as raised:
            saver.put(config, cp, {}, versions)
        assert time.monotonic() - started < 2.0  # not a hang, not a retry loop
    assert_names_the_standby(raised.value, pair)
    assert not caplog.records, "a read-only server must not be retried"


def test_setup_on_a_standby_says_it_is_a_standby(pair: Pair) -> None:
    with (
        PostgresSaver.from_conn_string(standby_only(pair)) as saver,
        pytest.raises(ReadOnlyServerError) as raised,
    ):
        saver.setup()
    assert_names_the_standby(raised.value, pair)


async def test_async_saver_and_store_refuse_writes_on_a_standby(pair: Pair) -> None:
    config: RunnableConfig = {"configurable": {"thread_id": uuid.uuid4().hex, "checkpoint_ns": ""}}
    async with AsyncPostgresSaver.from_conn_string(standby_only(pair)) as saver:
        cp, versions = checkpoint(saver, 1)
        with pytest.raises(ReadOnlyServerError) as raised:
            await saver.aput(config, cp, {}, versions)
    assert_names_the_standby(raised.value, pair)
    async with AsyncPostgresStore.from_conn_string(standby_only(pair)) as store:
        # refresh_ttl=True (the default) refreshes TTLs in the same statement: a write.
        assert await store.aget(("docs",), "a", refresh_ttl=False) is None
        with pytest.raises(ReadOnlyServerError) as raised:
            await store.aput(("docs",), "a", {"v": 1})
    assert_names_the_standby(raised.value, pair)


def test_sync_store_refuses_writes_on_a_standby(pair: Pair) -> None:
    with (
        PostgresStore.from_conn_string(standby_only(pair)) as store,
        pytest.raises(ReadOnlyServerError) as raised,
    ):
        store.put(("docs",), "a", {"v": 1})
    assert_names_the_standby(raised.value, pair)


def test_the_multi_host_dsn_writes_on_the_primary_whatever_the_order(pair: Pair) -> None:
    """Standby listed first: ``target_session_attrs=read-write`` still picks the primary."""
    p, s = pair.primary, pair.standby
    dsn = make_conninfo(pair.dsn, port=f"{s.port},{p.port}", host="127.0.0.1,127.0.0.1")
    config: RunnableConfig = {"configurable": {"thread_id": uuid.uuid4().hex, "checkpoint_ns": ""}}
    with PostgresSaver.from_conn_string(dsn) as saver:
        cp, versions = checkpoint(saver, 1)
        saved = saver.put(config, cp, {}, versions)
        assert saver.get_tuple(saved) is not None


def test_a_read_only_transaction_the_caller_asked_for_is_not_called_a_standby() -> None:
    exc = ReadOnlyServerError("host=db port=5432", standby=False)
    assert "standby" not in str(exc)
    assert "read-only" in str(exc)


def test_the_error_pickles_and_is_known_by_its_public_name() -> None:
    exc = ReadOnlyServerError("host=db port=5432")
    again = pickle.loads(pickle.dumps(exc))
    assert type(again) is ReadOnlyServerError
    assert str(again) == str(exc)
    assert again.endpoint == "host=db port=5432"
    assert ReadOnlyServerError.__module__ == "checkpoint_pg.errors"


def test_a_server_answering_read_only_is_never_a_transient_fault() -> None:
    """25006 from the server, before the driver names it: the retry policy leaves it alone."""
    assert classify(psycopg.errors.ReadOnlySqlTransaction("read-only")) is None
