"""`encryption=RowBoundEncryption(...)`: every checkpoint, blob and write is sealed to its row.

A value that was planted unencrypted, altered, or moved from another row raises
`TamperedValueError` naming the row, and is never handed to the serializer. Rotation: rows
sealed with an older key stay readable while it is in the keyring.
"""

from __future__ import annotations

import base64
import json
import logging
import os
import pickle
from collections.abc import Iterator
from typing import Any

import psycopg
import pytest
from langgraph.checkpoint.serde.jsonplus import JsonPlusSerializer

from checkpoint_pg import (
    AsyncPostgresSaver,
    IntegrityError,
    PostgresSaver,
    RowBoundEncryption,
    TamperedValueError,
)
from checkpoint_pg.errors import InvalidKeyringError
from tests.checkpoint.helpers import checkpoint, config

SECRET = "the launch code is 0000"
K1 = os.urandom(32)
K2 = os.urandom(32)


class CountingSerializer(JsonPlusSerializer):
    """LangGraph's serializer, counting what it is asked to load."""

    def __init__(self) -> None:
        super().__init__()
        self.loads = 0

    def loads_typed(self, data: tuple[str, bytes]) -> Any:
        self.loads += 1
        return super().loads_typed(data)


@pytest.fixture
def conn(dsn: str) -> Iterator[psycopg.Connection[Any]]:
    with psycopg.connect(dsn, autocommit=True) as conn:
        yield conn


def saver_on(
    conn: psycopg.Connection[Any], keys: dict[str, bytes] | None = None, current: str | None = None
) -> PostgresSaver:
    enc = RowBoundEncryption(keys or {"k1": K1}, current)
    saver = PostgresSaver(conn, serde=CountingSerializer(), encryption=enc)
    saver.setup()
    return saver


def put_one(saver: PostgresSaver, thread_id: str = "t", values: Any = None) -> Any:
    cp = checkpoint(values or {"note": SECRET, "count": 42})
    stored = saver.put(
        config(thread_id), cp, {"source": "input", "step": 1}, cp["channel_versions"]
    )
    saver.put_writes(stored, [("note", SECRET + " (write)")], "task-1")
    return stored


def refused(saver: PostgresSaver, cfg: Any) -> TamperedValueError:
    serde = saver.serde
    assert isinstance(serde, CountingSerializer)
    before = serde.loads
    with pytest.raises(TamperedValueError) as caught:
        saver.get_tuple(cfg)
    assert serde.loads == before, "a refused row was handed to the serializer"
    return caught.value


def cid(cfg: Any) -> str:
    return str(cfg["configurable"]["checkpoint_id"])


# -- what is stored ----------------------------------------------------------------------------


def test_no_value_is_stored_in_plain_text_and_everything_reads_back(conn: Any) -> None:
    saver = saver_on(conn)
    stored = put_one(saver)
    got = saver.get_tuple(stored)
    assert got is not None
    assert got.checkpoint["channel_values"] == {"note": SECRET, "count": 42}
    assert got.checkpoint["channel_versions"] == {"note": "1", "count": "1"}
    assert got.pending_writes == [("task-1", "note", SECRET + " (write)")]
    assert got.metadata["source"] == "input"
    dump = str(conn.execute("SELECT * FROM checkpoints").fetchall())
    dump += str(conn.execute("SELECT * FROM checkpoint_blobs").fetchall())
    dump += str(conn.execute("SELECT * FROM checkpoint_writes").fetchall())
    assert SECRET not in dump
    assert "launch" not in dump


def test_stored_type_tags_say_the_value_is_sealed(conn: Any) -> None:
    put_one(saver_on(conn))
    types = {r[0] for r in conn.execute("SELECT type FROM checkpoint_blobs").fetchall()}
    types |= {r[0] for r in conn.execute("SELECT type FROM checkpoint_writes").fetchall()}
    assert types == {"msgpack+rowaead", "seal+rowaead"}


def test_checkpoint_jsonb_keeps_no_channel_value_inline(conn: Any) -> None:
    put_one(saver_on(conn))
    (values,) = conn.execute("SELECT checkpoint -> 'channel_values' FROM checkpoints").fetchone()
    assert values == {}


def test_list_and_a_langgraph_graph_work_encrypted(conn: Any) -> None:
    from langgraph.graph import START, MessagesState, StateGraph

    graph = StateGraph(MessagesState)
    graph.add_node("echo", lambda s: {"messages": [("ai", "heard " + s["messages"][-1].content)]})
    graph.add_edge(START, "echo")
    app = graph.compile(checkpointer=saver_on(conn))
    cfg: Any = {"configurable": {"thread_id": "chat"}}
    app.invoke({"messages": [("user", SECRET)]}, cfg)
    app.invoke({"messages": [("user", "again")]}, cfg)
    state = app.get_state(cfg)
    assert [m.content for m in state.values["messages"]] == [
        SECRET,
        "heard " + SECRET,
        "again",
        "heard again",
    ]
    assert len(list(app.get_state_history(cfg))) >= 4
    assert SECRET not in str(conn.execute("SELECT * FROM checkpoint_blobs").fetchall())


async def test_the_async_saver_reads_what_the_sync_saver_sealed(dsn: str, conn: Any) -> None:
    stored = put_one(saver_on(conn))
    async with await psycopg.AsyncConnection.connect(dsn, autocommit=True) as aconn:
        saver = AsyncPostgresSaver(aconn, encryption=RowBoundEncryption({"k1": K1}))
        got = await saver.aget_tuple(stored)
    assert got is not None
    assert got.checkpoint["channel_values"]["note"] == SECRET


# -- checkpoints -------------------------------------------------------------------------------


def test_a_planted_unencrypted_checkpoint_is_refused(conn: Any) -> None:
    saver = saver_on(conn)
    conn.execute(
        "INSERT INTO checkpoints (thread_id, checkpoint_ns, checkpoint_id, checkpoint, metadata)"
        " VALUES ('planted', '', 'c1', %s, '{}')",
        ['{"v": 4, "id": "c1", "channel_values": {"note": "planted"}, "channel_versions": {}}'],
    )
    error = refused(saver, config("planted"))
    assert error.row == "checkpoints(thread_id='planted', checkpoint_ns='', checkpoint_id='c1')"
    assert isinstance(error, IntegrityError)


def test_a_planted_inline_value_in_a_sealed_checkpoint_is_refused(conn: Any) -> None:
    saver = saver_on(conn)
    stored = put_one(saver)
    conn.execute(
        "UPDATE checkpoints SET checkpoint = jsonb_set(checkpoint, '{channel_values,extra}',"
        " '\"planted\"')"
    )
    assert "differs from its seal" in str(refused(saver, stored))


def test_altered_metadata_or_versions_are_refused(conn: Any) -> None:
    saver = saver_on(conn)
    stored = put_one(saver)
    conn.execute("UPDATE checkpoints SET metadata = metadata || '{\"step\": 99}'")
    refused(saver, stored)
    conn.execute("UPDATE checkpoints SET metadata = metadata || '{\"step\": 1}'")
    assert saver.get_tuple(stored) is not None  # put back as it was: it opens again
    conn.execute(
        "UPDATE checkpoints SET checkpoint = jsonb_set(checkpoint, '{channel_versions,count}',"
        " '\"2\"')"
    )
    refused(saver, stored)


def test_a_flipped_byte_in_a_checkpoint_seal_is_refused(conn: Any) -> None:
    saver = saver_on(conn)
    stored = put_one(saver)
    conn.execute(
        "UPDATE checkpoint_blobs SET blob = set_byte(blob, 40, get_byte(blob, 40) # 1)"
        " WHERE channel = '__checkpoint_pg_seal__'"
    )
    assert "altered" in str(refused(saver, stored))


def test_a_checkpoint_moved_to_another_thread_is_refused(conn: Any) -> None:
    saver = saver_on(conn)
    stored = put_one(saver, "victim")
    conn.execute(
        "INSERT INTO checkpoint_blobs SELECT 'attacker', checkpoint_ns, channel, version, type,"
        " blob FROM checkpoint_blobs WHERE thread_id = 'victim'"
    )
    conn.execute(
        "INSERT INTO checkpoints SELECT 'attacker', checkpoint_ns, checkpoint_id,"
        " parent_checkpoint_id, type, checkpoint, metadata FROM checkpoints"
    )
    error = refused(saver, config("attacker"))
    assert error.row.startswith("checkpoints(thread_id='attacker'")
    assert saver.get_tuple(stored) is not None


# -- blobs -------------------------------------------------------------------------------------


def test_a_planted_unencrypted_blob_is_refused(conn: Any) -> None:
    saver = saver_on(conn)
    stored = put_one(saver)
    kind, data = JsonPlusSerializer().dumps_typed("planted")
    conn.execute(
        "UPDATE checkpoint_blobs SET type = %s, blob = %s WHERE channel = 'note'", [kind, data]
    )
    error = refused(saver, stored)
    assert (
        error.row
        == "checkpoint_blobs(thread_id='t', checkpoint_ns='', channel='note', version='1')"
    )
    assert "not encrypted" in str(error)


def test_a_flipped_byte_in_a_blob_is_refused(conn: Any) -> None:
    saver = saver_on(conn)
    stored = put_one(saver)
    conn.execute(
        "UPDATE checkpoint_blobs SET blob = set_byte(blob, length(blob) - 1,"
        " get_byte(blob, length(blob) - 1) # 128) WHERE channel = 'note'"
    )
    assert refused(saver, stored).row.startswith("checkpoint_blobs(")


def test_a_changed_type_tag_is_refused(conn: Any) -> None:
    saver = saver_on(conn)
    stored = put_one(saver)
    conn.execute("UPDATE checkpoint_blobs SET type = 'json+rowaead' WHERE channel = 'note'")
    refused(saver, stored)


@pytest.mark.nocitus(
    "tampers with one thread's row from another's in one UPDATE, a join across shards Citus refuses"
)
def test_a_blob_moved_from_another_thread_or_channel_is_refused(conn: Any) -> None:
    saver = saver_on(conn)
    stored = put_one(saver, "victim")
    put_one(saver, "attacker", {"note": "mine", "count": 1})
    conn.execute(
        "UPDATE checkpoint_blobs AS a SET blob = v.blob FROM checkpoint_blobs AS v"
        " WHERE a.thread_id = 'attacker' AND v.thread_id = 'victim' AND a.channel = 'note'"
        " AND v.channel = 'note'"
    )
    refused(saver, config("attacker"))
    conn.execute(
        "UPDATE checkpoint_blobs AS a SET blob = c.blob FROM checkpoint_blobs AS c"
        " WHERE a.thread_id = 'victim' AND c.thread_id = 'victim' AND a.channel = 'note'"
        " AND c.channel = 'count'"
    )
    refused(saver, stored)


# -- writes ------------------------------------------------------------------------------------


def test_a_planted_unencrypted_write_is_refused(conn: Any) -> None:
    saver = saver_on(conn)
    stored = put_one(saver)
    kind, data = JsonPlusSerializer().dumps_typed("planted")
    conn.execute(
        "INSERT INTO checkpoint_writes (thread_id, checkpoint_ns, checkpoint_id, task_id,"
        " task_path, idx, channel, type, blob) VALUES ('t', '', %s, 'task-2', '', 0, 'note',"
        " %s, %s)",
        [cid(stored), kind, data],
    )
    error = refused(saver, stored)
    assert error.row == (
        f"checkpoint_writes(thread_id='t', checkpoint_ns='', checkpoint_id='{cid(stored)}',"
        " task_id='task-2', idx=0)"
    )


def test_a_flipped_byte_in_a_write_is_refused(conn: Any) -> None:
    saver = saver_on(conn)
    stored = put_one(saver)
    conn.execute("UPDATE checkpoint_writes SET blob = set_byte(blob, 30, get_byte(blob, 30) # 1)")
    assert refused(saver, stored).row.startswith("checkpoint_writes(")


def test_a_write_moved_to_another_task_or_checkpoint_is_refused(conn: Any) -> None:
    saver = saver_on(conn)
    stored = put_one(saver)
    conn.execute("UPDATE checkpoint_writes SET task_id = 'task-9'")
    refused(saver, stored)
    conn.execute("UPDATE checkpoint_writes SET task_id = 'task-1'")
    assert saver.get_tuple(stored) is not None
    later = put_one(saver)
    conn.execute(
        "UPDATE checkpoint_writes SET checkpoint_id = %s WHERE checkpoint_id = %s",
        [cid(later) + "-x", cid(later)],
    )
    conn.execute(
        "UPDATE checkpoint_writes SET checkpoint_id = %s WHERE checkpoint_id = %s",
        [cid(later), cid(stored)],
    )
    refused(saver, later)


# -- keys --------------------------------------------------------------------------------------


def test_old_rows_stay_readable_after_rotation_and_new_rows_use_the_current_key(
    conn: Any,
) -> None:
    old = put_one(saver_on(conn, {"k1": K1}))
    rotated = saver_on(conn, {"k1": K1, "k2": K2}, current="k2")
    assert rotated.get_tuple(old) is not None
    new = put_one(rotated, "t2")
    key_ids = conn.execute(
        "SELECT thread_id, convert_from(substring(blob from 3 for 2), 'UTF8')"
        " FROM checkpoint_blobs UNION SELECT thread_id,"
        " convert_from(substring(blob from 3 for 2), 'UTF8') FROM checkpoint_writes"
    ).fetchall()
    assert sorted(set(key_ids)) == [("t", "k1"), ("t2", "k2")]
    with pytest.raises(TamperedValueError, match="'k1', which is not in the keyring"):
        saver_on(conn, {"k2": K2}).get_tuple(old)
    assert saver_on(conn, {"k2": K2}).get_tuple(new) is not None


def test_a_wrong_key_under_the_same_id_is_refused(conn: Any) -> None:
    stored = put_one(saver_on(conn, {"k1": K1}))
    refused(saver_on(conn, {"k1": K2}), stored)


def test_keys_never_appear_in_reprs_errors_or_logs(
    conn: Any, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    enc = RowBoundEncryption({"k1": K1, "k2": K2})
    saver = PostgresSaver(conn, encryption=enc)
    saver.setup()
    stored = put_one(saver)
    conn.execute("UPDATE checkpoint_blobs SET blob = set_byte(blob, 30, get_byte(blob, 30) # 1)")
    with pytest.raises(TamperedValueError) as caught:
        saver.get_tuple(stored)
    texts = [repr(enc), str(enc), repr(saver), str(caught.value), repr(caught.value), caplog.text]
    for secret in (K1, K2):
        for form in (secret.hex(), repr(secret), b64(secret)):
            assert not any(form in text for text in texts)
    assert repr(enc) == "RowBoundEncryption(key_ids=['k1', 'k2'], current='k2')"
    with pytest.raises(TypeError):
        pickle.dumps(enc)


def b64(key: bytes) -> str:
    return base64.b64encode(key).decode()


@pytest.mark.parametrize(
    ("keys", "current", "message"),
    [
        ({}, None, "non-empty"),
        ({"k1": b"short"}, None, "key 'k1' must be 16, 24 or 32 bytes"),
        ({"k1": "not base64!"}, None, "key 'k1' is not valid base64"),
        ({"k1": K1}, "k9", "the current key 'k9' is not in the keyring"),
    ],
)
def test_a_malformed_keyring_is_refused_without_naming_a_key(
    keys: Any, current: str | None, message: str
) -> None:
    with pytest.raises(InvalidKeyringError, match=message) as caught:
        RowBoundEncryption(keys, current)
    assert K1.hex() not in str(caught.value)


def test_a_keyring_reads_from_json_with_base64_keys() -> None:
    text = json.dumps({"current": "b", "keys": {"a": b64(K1), "b": b64(K2)}})
    enc = RowBoundEncryption.from_json(text)
    assert enc.key_ids == ("a", "b")
    assert enc.current == "b"
    with pytest.raises(InvalidKeyringError, match="not valid JSON"):
        RowBoundEncryption.from_json("{k1: " + K1.hex())


@pytest.mark.nocitus("compares two threads' blobs with a join across shards, which Citus refuses")
def test_copy_thread_seals_every_value_again_for_the_new_thread(conn: Any) -> None:
    saver = saver_on(conn)
    put_one(saver, "a")
    saver.copy_thread("a", "b")
    got = saver.get_tuple(config("b"))
    assert got is not None
    assert got.checkpoint["channel_values"] == {"note": SECRET, "count": 42}
    assert got.pending_writes == [("task-1", "note", SECRET + " (write)")]
    same = conn.execute(
        "SELECT count(*) FROM checkpoint_blobs AS a JOIN checkpoint_blobs AS b USING (channel,"
        " version) WHERE a.thread_id = 'a' AND b.thread_id = 'b' AND a.blob = b.blob"
    ).fetchone()
    assert same == (0,)


def test_copy_thread_refuses_a_source_with_a_planted_value(conn: Any) -> None:
    saver = saver_on(conn)
    put_one(saver, "a")
    conn.execute("UPDATE checkpoint_writes SET blob = set_byte(blob, 30, get_byte(blob, 30) # 1)")
    with pytest.raises(TamperedValueError):
        saver.copy_thread("a", "b")
    assert saver.get_tuple(config("b")) is None


# -- encryption off ----------------------------------------------------------------------------


def _all_rows(conn: Any) -> list[Any]:
    return [
        conn.execute(
            "SELECT thread_id, checkpoint_ns, checkpoint_id, parent_checkpoint_id, type,"
            " checkpoint::text, metadata::text FROM checkpoints ORDER BY 1, 2, 3"
        ).fetchall(),
        conn.execute("SELECT * FROM checkpoint_blobs ORDER BY 1, 2, 3, 4").fetchall(),
        conn.execute("SELECT * FROM checkpoint_writes ORDER BY 1, 2, 3, 4, 5").fetchall(),
    ]


def _write_the_same_thread(saver: Any) -> None:
    cp = checkpoint({"note": SECRET, "count": 42, "items": [1, "two", {"three": 3.0}]})
    cp["id"] = "1f1f0000-0000-6000-8000-000000000001"
    cp["ts"] = "2026-12-05T00:00:00+00:00"
    stored = saver.put(config("t"), cp, {"source": "input", "step": 1}, cp["channel_versions"])
    saver.put_writes(stored, [("note", SECRET), ("items", [4])], "task-1", "path")


def test_without_encryption_rows_are_byte_identical_to_the_official_savers(
    dsn: str, conn: Any
) -> None:
    from langgraph.checkpoint.postgres import PostgresSaver as OfficialSaver
    from psycopg.rows import dict_row

    ours = PostgresSaver(conn)
    ours.setup()
    _write_the_same_thread(ours)
    written_by_ours = _all_rows(conn)
    conn.execute("TRUNCATE checkpoints, checkpoint_blobs, checkpoint_writes")
    with psycopg.connect(
        dsn, autocommit=True, prepare_threshold=0, row_factory=dict_row
    ) as official_conn:
        _write_the_same_thread(OfficialSaver(official_conn))
    assert _all_rows(conn) == written_by_ours


def test_a_deleted_or_emptied_value_blob_is_noticed(conn: Any) -> None:
    saver = saver_on(conn)
    stored = put_one(saver)
    conn.execute("UPDATE checkpoint_blobs SET type = 'empty', blob = NULL WHERE channel = 'note'")
    assert "channel 'note' is missing" in str(refused(saver, stored))
    conn.execute("DELETE FROM checkpoint_blobs WHERE channel = 'note'")
    refused(saver, stored)


def test_an_interrupted_graph_resumes_with_encryption(conn: Any) -> None:
    from langgraph.graph import START, MessagesState, StateGraph
    from langgraph.types import Command, interrupt

    def ask(state: MessagesState) -> dict[str, Any]:
        return {"messages": [("ai", "approved: " + interrupt("approve?"))]}

    graph = StateGraph(MessagesState)
    graph.add_node("ask", ask)
    graph.add_edge(START, "ask")
    app = graph.compile(checkpointer=saver_on(conn))
    cfg: Any = {"configurable": {"thread_id": "approval"}}
    app.invoke({"messages": [("user", SECRET)]}, cfg)
    assert app.get_state(cfg).next == ("ask",)
    app.invoke(Command(resume="yes"), cfg)
    assert app.get_state(cfg).values["messages"][-1].content == "approved: yes"


def _delta_history(saver: PostgresSaver) -> Any:
    first = checkpoint({"log": ["seed"]})
    parent = saver.put(config("d"), first, {}, first["channel_versions"])
    saver.put_writes(parent, [("log", "w1"), ("log", "w2")], "task-1")
    second = checkpoint({}, log="1")
    second["channel_versions"] = {"log": "1"}
    child = saver.put(parent, second, {}, {})
    return saver.get_delta_channel_history(config=child, channels=["log"])


def test_delta_channel_history_is_the_same_encrypted_and_plain(dsn: str, conn: Any) -> None:
    encrypted = _delta_history(saver_on(conn))
    conn.execute("TRUNCATE checkpoints, checkpoint_blobs, checkpoint_writes")
    plain = PostgresSaver(conn)
    assert encrypted == _delta_history(plain)
    assert encrypted["log"]["writes"] == [("task-1", "log", "w1"), ("task-1", "log", "w2")]
    assert encrypted["log"]["seed"] == ["seed"]
