"""TOAST compression of the value columns: the server's default (pglz) unless `compression=` says.

The official tables leave their columns at the server's default; so do ours. An earlier
migration of this package switched them to lz4; setup() switches such databases back, on
every partition too. `compression="lz4"` opts in again, for speed.
"""

from __future__ import annotations

import random

import psycopg
import pytest
from langgraph.checkpoint.postgres import PostgresSaver as OfficialSaver
from psycopg import sql

from benchmarks.prose import text as prose
from checkpoint_pg import PostgresSaver
from checkpoint_pg.errors import InvalidConfigError
from tests.checkpoint.helpers import checkpoint, config

# The value columns own_2/own_3 switched to lz4, and own_4 switches back.
VALUE_COLUMNS = (
    ("checkpoint_blobs", "blob"),
    ("checkpoint_writes", "blob"),
    ("checkpoints", "checkpoint"),
)
LARGE_PROSE = prose(random.Random(7), 20_000)


def _server_has_lz4(dsn: str) -> bool:
    with psycopg.connect(dsn, autocommit=True) as conn:
        try:
            with conn.transaction():
                conn.execute("CREATE TEMP TABLE lz4_probe (b bytea COMPRESSION lz4)")
                raise psycopg.Rollback()
        except psycopg.errors.FeatureNotSupported:
            return False
    return True


@pytest.fixture
def lz4(dsn: str) -> None:
    if not _server_has_lz4(dsn):
        pytest.skip("this PostgreSQL is built without lz4")


def _store_a_large_value(saver: PostgresSaver, thread_id: str = "big") -> None:
    cp = checkpoint({"doc": {"text": LARGE_PROSE}})
    saver.put(config(thread_id), cp, {}, cp["channel_versions"])


def _blob_compression(conn: psycopg.Connection, thread_id: str = "big") -> str | None:
    row = conn.execute(
        "SELECT pg_column_compression(blob) FROM checkpoint_blobs WHERE thread_id = %s",
        (thread_id,),
    ).fetchone()
    assert row is not None
    return row[0]  # type: ignore[no-any-return]


def _settings(conn: psycopg.Connection, schema: str | None = None) -> dict[str, str]:
    """relname.column -> attcompression of the value columns of every table and partition."""
    rows = conn.execute(
        "SELECT c.relname || '.' || a.attname, a.attcompression::text"
        " FROM pg_class AS c JOIN pg_attribute AS a ON a.attrelid = c.oid"
        " WHERE c.relnamespace"
        " = coalesce(quote_ident(%s)::regnamespace, current_schema()::regnamespace)"
        " AND c.relkind IN ('r', 'p')"
        " AND (c.relname LIKE 'checkpoint_blobs%%' OR c.relname LIKE 'checkpoint_writes%%'"
        "      OR c.relname LIKE 'checkpoints%%')"
        " AND a.attname IN ('blob', 'checkpoint')",
        (schema,),
    ).fetchall()
    return dict(rows)  # type: ignore[arg-type]


def _switch_to_lz4_as_the_earlier_setup_did(conn: psycopg.Connection) -> None:
    """What own_2 and own_3 left behind: lz4 on every value column, own_4 not yet applied."""
    for relname_column in _settings(conn):
        relname, column = relname_column.split(".")
        conn.execute(f"ALTER TABLE {relname} ALTER COLUMN {column} SET COMPRESSION lz4")
    conn.execute("DELETE FROM checkpoint_pg_migrations WHERE v >= 4")


def test_setup_leaves_the_value_columns_at_the_server_default_as_official_does(
    dsn: str,
) -> None:
    with psycopg.connect(dsn, autocommit=True) as conn:
        PostgresSaver(conn).setup()
        assert set(_settings(conn).values()) == {""}


def test_large_prose_values_are_stored_with_pglz_by_default(dsn: str) -> None:
    with psycopg.connect(dsn, autocommit=True) as conn:
        saver = PostgresSaver(conn)
        saver.setup()
        _store_a_large_value(saver)
        assert _blob_compression(conn) == "pglz"


def test_setup_switches_columns_an_earlier_version_set_to_lz4_back_to_the_default(
    dsn: str, lz4: None
) -> None:
    with psycopg.connect(dsn, autocommit=True) as conn:
        PostgresSaver(conn).setup()
        _switch_to_lz4_as_the_earlier_setup_did(conn)
        assert set(_settings(conn).values()) == {"l"}
        PostgresSaver(conn).setup()
        assert set(_settings(conn).values()) == {""}


@pytest.mark.unpartitioned(reason="makes its own partitioned tables in a schema of its own")
def test_the_switch_back_covers_every_partition(dsn: str, lz4: None) -> None:
    with psycopg.connect(dsn, autocommit=True) as conn:
        # Named after the test's own schema: on a shared database (Citus) runs never collide.
        parts = conn.execute("SELECT current_schema() || '_lz4_parts'").fetchone()[0]  # type: ignore[index]
        conn.execute(sql.SQL("CREATE SCHEMA {}").format(sql.Identifier(parts)))
        conn.execute(sql.SQL("SET search_path = {}").format(sql.Identifier(parts)))
        try:
            PostgresSaver(conn, partitions=3).setup()
            _switch_to_lz4_as_the_earlier_setup_did(conn)
            PostgresSaver(conn, partitions=3).setup()
            settings = _settings(conn)
        finally:
            conn.execute(sql.SQL("DROP SCHEMA {} CASCADE").format(sql.Identifier(parts)))
        assert len(settings) == 12  # three tables, three partitions each
        assert set(settings.values()) == {""}


@pytest.mark.nocitus("the official saver's reads are refused by Citus (docs/scaling.md)")
def test_values_stored_with_lz4_before_the_switch_back_stay_readable_by_both_savers(
    dsn: str, lz4: None
) -> None:
    with psycopg.connect(dsn, autocommit=True) as conn:
        saver = PostgresSaver(conn, compression="lz4")
        saver.setup()
        _store_a_large_value(saver)
        PostgresSaver(conn).setup()  # nothing to migrate: lz4 was asked for, not left behind
        PostgresSaver(conn, compression="pglz").setup()
        _store_a_large_value(saver, "after")
        assert (_blob_compression(conn), _blob_compression(conn, "after")) == ("lz4", "pglz")
        got = saver.get_tuple(config("big"))
    with psycopg.connect(dsn, autocommit=True, prepare_threshold=0) as conn:
        official = OfficialSaver(conn).get_tuple(config("big"))  # type: ignore[arg-type]
    for read in (got, official):
        assert read is not None
        assert read.checkpoint["channel_values"]["doc"] == {"text": LARGE_PROSE}


def test_compression_lz4_stores_new_large_values_with_lz4(dsn: str, lz4: None) -> None:
    with psycopg.connect(dsn, autocommit=True) as conn:
        saver = PostgresSaver(conn, compression="lz4")
        saver.setup()
        _store_a_large_value(saver)
        assert set(_settings(conn).values()) == {"l"}
        assert _blob_compression(conn) == "lz4"


@pytest.mark.unpartitioned(reason="makes its own partitioned tables in a schema of its own")
def test_compression_lz4_sets_every_partition_too(dsn: str, lz4: None) -> None:
    with psycopg.connect(dsn, autocommit=True) as conn:
        PostgresSaver(conn, schema="lz4_parts", partitions=3, compression="lz4").setup()
        settings = _settings(conn, "lz4_parts")
        assert len(settings) == 12
        assert set(settings.values()) == {"l"}


def test_setup_fails_saying_why_on_a_server_without_lz4_when_lz4_is_asked_for(
    dsn: str,
) -> None:
    if _server_has_lz4(dsn):
        pytest.skip("this PostgreSQL has lz4 (the other tests cover it)")
    with psycopg.connect(dsn, autocommit=True) as conn, pytest.raises(psycopg.Error, match="lz4"):
        PostgresSaver(conn, compression="lz4").setup()


def test_an_unknown_compression_method_is_refused_before_any_io() -> None:
    with pytest.raises(InvalidConfigError, match="compression"):
        PostgresSaver(None, compression="zstd")  # type: ignore[arg-type]


def test_setup_works_in_a_schema_whose_name_needs_quoting(dsn: str, lz4: None) -> None:
    schema = 'it\'s a "schema"'
    with psycopg.connect(dsn, autocommit=True) as conn:
        saver = PostgresSaver(conn, schema=schema, compression="lz4")
        saver.setup()
        _store_a_large_value(saver)
        assert saver.get_tuple(config("big")) is not None
        assert set(_settings(conn, schema).values()) == {"l"}
