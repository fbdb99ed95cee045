"""CompressingSerializer: smaller blobs, read back by ours and by the official saver alike."""

from __future__ import annotations

import psycopg
import pytest
from langchain_core.messages import AIMessage, HumanMessage
from langgraph.checkpoint.postgres import PostgresSaver as OfficialSaver
from langgraph.checkpoint.serde.encrypted import EncryptedSerializer
from psycopg.rows import dict_row

from checkpoint_pg import CompressingSerializer, PostgresSaver
from tests.checkpoint.helpers import checkpoint, config

MESSAGES = [
    HumanMessage(content=f"question {i}: " + "please summarise the report " * 20)
    if i % 2 == 0
    else AIMessage(content=f"answer {i}: " + "the report says the numbers grew " * 20)
    for i in range(30)
]


def _blob_bytes(dsn: str) -> int:
    with psycopg.connect(dsn) as conn:
        row = conn.execute("SELECT coalesce(sum(length(blob)), 0) FROM checkpoint_blobs").fetchone()
    assert row is not None
    return int(row[0])


def _put_messages(dsn: str, saver_serde: CompressingSerializer | None) -> dict:  # type: ignore[type-arg]
    with psycopg.connect(dsn, autocommit=True) as conn:
        saver = PostgresSaver(conn, serde=saver_serde)
        saver.setup()
        cp = checkpoint({"messages": MESSAGES, "small": ["x"]})
        return saver.put(config("t"), cp, {}, cp["channel_versions"])  # type: ignore[return-value]


def test_large_values_are_stored_compressed_and_read_back(dsn: str) -> None:
    stored = _put_messages(dsn, CompressingSerializer())
    with psycopg.connect(dsn, autocommit=True) as conn:
        got = PostgresSaver(conn, serde=CompressingSerializer()).get_tuple(stored)
        types = dict(conn.execute("SELECT channel, type FROM checkpoint_blobs").fetchall())
    assert got is not None
    assert got.checkpoint["channel_values"]["messages"] == MESSAGES
    assert types == {"messages": "msgpack~zlib", "small": "msgpack"}


def test_compression_shrinks_a_message_history_several_fold(dsn: str, database_dsn: str) -> None:
    _put_messages(dsn, CompressingSerializer())
    _put_messages(database_dsn, None)
    assert _blob_bytes(dsn) * 3 < _blob_bytes(database_dsn)


@pytest.mark.nocitus("the official saver's reads are refused by Citus (docs/scaling.md)")
def test_the_official_saver_reads_compressed_values_with_the_same_serializer(dsn: str) -> None:
    stored = _put_messages(dsn, CompressingSerializer())
    with psycopg.connect(dsn, autocommit=True, prepare_threshold=0, row_factory=dict_row) as conn:
        got = OfficialSaver(conn, serde=CompressingSerializer()).get_tuple(stored)
    assert got is not None
    assert got.checkpoint["channel_values"]["messages"] == MESSAGES


def test_uncompressed_values_stay_readable_after_switching_compression_on(dsn: str) -> None:
    stored = _put_messages(dsn, None)
    with psycopg.connect(dsn, autocommit=True) as conn:
        got = PostgresSaver(conn, serde=CompressingSerializer()).get_tuple(stored)
    assert got is not None
    assert got.checkpoint["channel_values"]["messages"] == MESSAGES


def test_compression_composes_inside_encryption(dsn: str) -> None:
    serde = EncryptedSerializer.from_pycryptodome_aes(
        key=b"0123456789abcdef", serde=CompressingSerializer()
    )
    with psycopg.connect(dsn, autocommit=True) as conn:
        saver = PostgresSaver(conn, serde=serde)
        saver.setup()
        cp = checkpoint({"messages": MESSAGES})
        stored = saver.put(config("t"), cp, {}, cp["channel_versions"])
        got = saver.get_tuple(stored)
        (type_,) = conn.execute("SELECT type FROM checkpoint_blobs").fetchone() or ("",)
    assert got is not None
    assert got.checkpoint["channel_values"]["messages"] == MESSAGES
    assert type_ == "msgpack~zlib+aes"


def test_the_msgpack_allowlist_reaches_the_wrapped_serializer(
    dsn: str, caplog: pytest.LogCaptureFixture
) -> None:
    with psycopg.connect(dsn, autocommit=True) as conn:
        saver = PostgresSaver(conn, serde=CompressingSerializer())
        narrowed = saver.with_allowlist([("tests", "checkpoint", "Thing")])
    assert isinstance(narrowed.serde, CompressingSerializer)
    assert "does not support msgpack allowlist" not in caplog.text
