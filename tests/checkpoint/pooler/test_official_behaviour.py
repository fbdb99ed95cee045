"""DOCUMENTS THE OFFICIAL SAVER'S BEHAVIOUR behind PgBouncer; it tests nothing of ours.

`langgraph.checkpoint.postgres.PostgresSaver.from_conn_string` connects with
``prepare_threshold=0``: every statement is prepared, under psycopg's per-connection names
(``_pg3_0``, ``_pg3_1``...). PgBouncer 1.18 in transaction mode does not track prepared
statements, so two clients that share a server connection collide on those names. With one
server connection per database the collision is deterministic: the second client's first
statement fails with ``prepared statement "_pg3_0" already exists``. (With several server
connections a client may instead run another client's statement under its own name and get
that statement's rows; that depends on timing, so it is not asserted here.)

The same two steps through the same PgBouncer with this package's saver (``pooler=True``)
succeed and return each client's own checkpoint.
"""

from __future__ import annotations

from collections.abc import Iterator

import psycopg
import pytest
from langgraph.checkpoint.postgres import PostgresSaver as OfficialSaver

from checkpoint_pg import PostgresSaver
from tests.checkpoint.helpers import checkpoint, config, versions_of
from tests.harness import PgBouncer, TestServer, start_pgbouncer
from tests.support.pooler import require_pgbouncer


@pytest.fixture
def single_server_dsn(pg_server: TestServer, database_dsn: str) -> Iterator[str]:
    """This test's database through a PgBouncer with ONE server connection per database."""
    require_pgbouncer()
    bouncer: PgBouncer = start_pgbouncer(pg_server, pool_size=1)
    try:
        yield bouncer.dsn(database_dsn)
    finally:
        bouncer.stop()


def _seed(dsn: str) -> None:
    """Two threads, one checkpoint each, written directly (not through PgBouncer)."""
    with psycopg.connect(dsn, autocommit=True) as conn:
        saver = PostgresSaver(conn)
        saver.setup()
        for owner in ("a", "b"):
            cp = checkpoint({"owner": owner})
            saver.put(config(owner), cp, {"owner": owner}, versions_of(cp))


def test_official_saver_fails_behind_pgbouncer_transaction_mode(
    single_server_dsn: str, database_dsn: str
) -> None:
    _seed(database_dsn)
    with (
        OfficialSaver.from_conn_string(single_server_dsn) as first,
        OfficialSaver.from_conn_string(single_server_dsn) as second,
    ):
        got = first.get_tuple(config("a"))  # prepares _pg3_0 on the one server connection
        assert got is not None
        with pytest.raises(psycopg.errors.DuplicatePreparedStatement, match="_pg3_0"):
            second.get_tuple(config("b"))  # its own _pg3_0: already there


def test_our_saver_passes_the_same_steps(single_server_dsn: str, database_dsn: str) -> None:
    _seed(database_dsn)
    with (
        PostgresSaver.from_conn_string(single_server_dsn, pooler=True, pool_size=1) as first,
        PostgresSaver.from_conn_string(single_server_dsn, pooler=True, pool_size=1) as second,
    ):
        for _ in range(3):
            for saver, owner in ((first, "a"), (second, "b")):
                got = saver.get_tuple(config(owner))
                assert got is not None
                assert got.checkpoint["channel_values"] == {"owner": owner}
