"""setup() switches large values to lz4 TOAST compression where the server has it."""

from __future__ import annotations

import random
import string

import psycopg
import pytest
from langgraph.checkpoint.postgres import PostgresSaver as OfficialSaver

from checkpoint_pg import PostgresSaver
from tests.checkpoint.helpers import checkpoint, config


def _server_has_lz4(dsn: str) -> bool:
    with psycopg.connect(dsn, autocommit=True) as conn:
        try:
            with conn.transaction():
                conn.execute("CREATE TEMP TABLE lz4_probe (b bytea COMPRESSION lz4)")
                raise psycopg.Rollback()
        except psycopg.errors.FeatureNotSupported:
            return False
    return True


def _varied_text(size: int) -> str:
    """Text pglz gives up on (it saves under 25 %) but lz4 still shrinks."""
    rng = random.Random(7)
    return "".join(rng.choice(string.ascii_lowercase + "     ") for _ in range(size))


def _store_a_large_value(saver: PostgresSaver) -> None:
    cp = checkpoint({"doc": {"text": _varied_text(20_000)}})
    saver.put(config("big"), cp, {}, cp["channel_versions"])


def _blob_compression(conn: psycopg.Connection, table: str = "checkpoint_blobs") -> str | None:
    row = conn.execute(f"SELECT pg_column_compression(blob) FROM {table}").fetchone()
    assert row is not None
    return row[0]  # type: ignore[no-any-return]


def test_new_large_blobs_are_lz4_compressed_where_the_server_supports_it(dsn: str) -> None:
    if not _server_has_lz4(dsn):
        pytest.skip("this PostgreSQL is built without lz4: setup() keeps pglz (next test)")
    with psycopg.connect(dsn, autocommit=True) as conn:
        saver = PostgresSaver(conn)
        saver.setup()
        _store_a_large_value(saver)
        assert _blob_compression(conn) == "lz4"
        size, raw = conn.execute(
            "SELECT pg_column_size(blob), octet_length(blob) FROM checkpoint_blobs"
        ).fetchone()  # type: ignore[misc]
        assert size < raw


def test_setup_succeeds_and_keeps_pglz_on_a_server_without_lz4(dsn: str) -> None:
    if _server_has_lz4(dsn):
        pytest.skip("this PostgreSQL has lz4 (the previous test covers it)")
    with psycopg.connect(dsn, autocommit=True) as conn:
        saver = PostgresSaver(conn)
        saver.setup()
        _store_a_large_value(saver)
        assert _blob_compression(conn) in (None, "pglz")


@pytest.mark.nocitus("the official saver's reads are refused by Citus (docs/scaling.md)")
def test_the_official_saver_reads_lz4_compressed_values(dsn: str) -> None:
    with psycopg.connect(dsn, autocommit=True) as conn:
        saver = PostgresSaver(conn)
        saver.setup()
        _store_a_large_value(saver)
    with psycopg.connect(dsn, autocommit=True, prepare_threshold=0) as conn:
        got = OfficialSaver(conn).get_tuple(config("big"))  # type: ignore[arg-type]
    assert got is not None
    assert got.checkpoint["channel_values"]["doc"] == {"text": _varied_text(20_000)}


def test_setup_works_in_a_schema_whose_name_needs_quoting(dsn: str) -> None:
    schema = 'it\'s a "schema"'
    with psycopg.connect(dsn, autocommit=True) as conn:
        saver = PostgresSaver(conn, schema=schema)
        saver.setup()
        _store_a_large_value(saver)
        assert saver.get_tuple(config("big")) is not None


@pytest.mark.unpartitioned(reason="makes its own partitioned tables in a schema of its own")
def test_every_partition_of_partitioned_tables_gets_lz4_too(dsn: str) -> None:
    if not _server_has_lz4(dsn):
        pytest.skip("this PostgreSQL is built without lz4: setup() keeps pglz")
    with psycopg.connect(dsn, autocommit=True) as conn:
        saver = PostgresSaver(conn, schema="lz4_parts", partitions=3)
        saver.setup()
        _store_a_large_value(saver)
        settings = conn.execute(
            "SELECT c.relname, a.attcompression FROM pg_inherits AS i"
            " JOIN pg_class AS c ON c.oid = i.inhrelid"
            " JOIN pg_attribute AS a ON a.attrelid = c.oid"
            " WHERE a.attname IN ('blob', 'checkpoint')"
            " AND c.relnamespace = 'lz4_parts'::regnamespace"
        ).fetchall()
        assert len(settings) == 9  # three partitions of each of the three tables
        assert {compression for _, compression in settings} == {"l"}
        assert _blob_compression(conn, "lz4_parts.checkpoint_blobs") == "lz4"
