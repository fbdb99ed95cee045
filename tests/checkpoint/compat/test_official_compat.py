"""Compatibility with the official `langgraph-checkpoint-postgres` 3.2.0, in both directions.

A database set up and written by either package is read, continued, pruned and set up again
by the other, through real LangGraph graphs as well as direct saver calls. Ours is always
opened on the very connection a user of the official saver already has (``autocommit=True,
prepare_threshold=0, row_factory=dict_row``): switching is a change of import, nothing more.
"""

from __future__ import annotations

import operator
from collections.abc import AsyncIterator, Callable, Iterator, Sequence
from contextlib import (
    AbstractAsyncContextManager,
    AbstractContextManager,
    asynccontextmanager,
    contextmanager,
)
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Annotated, Any

import psycopg
import pytest
from langchain_core.messages import AIMessage, AnyMessage, BaseMessage, HumanMessage
from langchain_core.runnables import RunnableConfig
from langgraph.channels import DeltaChannel
from langgraph.checkpoint.base import (
    BaseCheckpointSaver,
    Checkpoint,
    CheckpointTuple,
    empty_checkpoint,
)
from langgraph.checkpoint.postgres import PostgresSaver as OfficialSaver
from langgraph.checkpoint.postgres.aio import AsyncPostgresSaver as OfficialAsyncSaver
from langgraph.checkpoint.postgres.base import MIGRATIONS
from langgraph.checkpoint.serde.base import SerializerProtocol
from langgraph.checkpoint.serde.encrypted import EncryptedSerializer
from langgraph.checkpoint.serde.types import TASKS
from langgraph.graph import START, StateGraph
from langgraph.graph.message import add_messages
from langgraph.graph.state import CompiledStateGraph
from langgraph.types import Command, Send, interrupt
from psycopg.rows import dict_row
from psycopg_pool import AsyncConnectionPool, ConnectionPool
from typing_extensions import TypedDict

from checkpoint_pg import AsyncPostgresSaver, PostgresSaver
from tests.harness import DatabaseFactory

# The official saver reads with a statement Citus cannot plan; tests/checkpoint/test_citus.py
# pins down which official calls work on distributed tables.
pytestmark = pytest.mark.nocitus("the official saver's reads are refused by Citus")

# What the official savers require of a connection (their docs; `from_conn_string` uses it).
OFFICIAL_CONNECT: dict[str, Any] = {
    "autocommit": True,
    "prepare_threshold": 0,
    "row_factory": dict_row,
}
OFFICIAL_TABLES = ["checkpoint_migrations", "checkpoints", "checkpoint_blobs", "checkpoint_writes"]
# The task_path column (migration 9) is the last official migration; 2.x databases stop before.
TASK_PATH_MIGRATION = 9

# -- savers ---------------------------------------------------------------------------------------


@contextmanager
def open_official(
    dsn: str, serde: SerializerProtocol | None = None
) -> Iterator[BaseCheckpointSaver[str]]:
    with psycopg.connect(dsn, **OFFICIAL_CONNECT) as conn:
        yield OfficialSaver(conn, serde=serde)


@contextmanager
def open_ours(
    dsn: str, serde: SerializerProtocol | None = None
) -> Iterator[BaseCheckpointSaver[str]]:
    with psycopg.connect(dsn, **OFFICIAL_CONNECT) as conn:
        yield PostgresSaver(conn, serde=serde)


@contextmanager
def open_ours_pooled(dsn: str) -> Iterator[BaseCheckpointSaver[str]]:
    with ConnectionPool(
        dsn, min_size=1, max_size=2, kwargs=dict(OFFICIAL_CONNECT), open=False
    ) as pool:
        yield PostgresSaver(pool)


@contextmanager
def open_ours_pipelined(dsn: str) -> Iterator[BaseCheckpointSaver[str]]:
    with psycopg.connect(dsn, **OFFICIAL_CONNECT) as conn, conn.pipeline() as pipe:
        yield PostgresSaver(conn, pipe)


@asynccontextmanager
async def aopen_official(dsn: str) -> AsyncIterator[BaseCheckpointSaver[str]]:
    async with await psycopg.AsyncConnection.connect(dsn, **OFFICIAL_CONNECT) as conn:
        yield OfficialAsyncSaver(conn)


@asynccontextmanager
async def aopen_ours(dsn: str) -> AsyncIterator[BaseCheckpointSaver[str]]:
    async with AsyncConnectionPool(
        dsn, min_size=1, max_size=2, kwargs=dict(OFFICIAL_CONNECT), open=False
    ) as pool:
        yield AsyncPostgresSaver(pool)


SYNC: dict[str, Callable[..., AbstractContextManager[BaseCheckpointSaver[str]]]] = {
    "official": open_official,
    "ours": open_ours,
}
ASYNC: dict[str, Callable[[str], AbstractAsyncContextManager[BaseCheckpointSaver[str]]]] = {
    "official": aopen_official,
    "ours": aopen_ours,
}
DIRECTIONS = [
    pytest.param(("official", "ours"), id="official-writes-ours-reads"),
    pytest.param(("ours", "official"), id="ours-writes-official-reads"),
]


@dataclass
class Pair:
    """The saver that wrote a database and the other package's saver on the same database."""

    writer: BaseCheckpointSaver[str]
    reader: BaseCheckpointSaver[str]


@pytest.fixture(params=DIRECTIONS)
def pair(request: pytest.FixtureRequest, dsn: str) -> Iterator[Pair]:
    """Both savers on one database; each ran `setup()` on start, the writer first."""
    writer_name, reader_name = request.param
    with SYNC[writer_name](dsn) as writer, SYNC[reader_name](dsn) as reader:
        writer.setup()  # type: ignore[attr-defined]
        reader.setup()  # type: ignore[attr-defined]
        yield Pair(writer, reader)


@pytest.fixture(params=DIRECTIONS)
async def apair(request: pytest.FixtureRequest, dsn: str) -> AsyncIterator[Pair]:
    """`pair` with the async savers."""
    writer_name, reader_name = request.param
    async with ASYNC[writer_name](dsn) as writer, ASYNC[reader_name](dsn) as reader:
        await writer.setup()  # type: ignore[attr-defined]
        await reader.setup()  # type: ignore[attr-defined]
        yield Pair(writer, reader)


@pytest.fixture
def official_dsn(db_factory: DatabaseFactory) -> Iterator[str]:
    """A second database, set up by the official saver alone: the reference schema."""
    with db_factory.database() as reference:
        with open_official(reference) as official:
            official.setup()  # type: ignore[attr-defined]
        yield reference


# -- graphs ---------------------------------------------------------------------------------------


class State(TypedDict):
    messages: Annotated[list[AnyMessage], add_messages]
    count: Annotated[int, operator.add]


class DeltaState(TypedDict):
    notes: Annotated[list[str], DeltaChannel(operator.add, snapshot_frequency=2)]


# Replies carry ids made from their text: a reply read back from pending writes gets the same
# id every time, so whole states compare equal (add_messages would draw a random one).
def reply(text: str) -> AIMessage:
    return AIMessage(text, id=f"reply:{text}")


def echo(state: State) -> dict[str, Any]:
    return {"messages": [reply(f"echo: {state['messages'][-1].content}")], "count": 1}


def approve(state: State) -> dict[str, Any]:
    answer = interrupt(f"approve {state['messages'][-1].content!r}?")
    return {"messages": [reply(f"approved: {answer}")], "count": 1}


def build_graph(saver: BaseCheckpointSaver[str], *, approval: bool = True) -> CompiledStateGraph:
    """A chat turn: `echo` replies; with approval, `approve` runs beside it and interrupts.

    Running both in one super-step leaves `echo`'s writes pending next to the interrupt, so
    resuming must replay them from the database rather than run `echo` again.
    """
    builder = StateGraph(State)
    builder.add_node("echo", echo)
    builder.add_edge(START, "echo")
    if approval:
        builder.add_node("approve", approve)
        builder.add_edge(START, "approve")
    return builder.compile(checkpointer=saver)


def build_parent_graph(saver: BaseCheckpointSaver[str]) -> CompiledStateGraph:
    """`echo`, then a subgraph that asks for approval (its checkpoints get their own namespace)."""
    sub = StateGraph(State)
    sub.add_node("approve", approve)
    sub.add_edge(START, "approve")
    parent = StateGraph(State)
    parent.add_node("echo", echo)
    parent.add_node("review", sub.compile())
    parent.add_edge(START, "echo")
    parent.add_edge("echo", "review")
    return parent.compile(checkpointer=saver)


class FanState(TypedDict):
    items: list[str]
    results: Annotated[list[str], operator.add]


def build_fan_out_graph(saver: BaseCheckpointSaver[str], calls: list[str]) -> CompiledStateGraph:
    """One `work` task per item (`Send`); the one for "b" waits for approval. `calls` logs runs."""

    def fan_out(state: FanState) -> list[Send]:
        return [Send("work", {"item": item}) for item in state["items"]]

    def work(arg: dict[str, Any]) -> dict[str, Any]:
        item = arg["item"]
        calls.append(item)
        if item == "b":
            item = f"b:{interrupt('approve b?')}"
        return {"results": [item]}

    builder = StateGraph(FanState)
    builder.add_node("work", work)
    builder.add_conditional_edges(START, fan_out, ["work"])
    return builder.compile(checkpointer=saver)


def build_delta_graph(saver: BaseCheckpointSaver[str]) -> CompiledStateGraph:
    def note(state: DeltaState) -> dict[str, Any]:
        return {"notes": [f"note {len(state['notes'])}"]}

    builder = StateGraph(DeltaState)
    builder.add_node("note", note)
    builder.add_edge(START, "note")
    return builder.compile(checkpointer=saver)


def thread(thread_id: str = "thread-1") -> RunnableConfig:
    return {"configurable": {"thread_id": thread_id}}


def write_interrupted_thread(
    saver: BaseCheckpointSaver[str], thread_id: str = "thread-1"
) -> RunnableConfig:
    """Two turns: the first approved, the second waiting on its approval (pending writes)."""
    graph, config = build_graph(saver), thread(thread_id)
    graph.invoke({"messages": [HumanMessage("hi")]}, config)
    graph.invoke(Command(resume="yes"), config)
    graph.invoke({"messages": [HumanMessage("again")]}, config)
    return config


async def awrite_interrupted_thread(saver: BaseCheckpointSaver[str]) -> RunnableConfig:
    graph, config = build_graph(saver), thread()
    await graph.ainvoke({"messages": [HumanMessage("hi")]}, config)
    await graph.ainvoke(Command(resume="yes"), config)
    await graph.ainvoke({"messages": [HumanMessage("again")]}, config)
    return config


# Both turns, resumed with "yes" then "ok": the pending `echo` reply comes from the database.
RESUMED_CONVERSATION = ["hi", "approved: yes", "echo: hi", "again", "approved: ok", "echo: again"]


def texts(messages: Sequence[BaseMessage]) -> list[str]:
    return [str(m.content) for m in messages]


# -- assertions -----------------------------------------------------------------------------------


def assert_same_tuple(got: CheckpointTuple | None, want: CheckpointTuple | None) -> None:
    assert want is not None
    assert got is not None
    assert got.config == want.config
    assert got.checkpoint == want.checkpoint
    assert got.metadata == want.metadata
    assert got.parent_config == want.parent_config
    assert got.pending_writes == want.pending_writes


def checkpoint_ids(tuples: Sequence[CheckpointTuple]) -> list[str]:
    return [t.config["configurable"]["checkpoint_id"] for t in tuples]


def retarget(config: RunnableConfig | None, thread_id: str) -> RunnableConfig | None:
    if config is None:
        return None
    return {"configurable": {**config["configurable"], "thread_id": thread_id}}


def migration_versions(dsn: str) -> list[int]:
    with psycopg.connect(dsn) as conn:
        return [v for (v,) in conn.execute("SELECT v FROM checkpoint_migrations ORDER BY v")]


def table_definitions(dsn: str) -> dict[str, list[tuple[Any, ...]]]:
    """Columns, key constraints and indexes of the official tables, as the catalog reports them.

    Index definitions drop the schema name, so databases whose tables live in different schemas
    (the test harness may isolate tests by schema) compare equal when their tables do.
    """
    with psycopg.connect(dsn) as conn:
        columns = conn.execute(
            """
            SELECT table_name, ordinal_position, column_name, data_type, is_nullable,
                   column_default
            FROM information_schema.columns
            WHERE table_schema = current_schema() AND table_name = ANY(%s)
            ORDER BY table_name, ordinal_position
            """,
            (OFFICIAL_TABLES,),
        ).fetchall()
        # NOT NULL shows up as CHECK constraints named after OIDs before PostgreSQL 18, which
        # differ between databases; nullability is compared through the columns instead.
        keys = conn.execute(
            """
            SELECT tc.table_name, tc.constraint_name, tc.constraint_type,
                   array_agg(kcu.column_name::text ORDER BY kcu.ordinal_position)
            FROM information_schema.table_constraints AS tc
            JOIN information_schema.key_column_usage AS kcu
              USING (constraint_schema, constraint_name, table_name)
            WHERE tc.table_schema = current_schema() AND tc.table_name = ANY(%s)
              AND tc.constraint_type IN ('PRIMARY KEY', 'UNIQUE', 'FOREIGN KEY')
            GROUP BY 1, 2, 3
            ORDER BY 1, 2
            """,
            (OFFICIAL_TABLES,),
        ).fetchall()
        indexes = conn.execute(
            """
            SELECT tablename, indexname,
                   replace(indexdef, ' ON ' || quote_ident(schemaname) || '.', ' ON ')
            FROM pg_indexes
            WHERE schemaname = current_schema() AND tablename = ANY(%s)
            ORDER BY 1, 2
            """,
            (OFFICIAL_TABLES,),
        ).fetchall()
    return {"columns": columns, "keys": keys, "indexes": indexes}


def thread_rows(dsn: str, thread_id: str) -> dict[str, list[tuple[Any, ...]]]:
    """Every stored row of a thread, table by table, in key order."""
    queries = {
        "checkpoints": """
            SELECT checkpoint_ns, checkpoint_id, parent_checkpoint_id, type, checkpoint, metadata
            FROM checkpoints WHERE thread_id = %s ORDER BY 1, 2""",
        "checkpoint_blobs": """
            SELECT checkpoint_ns, channel, version, type, blob
            FROM checkpoint_blobs WHERE thread_id = %s ORDER BY 1, 2, 3""",
        "checkpoint_writes": """
            SELECT checkpoint_ns, checkpoint_id, task_id, idx, channel, type, blob, task_path
            FROM checkpoint_writes WHERE thread_id = %s ORDER BY 1, 2, 3, 4""",
    }
    with psycopg.connect(dsn) as conn:
        return {
            table: conn.execute(query, (thread_id,)).fetchall() for table, query in queries.items()
        }


def copy_database_rows(source_dsn: str, target_dsn: str) -> None:
    """Copy every checkpoint row verbatim into another database (tables already set up there)."""
    tables = ["checkpoints", "checkpoint_blobs", "checkpoint_writes"]
    with psycopg.connect(source_dsn) as src, psycopg.connect(target_dsn) as dst:
        for table in tables:
            with src.cursor().copy(f"COPY {table} TO STDOUT (FORMAT BINARY)") as out:
                data = b"".join(bytes(chunk) for chunk in out)
            with dst.cursor().copy(f"COPY {table} FROM STDIN (FORMAT BINARY)") as into:
                into.write(data)


# -- 1 & 2: a thread written by one package, read and continued by the other ----------------------


def test_reader_loads_the_latest_tuple_exactly_as_the_writer_does(pair: Pair) -> None:
    config = write_interrupted_thread(pair.writer)

    want = pair.writer.get_tuple(config)
    got = pair.reader.get_tuple(config)

    assert_same_tuple(got, want)
    assert want is not None
    assert {channel for _, channel, _ in want.pending_writes} >= {
        "messages",
        "count",
        "__interrupt__",
    }


def test_reader_loads_every_checkpoint_by_id_exactly_as_the_writer_does(pair: Pair) -> None:
    config = write_interrupted_thread(pair.writer)
    history = list(pair.writer.list(config))
    assert len(history) == 5

    for item in history:
        assert_same_tuple(pair.reader.get_tuple(item.config), pair.writer.get_tuple(item.config))


def test_reader_lists_the_same_checkpoints_in_the_same_order(pair: Pair) -> None:
    config = write_interrupted_thread(pair.writer)

    want = list(pair.writer.list(config))
    got = list(pair.reader.list(config))

    assert checkpoint_ids(got) == checkpoint_ids(want)
    for got_item, want_item in zip(got, want, strict=True):
        assert_same_tuple(got_item, want_item)


LIST_QUERIES: dict[str, Callable[[list[CheckpointTuple]], tuple[Any, dict[str, Any]]]] = {
    "limit": lambda h: (thread(), {"limit": 2}),
    "before": lambda h: (thread(), {"before": h[2].config}),
    "before-and-limit": lambda h: (thread(), {"before": h[1].config, "limit": 3}),
    "filter-source": lambda h: (thread(), {"filter": {"source": "input"}}),
    "filter-step": lambda h: (thread(), {"filter": {"step": 1}}),
    "all-threads-filtered": lambda h: (None, {"filter": {"source": "loop", "step": 0}}),
}


@pytest.mark.parametrize("query", LIST_QUERIES)
def test_reader_filters_and_pages_the_list_like_the_writer(pair: Pair, query: str) -> None:
    write_interrupted_thread(pair.writer, "thread-1")
    write_interrupted_thread(pair.writer, "thread-2")
    history = list(pair.writer.list(thread()))
    config, kwargs = LIST_QUERIES[query](history)

    want = checkpoint_ids(list(pair.writer.list(config, **kwargs)))
    got = checkpoint_ids(list(pair.reader.list(config, **kwargs)))

    assert want  # the query selects something, so the comparison means something
    assert got == want


def test_reader_resumes_the_writers_interrupted_run(pair: Pair) -> None:
    config = write_interrupted_thread(pair.writer)

    result = build_graph(pair.reader).invoke(Command(resume="ok"), config)

    assert texts(result["messages"]) == RESUMED_CONVERSATION
    assert result["count"] == 4  # the pending `echo` reply was replayed, not run again
    assert build_graph(pair.writer).get_state(config).values == result


def test_reader_continues_the_writers_thread_with_a_new_turn(pair: Pair) -> None:
    writer_graph, config = build_graph(pair.writer, approval=False), thread()
    writer_graph.invoke({"messages": [HumanMessage("hi")]}, config)
    writer_graph.invoke({"messages": [HumanMessage("again")]}, config)

    result = build_graph(pair.reader, approval=False).invoke(
        {"messages": [HumanMessage("third")]}, config
    )

    assert texts(result["messages"]) == [
        "hi",
        "echo: hi",
        "again",
        "echo: again",
        "third",
        "echo: third",
    ]
    assert result["count"] == 3
    assert writer_graph.get_state(config).values == result


def test_reader_sees_the_same_subgraph_state_as_the_writer(pair: Pair) -> None:
    config = thread()
    writer_graph = build_parent_graph(pair.writer)
    writer_graph.invoke({"messages": [HumanMessage("hi")]}, config)

    want = writer_graph.get_state(config, subgraphs=True)
    got = build_parent_graph(pair.reader).get_state(config, subgraphs=True)

    assert got == want
    assert want.tasks[0].state is not None  # the interrupted subgraph's own snapshot


def test_reader_resumes_an_interrupt_raised_inside_a_subgraph(pair: Pair) -> None:
    config = thread()
    build_parent_graph(pair.writer).invoke({"messages": [HumanMessage("hi")]}, config)

    result = build_parent_graph(pair.reader).invoke(Command(resume="ok"), config)

    assert texts(result["messages"]) == ["hi", "echo: hi", "approved: ok"]
    assert result["count"] == 3  # the subgraph hands back its whole state: 1 + (1 + 1)


def test_reader_loads_a_fan_out_with_pending_sends_exactly_as_the_writer_does(pair: Pair) -> None:
    config = thread()
    build_fan_out_graph(pair.writer, []).invoke({"items": ["a", "b", "c"]}, config)
    history = list(pair.writer.list(config))

    for item in history:
        assert_same_tuple(pair.reader.get_tuple(item.config), pair.writer.get_tuple(item.config))
    assert any(channel == "__pregel_tasks" for t in history for _, channel, _ in t.pending_writes)


def test_reader_resumes_only_the_interrupted_branch_of_a_fan_out(pair: Pair) -> None:
    config = thread()
    build_fan_out_graph(pair.writer, []).invoke({"items": ["a", "b", "c"]}, config)
    calls: list[str] = []

    result = build_fan_out_graph(pair.reader, calls).invoke(Command(resume="ok"), config)

    assert calls == ["b"]  # "a" and "c" finished before the interrupt: their writes are replayed
    assert sorted(result["results"]) == ["a", "b:ok", "c"]


def test_reader_rebuilds_a_delta_channel_like_the_writer(pair: Pair) -> None:
    writer_graph, config = build_delta_graph(pair.writer), thread()
    for _ in range(5):
        writer_graph.invoke({"notes": ["turn"]}, config)
    reader_graph = build_delta_graph(pair.reader)

    assert reader_graph.get_state(config).values == writer_graph.get_state(config).values
    assert pair.reader.get_delta_channel_history(
        config=config, channels=["notes"]
    ) == pair.writer.get_delta_channel_history(config=config, channels=["notes"])
    result = reader_graph.invoke({"notes": ["last"]}, config)
    assert len(result["notes"]) == 12


@pytest.mark.parametrize("checkpoint_ns", ["", "inner:1"], ids=["root", "subgraph"])
def test_reader_migrates_pending_sends_of_a_pre_v4_checkpoint_like_the_writer(
    pair: Pair, checkpoint_ns: str
) -> None:
    # Before format 4 a checkpoint's pending sends lived in its parent's writes; savers move
    # them into the `__pregel_tasks` channel on read. Older official releases wrote such rows.
    base: RunnableConfig = {"configurable": {"thread_id": "legacy", "checkpoint_ns": checkpoint_ns}}
    parent, versions = blob_checkpoint({"items": ["x", "y"], "n": 1}, None)
    parent["v"] = 1
    parent_config = pair.writer.put(base, parent, {"source": "loop", "step": 0}, versions)
    sends = [Send("work", {"item": "x"}), Send("work", {"item": "y"})]
    pair.writer.put_writes(
        parent_config, [(TASKS, send) for send in sends], "plan", "~__pregel_pull, plan"
    )
    child, versions = blob_checkpoint({"n": 2}, parent)
    child["v"] = 1
    child_config = pair.writer.put(parent_config, child, {"source": "loop", "step": 1}, versions)

    got = pair.reader.get_tuple(child_config)

    assert got is not None
    assert got.checkpoint["channel_values"][TASKS] == sends
    assert_same_tuple(got, pair.writer.get_tuple(child_config))
    for got_item, want_item in zip(pair.reader.list(base), pair.writer.list(base), strict=True):
        assert_same_tuple(got_item, want_item)


ENCRYPTION_KEY = b"0123456789abcdef0123456789abcdef"


@pytest.mark.parametrize("direction", DIRECTIONS)
def test_reader_with_the_same_key_resumes_an_encrypted_thread(
    dsn: str, direction: tuple[str, str]
) -> None:
    writer_name, reader_name = direction
    serde = EncryptedSerializer.from_pycryptodome_aes(key=ENCRYPTION_KEY)
    with SYNC[writer_name](dsn, serde) as writer, SYNC[reader_name](dsn, serde) as reader:
        writer.setup()  # type: ignore[attr-defined]
        config = write_interrupted_thread(writer)
        assert_same_tuple(reader.get_tuple(config), writer.get_tuple(config))

        result = build_graph(reader).invoke(Command(resume="ok"), config)

    assert texts(result["messages"]) == RESUMED_CONVERSATION
    with psycopg.connect(dsn) as conn:
        types = {t for (t,) in conn.execute("SELECT DISTINCT type FROM checkpoint_blobs")}
    assert types
    assert all(t.endswith("+aes") for t in types)  # the blobs really are encrypted at rest


# -- ours operating on an official thread: retention and copies -----------------------------------


def test_official_reads_the_latest_state_of_a_thread_ours_pruned(dsn: str) -> None:
    with open_official(dsn) as official, open_ours(dsn) as ours:
        official.setup()  # type: ignore[attr-defined]
        config = write_interrupted_thread(official)
        before = official.get_tuple(config)
        values_before = build_graph(official).get_state(config).values

        ours.prune(["thread-1"], strategy="keep_latest")  # type: ignore[attr-defined]

        after = official.get_tuple(config)
        assert before is not None
        assert after is not None
        assert after.config == before.config
        assert after.checkpoint == before.checkpoint
        assert after.metadata == before.metadata
        assert after.pending_writes == before.pending_writes
        assert after.parent_config is None  # as the official prune leaves it: parent deleted
        assert checkpoint_ids(list(official.list(config))) == checkpoint_ids([before])
        assert build_graph(official).get_state(config).values == values_before


def test_official_resumes_a_thread_ours_pruned(dsn: str) -> None:
    with open_official(dsn) as official, open_ours(dsn) as ours:
        official.setup()  # type: ignore[attr-defined]
        config = write_interrupted_thread(official)
        ours.prune(["thread-1"], strategy="keep_latest")  # type: ignore[attr-defined]

        result = build_graph(official).invoke(Command(resume="ok"), config)

    assert texts(result["messages"]) == RESUMED_CONVERSATION
    assert result["count"] == 4


@pytest.mark.unpartitioned(
    reason="copies tables with COPY table TO, which PostgreSQL refuses for a partitioned table"
)
def test_keep_latest_by_ours_leaves_the_rows_the_official_prune_leaves(
    dsn: str, official_dsn: str
) -> None:
    with open_official(dsn) as official:
        official.setup()  # type: ignore[attr-defined]
        write_interrupted_thread(official, "thread-1")
        build_parent_graph(official).invoke({"messages": [HumanMessage("hi")]}, thread("t2"))
    copy_database_rows(dsn, official_dsn)

    with open_ours(dsn) as ours:
        ours.prune(["thread-1", "t2"], strategy="keep_latest")  # type: ignore[attr-defined]
    with open_official(official_dsn) as official:
        official.prune(["thread-1", "t2"], strategy="keep_latest")  # type: ignore[attr-defined]

    for thread_id in ("thread-1", "t2"):
        assert thread_rows(dsn, thread_id) == thread_rows(official_dsn, thread_id)


def test_delete_strategy_by_ours_removes_only_that_thread_for_the_official(dsn: str) -> None:
    with open_official(dsn) as official, open_ours(dsn) as ours:
        official.setup()  # type: ignore[attr-defined]
        write_interrupted_thread(official, "doomed")
        kept = write_interrupted_thread(official, "kept")
        kept_before = official.get_tuple(kept)

        ours.prune(["doomed"], strategy="delete")  # type: ignore[attr-defined]

        assert official.get_tuple(thread("doomed")) is None
        assert list(official.list(thread("doomed"))) == []
        assert_same_tuple(official.get_tuple(kept), kept_before)
    assert all(rows == [] for rows in thread_rows(dsn, "doomed").values())


def test_official_reads_and_resumes_a_thread_copied_by_ours(dsn: str) -> None:
    with open_official(dsn) as official, open_ours(dsn) as ours:
        official.setup()  # type: ignore[attr-defined]
        source = write_interrupted_thread(official, "source")
        history = list(official.list(source))

        ours.copy_thread("source", "copy")  # type: ignore[attr-defined]

        copied = list(official.list(thread("copy")))
        assert checkpoint_ids(copied) == checkpoint_ids(history)
        for got, want in zip(copied, history, strict=True):
            assert got.config == retarget(want.config, "copy")
            assert got.parent_config == retarget(want.parent_config, "copy")
            assert got.checkpoint == want.checkpoint
            assert got.metadata == want.metadata
            assert got.pending_writes == want.pending_writes
        result = build_graph(official).invoke(Command(resume="ok"), thread("copy"))
        assert texts(result["messages"]) == RESUMED_CONVERSATION


OURS_SHAPES = [
    pytest.param(open_ours_pooled, id="pool"),
    pytest.param(open_ours_pipelined, id="pipeline"),
]


@pytest.mark.parametrize("open_saver", OURS_SHAPES)
def test_ours_through_a_pool_or_pipeline_lists_an_official_thread_exactly(
    dsn: str, open_saver: Callable[[str], AbstractContextManager[BaseCheckpointSaver[str]]]
) -> None:
    with open_official(dsn) as official, open_saver(dsn) as ours:
        official.setup()  # type: ignore[attr-defined]
        config = write_interrupted_thread(official)

        want, got = list(official.list(config)), list(ours.list(config))

        assert checkpoint_ids(got) == checkpoint_ids(want)
        for got_item, want_item in zip(got, want, strict=True):
            assert_same_tuple(got_item, want_item)


@pytest.mark.parametrize("open_saver", OURS_SHAPES)
def test_ours_through_a_pool_or_pipeline_resumes_an_official_thread(
    dsn: str, open_saver: Callable[[str], AbstractContextManager[BaseCheckpointSaver[str]]]
) -> None:
    with open_official(dsn) as official, open_saver(dsn) as ours:
        official.setup()  # type: ignore[attr-defined]
        config = write_interrupted_thread(official)

        result = build_graph(ours).invoke(Command(resume="ok"), config)

        assert texts(result["messages"]) == RESUMED_CONVERSATION
        assert build_graph(official).get_state(config).values == result


# -- 3: setup() of either package on the other's database -----------------------------------------


SETUP_ORDERS = [
    pytest.param("official", "ours", id="official-then-ours"),
    pytest.param("ours", "official", id="ours-then-official"),
]


@pytest.mark.parametrize(("first", "second"), SETUP_ORDERS)
def test_setup_of_either_records_exactly_the_official_migration_rows(
    dsn: str, first: str, second: str
) -> None:
    with SYNC[first](dsn) as saver:
        saver.setup()  # type: ignore[attr-defined]
    assert migration_versions(dsn) == list(range(len(MIGRATIONS)))

    with SYNC[second](dsn) as saver:
        saver.setup()  # type: ignore[attr-defined]
    assert migration_versions(dsn) == list(range(len(MIGRATIONS)))


@pytest.mark.parametrize(("first", "second"), SETUP_ORDERS)
def test_setup_of_the_other_package_leaves_a_written_thread_intact(
    dsn: str, first: str, second: str
) -> None:
    with SYNC[first](dsn) as writer:
        writer.setup()  # type: ignore[attr-defined]
        config = write_interrupted_thread(writer)
        before = writer.get_tuple(config)
        rows_before = thread_rows(dsn, "thread-1")

        with SYNC[second](dsn) as other:
            other.setup()  # type: ignore[attr-defined]
            assert_same_tuple(other.get_tuple(config), before)
        assert_same_tuple(writer.get_tuple(config), before)
    assert thread_rows(dsn, "thread-1") == rows_before


def assert_same_columns_and_keys(dsn: str, official_dsn: str) -> None:
    ours, official = table_definitions(dsn), table_definitions(official_dsn)
    assert ours["columns"] == official["columns"]
    assert ours["keys"] == official["keys"]


def assert_has_every_official_index(dsn: str, official_dsn: str) -> None:
    # This project may add indexes of its own (through its own migrations table; see
    # `OWN_MIGRATIONS` in checkpoint_pg/_sql.py), so ours may have more; every official one
    # must exist under its name, unchanged.
    ours = set(table_definitions(dsn)["indexes"])
    assert set(table_definitions(official_dsn)["indexes"]) <= ours


def test_tables_have_the_same_columns_and_keys_whichever_package_set_them_up(
    dsn: str, official_dsn: str
) -> None:
    with open_ours(dsn) as ours:
        ours.setup()  # type: ignore[attr-defined]

    assert_same_columns_and_keys(dsn, official_dsn)


@pytest.mark.unpartitioned(reason="pg_indexes shows a partitioned parent's index as ON ONLY")
def test_setup_by_ours_creates_every_official_index_identically(
    dsn: str, official_dsn: str
) -> None:
    with open_ours(dsn) as ours:
        ours.setup()  # type: ignore[attr-defined]

    assert_has_every_official_index(dsn, official_dsn)


@pytest.mark.unpartitioned(reason="builds an older official layout itself")
def test_setup_by_ours_completes_a_database_an_older_official_release_created(
    dsn: str, official_dsn: str
) -> None:
    with psycopg.connect(dsn, autocommit=True) as conn:
        for version, migration in enumerate(MIGRATIONS[:TASK_PATH_MIGRATION]):
            conn.execute(migration)
            conn.execute("INSERT INTO checkpoint_migrations (v) VALUES (%s)", (version,))

    with open_ours(dsn) as ours:
        ours.setup()  # type: ignore[attr-defined]

    assert migration_versions(dsn) == list(range(len(MIGRATIONS)))
    assert_same_columns_and_keys(dsn, official_dsn)
    assert_has_every_official_index(dsn, official_dsn)


# -- 4: the async savers --------------------------------------------------------------------------


async def test_async_reader_loads_the_latest_tuple_exactly_as_the_writer_does(
    apair: Pair,
) -> None:
    config = await awrite_interrupted_thread(apair.writer)

    assert_same_tuple(await apair.reader.aget_tuple(config), await apair.writer.aget_tuple(config))


async def test_async_reader_lists_the_same_checkpoints_in_the_same_order(apair: Pair) -> None:
    config = await awrite_interrupted_thread(apair.writer)

    want = [t async for t in apair.writer.alist(config)]
    got = [t async for t in apair.reader.alist(config)]

    assert len(want) == 5
    assert checkpoint_ids(got) == checkpoint_ids(want)
    for got_item, want_item in zip(got, want, strict=True):
        assert_same_tuple(got_item, want_item)


async def test_async_reader_resumes_the_writers_interrupted_run(apair: Pair) -> None:
    config = await awrite_interrupted_thread(apair.writer)

    result = await build_graph(apair.reader).ainvoke(Command(resume="ok"), config)

    assert texts(result["messages"]) == RESUMED_CONVERSATION
    assert result["count"] == 4
    assert (await build_graph(apair.writer).aget_state(config)).values == result


async def test_async_official_reads_and_resumes_a_thread_ours_pruned(dsn: str) -> None:
    async with aopen_official(dsn) as official, aopen_ours(dsn) as ours:
        await official.setup()  # type: ignore[attr-defined]
        config = await awrite_interrupted_thread(official)
        before = await official.aget_tuple(config)

        await ours.aprune(["thread-1"], strategy="keep_latest")  # type: ignore[attr-defined]

        after = await official.aget_tuple(config)
        assert before is not None
        assert after is not None
        assert (after.checkpoint, after.pending_writes) == (
            before.checkpoint,
            before.pending_writes,
        )
        result = await build_graph(official).ainvoke(Command(resume="ok"), config)
        assert texts(result["messages"]) == RESUMED_CONVERSATION


# -- 5: blob-heavy values -------------------------------------------------------------------------


LARGE_TEXT = "".join(f"line {i}: ünïcødé ✓ 💾 {'lorem ipsum ' * 8}\n" for i in range(20_000))
PAYLOAD: dict[str, Any] = {
    # None, str, int, float and bool are stored inline in the checkpoint's JSONB, the rest as blobs
    "transcript": LARGE_TEXT,
    "escapes": 'quote " backslash \\ newline \n tab \t line-separator \u2028 emoji 🧪',
    "big_int": 2**70,
    "ratio": 0.1,
    "flag": False,
    "nothing": None,
    "document": {
        "title": "Ωmega",
        "sections": [
            {"n": i, "text": LARGE_TEXT[: 1000 + i], "tags": ["a", str(i)], "raw": bytes([i]) * i}
            for i in range(200)
        ],
        "meta": {"nested": {"deeper": {"deepest": [1, 2.5, None, True, "x"]}}},
    },
    "attachment": bytes(range(256)) * 8192,  # 2 MiB, every byte value
    "matrix": [[float(i * j) for j in range(100)] for i in range(100)],
    "events": [
        {"at": datetime(2025, 1, 1, i % 24, tzinfo=timezone.utc), "id": i} for i in range(50)
    ],
    "counter": 42,
    "empty": [],
}


def next_version(current: str | None) -> str:
    """The official version format (zero-padded counter, then a fraction), made deterministic."""
    counter = int(current.split(".")[0]) + 1 if current else 1
    return f"{counter:032}.{0.25:016}"


def blob_checkpoint(
    values: dict[str, Any], previous: Checkpoint | None
) -> tuple[Checkpoint, dict[str, str]]:
    """A checkpoint holding `values`, with new versions for exactly those channels."""
    checkpoint = empty_checkpoint()
    old_versions = dict(previous["channel_versions"]) if previous else {}
    new_versions = {channel: next_version(old_versions.get(channel)) for channel in values}
    checkpoint["channel_values"] = {**(previous["channel_values"] if previous else {}), **values}
    checkpoint["channel_versions"] = {**old_versions, **new_versions}
    checkpoint["updated_channels"] = sorted(values)
    return checkpoint, new_versions


def put_blob_thread(saver: BaseCheckpointSaver[str]) -> tuple[RunnableConfig, RunnableConfig]:
    """Two checkpoints: the first holds every payload, the second changes one channel only."""
    base: RunnableConfig = {"configurable": {"thread_id": "blobs", "checkpoint_ns": ""}}
    first, versions = blob_checkpoint(PAYLOAD, None)
    first_config = saver.put(base, first, {"source": "input", "step": 0}, versions)
    second, versions = blob_checkpoint({"counter": 43}, first)
    second_config = saver.put(first_config, second, {"source": "loop", "step": 1}, versions)
    return first_config, second_config


def test_blob_heavy_channel_values_round_trip_across_packages(pair: Pair) -> None:
    first_config, _ = put_blob_thread(pair.writer)

    got = pair.reader.get_tuple(first_config)

    assert got is not None
    assert got.checkpoint["channel_values"] == PAYLOAD
    assert_same_tuple(got, pair.writer.get_tuple(first_config))


def test_unchanged_channels_load_from_blobs_the_other_package_wrote_earlier(pair: Pair) -> None:
    _, second_config = put_blob_thread(pair.writer)

    got = pair.reader.get_tuple(second_config)

    assert got is not None
    assert got.checkpoint["channel_values"] == {**PAYLOAD, "counter": 43}
    assert_same_tuple(got, pair.writer.get_tuple(second_config))


def test_blob_heavy_pending_writes_round_trip_across_packages(pair: Pair) -> None:
    config, _ = put_blob_thread(pair.writer)
    # msgpack has no integers beyond 64 bits: such a value is storable inline in JSONB only
    writes = [(channel, value) for channel, value in PAYLOAD.items() if channel != "big_int"]
    pair.writer.put_writes(config, writes, task_id="task-b", task_path="~__pregel_pull, b")
    pair.writer.put_writes(config, writes[:2], task_id="task-a", task_path="~__pregel_pull, a")

    got = pair.reader.get_tuple(config)

    assert got is not None
    assert got.pending_writes == [("task-a", c, v) for c, v in writes[:2]] + [
        ("task-b", c, v) for c, v in writes
    ]
    assert_same_tuple(got, pair.writer.get_tuple(config))


def test_ours_stores_the_same_rows_as_the_official_for_the_same_calls(
    dsn: str, official_dsn: str
) -> None:
    checkpoint, versions = blob_checkpoint(PAYLOAD, None)
    config: RunnableConfig = {
        "configurable": {"thread_id": "blobs", "checkpoint_ns": "", "user_id": "u-1"}
    }
    metadata: dict[str, Any] = {"source": "input", "step": 0, "extra": {"nested": [1, "twø"]}}
    writes = [("document", PAYLOAD["document"]), ("__interrupt__", "stop"), ("counter", 7)]

    for target, open_saver in ((official_dsn, open_official), (dsn, open_ours)):
        with open_saver(target) as saver:
            saver.setup()  # type: ignore[attr-defined]
            saved = saver.put(config, checkpoint, metadata, versions)  # type: ignore[arg-type]
            saver.put_writes(saved, writes, task_id="task-1", task_path="~__pregel_pull, n")

    assert thread_rows(dsn, "blobs") == thread_rows(official_dsn, "blobs")


def test_repeated_writes_of_a_task_resolve_like_the_officials(dsn: str, official_dsn: str) -> None:
    checkpoint, versions = blob_checkpoint({"counter": 1}, None)
    config: RunnableConfig = {"configurable": {"thread_id": "retried", "checkpoint_ns": ""}}

    for target, open_saver in ((official_dsn, open_official), (dsn, open_ours)):
        with open_saver(target) as saver:
            saver.setup()  # type: ignore[attr-defined]
            saved = saver.put(config, checkpoint, {}, versions)  # type: ignore[arg-type]
            saver.put_writes(saved, [("a", 1), ("b", 2)], task_id="task-1")
            saver.put_writes(saved, [("a", 10), ("b", 20)], task_id="task-1")
            saver.put_writes(saved, [("__error__", "first")], task_id="task-2")
            saver.put_writes(saved, [("__error__", "second")], task_id="task-2")

    assert thread_rows(dsn, "retried") == thread_rows(official_dsn, "retried")
    with open_official(dsn) as official:
        got = official.get_tuple(config)
    assert got is not None
    # regular writes keep the first attempt, special channels the last (the official rule)
    assert got.pending_writes == [
        ("task-1", "a", 1),
        ("task-1", "b", 2),
        ("task-2", "__error__", "second"),
    ]
