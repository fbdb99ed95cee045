"""With an encrypting serializer, no channel value is left in plain text, and the official
saver (given the same serializer) still reads everything back."""

from __future__ import annotations

import psycopg
import pytest
from langgraph.checkpoint.postgres import PostgresSaver as OfficialSaver
from langgraph.checkpoint.serde.encrypted import EncryptedSerializer
from psycopg.rows import dict_row

from checkpoint_pg import PostgresSaver
from tests.checkpoint.helpers import checkpoint, config

SECRET = "the launch code is 0000"


def _serde() -> EncryptedSerializer:
    return EncryptedSerializer.from_pycryptodome_aes(key=b"0123456789abcdef")


def _dump_all_tables(dsn: str) -> str:
    with psycopg.connect(dsn) as conn:
        parts = [
            str(row)
            for table in ("checkpoints", "checkpoint_blobs", "checkpoint_writes")
            for row in conn.execute(f"SELECT * FROM {table}").fetchall()
        ]
    return "\n".join(parts)


def test_primitive_values_go_through_an_encrypting_serializer(dsn: str) -> None:
    with psycopg.connect(dsn, autocommit=True) as conn:
        saver = PostgresSaver(conn, serde=_serde())
        saver.setup()
        cp = checkpoint({"note": SECRET, "count": 42})
        stored = saver.put(config("t"), cp, {}, cp["channel_versions"])
        got = saver.get_tuple(stored)
    assert got is not None
    assert got.checkpoint["channel_values"] == {"note": SECRET, "count": 42}
    assert SECRET not in _dump_all_tables(dsn)


@pytest.mark.nocitus("the official saver's reads are refused by Citus (docs/scaling.md)")
def test_the_official_saver_reads_encrypted_primitives_stored_as_blobs(dsn: str) -> None:
    with psycopg.connect(dsn, autocommit=True) as conn:
        saver = PostgresSaver(conn, serde=_serde())
        saver.setup()
        cp = checkpoint({"note": SECRET})
        stored = saver.put(config("t"), cp, {}, cp["channel_versions"])
    with psycopg.connect(dsn, autocommit=True, prepare_threshold=0, row_factory=dict_row) as conn:
        got = OfficialSaver(conn, serde=_serde()).get_tuple(stored)
    assert got is not None
    assert got.checkpoint["channel_values"]["note"] == SECRET


def test_the_official_inline_format_is_kept_with_a_plain_serializer(dsn: str) -> None:
    with psycopg.connect(dsn, autocommit=True) as conn:
        saver = PostgresSaver(conn)
        saver.setup()
        cp = checkpoint({"note": "plain"})
        saver.put(config("t"), cp, {}, cp["channel_versions"])
        row = conn.execute(
            "SELECT checkpoint -> 'channel_values' ->> 'note' FROM checkpoints"
        ).fetchone()
    assert row == ("plain",)
