"""storage="delta": a list value that extends the channel's previous version is stored as its
new elements, against that version; everything a saver does stays exact.

The whole graph suite also runs in this mode (``CHECKPOINT_PG_TEST_STORAGE=delta``, see
tests/checkpoint/conftest.py); the tests here specify what is particular to it.
"""

from __future__ import annotations

import operator
import threading
from collections.abc import Iterator
from typing import Annotated, Any, ClassVar

import psycopg
import pytest
from langchain_core.messages import AIMessage, AnyMessage, HumanMessage, RemoveMessage
from langgraph.checkpoint.base.id import uuid6
from langgraph.checkpoint.postgres import PostgresSaver as OfficialSaver
from langgraph.checkpoint.serde.encrypted import EncryptedSerializer
from langgraph.graph import START, StateGraph
from langgraph.graph.message import add_messages
from psycopg_pool import ConnectionPool
from typing_extensions import TypedDict

from checkpoint_pg import PostgresSaver, _delta
from checkpoint_pg.encryption import RowBoundEncryption
from checkpoint_pg.errors import DeltaStorageError, InvalidConfigError
from checkpoint_pg.serde import CompressingSerializer

AES_KEY = b"0123456789abcdef0123456789abcdef"


class Chat(TypedDict):
    messages: Annotated[list[AnyMessage], add_messages]
    log: Annotated[list[str], operator.add]


def _reply(state: Chat) -> dict[str, Any]:
    n = len(state["messages"])
    last = state["messages"][-1].content
    if last == "forget":  # RemoveMessage: the list shrinks
        return {"messages": [RemoveMessage(id=m.id) for m in state["messages"][:-1]]}
    if last == "summarise":  # the list is rewritten
        removed = [RemoveMessage(id=m.id) for m in state["messages"]]
        return {"messages": [*removed, AIMessage(content="summary", id=f"s{n}")]}
    return {
        "messages": [AIMessage(content=f"reply {n} " + "words " * 40, id=f"a{n}")],
        "log": [f"turn {n}"],
    }


def chat_graph(saver: Any) -> Any:
    builder = StateGraph(Chat)
    builder.add_node("reply", _reply)
    builder.add_edge(START, "reply")
    return builder.compile(checkpointer=saver)


def cfg(thread_id: str, **configurable: Any) -> Any:
    return {"configurable": {"thread_id": thread_id, **configurable}}


def say(graph: Any, thread_id: str, *texts: str) -> None:
    for i, text in enumerate(texts):
        graph.invoke({"messages": [HumanMessage(content=text, id=f"h-{text}-{i}")]}, cfg(thread_id))


def history(graph: Any, thread_id: str) -> list[Any]:
    return [
        (s.values, s.next, s.metadata, s.config["configurable"]["checkpoint_id"] is not None)
        for s in graph.get_state_history(cfg(thread_id))
    ]


def blob_types(conn: psycopg.Connection[Any], thread_id: str, channel: str) -> list[str]:
    rows = conn.execute(
        "SELECT type FROM checkpoint_blobs WHERE thread_id = %s AND channel = %s ORDER BY version",
        (thread_id, channel),
    ).fetchall()
    return ["delta" if _delta.is_delta(t) else t for (t,) in rows]


def stored_bytes(conn: psycopg.Connection[Any], thread_id: str) -> int:
    row = conn.execute(
        "SELECT sum(octet_length(blob)) FROM checkpoint_blobs WHERE thread_id = %s", (thread_id,)
    ).fetchone()
    assert row is not None
    return int(row[0])


@pytest.fixture
def conn(dsn: str) -> Iterator[psycopg.Connection[Any]]:
    with psycopg.connect(dsn, autocommit=True) as c:
        PostgresSaver(c).setup()
        yield c


@pytest.fixture
def delta(conn: psycopg.Connection[Any]) -> PostgresSaver:
    return PostgresSaver(conn, storage="delta")


TURNS = ("hello", "how are you", "tell me more", "and then", "thanks")


def chain_runs(conn: psycopg.Connection[Any], thread_id: str, channel: str) -> list[list[int]]:
    """The channel's rows in version order, cut into chains: [whole bytes, delta bytes...]."""
    rows = conn.execute(
        "SELECT type, blob FROM checkpoint_blobs WHERE thread_id = %s AND channel = %s"
        " ORDER BY version",
        (thread_id, channel),
    ).fetchall()
    runs: list[list[int]] = []
    for type_, blob in rows:
        if _delta.is_delta(type_):
            runs[-1].append(len(_delta.decode_delta(blob)[2]))
        else:
            runs.append([len(blob)])
    return runs


def test_a_growing_list_is_stored_as_deltas_and_whole_each_time_it_has_about_doubled(
    conn: psycopg.Connection[Any], delta: PostgresSaver
) -> None:
    say(chat_graph(delta), "t", *TURNS * 3)
    runs = chain_runs(conn, "t", "messages")
    assert sum(len(run) - 1 for run in runs) > 3 * len(runs)  # mostly deltas
    for whole, *deltas in runs:  # a chain's deltas never outweigh its whole value
        assert sum(deltas) <= whole
    assert "delta" in blob_types(conn, "t", "log")  # operator.add lists too


def test_a_thread_takes_fewer_bytes_than_in_the_official_format(
    conn: psycopg.Connection[Any], delta: PostgresSaver
) -> None:
    say(chat_graph(PostgresSaver(conn)), "official", *TURNS * 4)
    say(chat_graph(delta), "delta", *TURNS * 4)
    assert stored_bytes(conn, "delta") * 4 < stored_bytes(conn, "official")


def test_histories_are_identical_to_the_official_formats(
    conn: psycopg.Connection[Any], delta: PostgresSaver
) -> None:
    turns = (*TURNS, "forget", "again", "summarise", "after the summary")
    say(chat_graph(PostgresSaver(conn)), "official", *turns)
    say(chat_graph(delta), "delta", *turns)
    assert history(chat_graph(delta), "delta") == history(chat_graph(delta), "official")


def test_a_list_that_shrinks_or_is_rewritten_is_stored_whole(
    conn: psycopg.Connection[Any], delta: PostgresSaver
) -> None:
    say(chat_graph(delta), "t", "hello", "more", "forget")
    assert blob_types(conn, "t", "messages")[-1] == "msgpack"
    say(chat_graph(delta), "t", "again", "summarise")
    assert blob_types(conn, "t", "messages")[-1] == "msgpack"


def test_time_travel_and_a_fork_from_an_old_checkpoint_read_exactly(
    delta: PostgresSaver,
) -> None:
    graph = chat_graph(delta)
    say(graph, "t", *TURNS)
    old = list(graph.get_state_history(cfg("t")))[4]
    forked = graph.update_state(old.config, {"messages": [HumanMessage(content="x", id="fx")]})
    graph.invoke(None, forked)
    state = graph.get_state(forked)
    assert [m.content for m in state.values["messages"]][: len(old.values["messages"])] == [
        m.content for m in old.values["messages"]
    ]
    assert graph.get_state(old.config).values == old.values
    fresh = chat_graph(PostgresSaver(delta.conn, storage="delta"))  # type: ignore[arg-type]
    assert fresh.get_state(old.config).values == old.values


def test_a_new_saver_continues_a_thread_in_deltas_after_reading_it(
    conn: psycopg.Connection[Any],
) -> None:
    say(chat_graph(PostgresSaver(conn, storage="delta")), "t", "hello", "more")
    count = len(blob_types(conn, "t", "messages"))
    say(chat_graph(PostgresSaver(conn, storage="delta")), "t", "after a restart")
    assert "delta" in blob_types(conn, "t", "messages")[count:]


def test_an_official_format_thread_continues_in_deltas(conn: psycopg.Connection[Any]) -> None:
    say(chat_graph(PostgresSaver(conn)), "t", "hello", "more")
    say(chat_graph(PostgresSaver(conn, storage="delta")), "t", "then deltas")
    assert blob_types(conn, "t", "messages")[-1] == "delta"


class CountingCursor(psycopg.Cursor[Any]):
    executed: ClassVar[list[str]] = []

    def execute(self, query: Any, params: Any = None, **kwargs: Any) -> Any:  # type: ignore[override]
        CountingCursor.executed.append(str(query))
        return super().execute(query, params, **kwargs)


def extend(saver: PostgresSaver, latest: Any, text: str) -> Any:
    """put a child of checkpoint tuple `latest` whose message list has one more message."""
    checkpoint = {**latest.checkpoint, "id": str(uuid6(clock_seq=-1))}
    messages = [*latest.checkpoint["channel_values"]["messages"], HumanMessage(text, id=text)]
    version = saver.get_next_version(checkpoint["channel_versions"]["messages"])
    checkpoint["channel_values"] = {**checkpoint["channel_values"], "messages": messages}
    checkpoint["channel_versions"] = {**checkpoint["channel_versions"], "messages": version}
    return saver.put(latest.config, checkpoint, {}, {"messages": version})


def test_get_tuple_and_put_of_a_delta_value_are_one_statement_each(dsn: str) -> None:
    with psycopg.connect(dsn, autocommit=True, cursor_factory=CountingCursor) as c:
        saver = PostgresSaver(c, storage="delta")
        saver.setup()
        say(chat_graph(saver), "t", *TURNS)
        CountingCursor.executed = []
        latest = saver.get_tuple(cfg("t"))
        assert len(CountingCursor.executed) == 1
        CountingCursor.executed = []
        extend(saver, latest, "x")
        assert len(CountingCursor.executed) == 1
        assert blob_types(c, "t", "messages")[-1] == "delta"


def test_a_delta_is_never_written_against_a_base_that_is_gone(
    conn: psycopg.Connection[Any], delta: PostgresSaver
) -> None:
    say(chat_graph(delta), "t", "hello", "more")
    latest = delta.get_tuple(cfg("t"))  # the saver now knows this version of the channel
    assert latest is not None
    base = latest.checkpoint["channel_versions"]["messages"]
    # ... which goes, as when a caller's transaction that wrote it rolls back.
    conn.execute("DELETE FROM checkpoint_blobs WHERE version = %s", (base,))
    stored = extend(delta, latest, "then")
    assert blob_types(conn, "t", "messages")[-1] == "msgpack"  # stored whole instead
    got = delta.get_tuple(stored)
    assert got is not None
    assert got.checkpoint["channel_values"]["messages"][-1].content == "then"


def test_a_chain_is_cut_by_a_whole_value_after_max_chain_deltas(
    conn: psycopg.Connection[Any], delta: PostgresSaver, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(_delta, "MAX_CHAIN", 2)
    say(chat_graph(delta), "t", *TURNS * 3)
    runs = chain_runs(conn, "t", "messages")
    assert max(len(run) for run in runs) == 3  # a whole value and two deltas


def test_prune_keep_latest_keeps_every_base_the_latest_checkpoint_needs(
    delta: PostgresSaver,
) -> None:
    graph = chat_graph(delta)
    say(graph, "t", *TURNS)
    before = graph.get_state(cfg("t")).values
    delta.prune(["t"], strategy="keep_latest")
    assert len(list(delta.list(cfg("t")))) == 1
    assert (
        chat_graph(PostgresSaver(delta.conn, storage="delta")).get_state(cfg("t")).values == before
    )  # type: ignore[arg-type]


def test_delete_for_runs_keeps_the_bases_remaining_checkpoints_need(
    delta: PostgresSaver,
) -> None:
    graph = chat_graph(delta)
    for run, text in enumerate(("hello", "more", "later", "last")):
        message = HumanMessage(content=text, id=f"h{run}")
        graph.invoke({"messages": [message]}, {**cfg("t"), "metadata": {"run_id": f"r{run}"}})
    delta.delete_for_runs(["r1", "r3"])  # runs 0 and 2 stay, built on run 1's deltas
    fresh = chat_graph(PostgresSaver(delta.conn, storage="delta"))  # type: ignore[arg-type]
    remaining = list(graph.get_state_history(cfg("t")))
    assert {s.metadata["run_id"] for s in remaining} == {"r0", "r2"}
    for snapshot in remaining:
        assert fresh.get_state(snapshot.config).values == snapshot.values


def test_copy_thread_copies_the_chains_a_copy_needs(delta: PostgresSaver) -> None:
    graph = chat_graph(delta)
    say(graph, "t", *TURNS)
    delta.copy_thread("t", "copy")
    fresh = chat_graph(PostgresSaver(delta.conn, storage="delta"))  # type: ignore[arg-type]
    assert history(fresh, "copy") == history(fresh, "t")


@pytest.mark.parametrize(
    "serde",
    [EncryptedSerializer.from_pycryptodome_aes(key=AES_KEY), CompressingSerializer()],
    ids=["encrypted", "compressing"],
)
def test_deltas_go_through_the_saver_serializer(conn: psycopg.Connection[Any], serde: Any) -> None:
    saver = PostgresSaver(conn, serde=serde, storage="delta")
    say(chat_graph(saver), "t", *TURNS)
    say(chat_graph(PostgresSaver(conn, serde=serde)), "plain", *TURNS)
    assert blob_types(conn, "t", "messages")[-1] == "delta"
    reader = chat_graph(PostgresSaver(conn, serde=serde, storage="delta"))
    assert history(reader, "t") == history(reader, "plain")


@pytest.mark.nocitus("the official saver's reads are refused by Citus (docs/scaling.md)")
def test_the_official_saver_cannot_read_delta_rows_and_fails_loudly_on_them(
    dsn: str, delta: PostgresSaver
) -> None:
    say(chat_graph(delta), "t", *TURNS)
    with (
        psycopg.connect(dsn, autocommit=True, prepare_threshold=0) as c,
        pytest.raises(NotImplementedError, match="Unknown serialization type: cpg-delta:"),
    ):
        OfficialSaver(c).get_tuple(cfg("t"))  # type: ignore[arg-type]


def test_a_saver_in_the_official_format_refuses_delta_rows_naming_the_way_out(
    conn: psycopg.Connection[Any], delta: PostgresSaver
) -> None:
    say(chat_graph(delta), "t", *TURNS)
    with pytest.raises(DeltaStorageError, match="storage='delta'"):
        PostgresSaver(conn).get_tuple(cfg("t"))


def test_concurrent_threads_in_delta_storage_each_read_back_exactly(dsn: str) -> None:
    with ConnectionPool(dsn, min_size=4, max_size=4, kwargs={"autocommit": True}) as pool:
        saver = PostgresSaver(pool, storage="delta")
        saver.setup()
        graph = chat_graph(saver)
        errors: list[BaseException] = []

        def run(name: str) -> None:
            try:
                say(graph, name, *TURNS)
            except BaseException as exc:
                errors.append(exc)

        workers = [threading.Thread(target=run, args=(f"t{i}",)) for i in range(6)]
        for w in workers:
            w.start()
        for w in workers:
            w.join()
        assert errors == []
        reader = chat_graph(PostgresSaver(pool, storage="delta"))
        expected = [m.content for m in reader.get_state(cfg("t0")).values["messages"]]
        for i in range(6):
            got = reader.get_state(cfg(f"t{i}")).values["messages"]
            assert [m.content for m in got] == expected


def test_storage_must_be_official_or_delta() -> None:
    with pytest.raises(InvalidConfigError, match="storage"):
        PostgresSaver(None, storage="compact")  # type: ignore[arg-type]


def test_delta_storage_does_not_combine_with_row_bound_encryption() -> None:
    keys = RowBoundEncryption({"k": AES_KEY})
    with pytest.raises(InvalidConfigError, match="RowBoundEncryption"):
        PostgresSaver(None, storage="delta", encryption=keys)  # type: ignore[arg-type]
