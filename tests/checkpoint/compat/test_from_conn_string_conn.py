"""What `from_conn_string(dsn)` hands over, used exactly as the official saver's is.

LangGraph's own test suite builds its pipelined savers with
``with saver.conn.pipeline() as pipe: saver.pipe = pipe`` and reads ``saver.conn.info.dbname``;
user code runs ``saver.conn.execute(...)`` and ``saver.conn.transaction()``. Each test runs
the official saver and ours side by side, on the same schema: the same code must work, and
mean the same thing, on both. A pool is one explicit argument away (``pool_size=``).
"""

from __future__ import annotations

import asyncio
import operator
from concurrent.futures import ThreadPoolExecutor
from typing import Annotated, Any

import psycopg
import pytest
from langgraph.checkpoint.base import empty_checkpoint
from langgraph.checkpoint.postgres import PostgresSaver as OfficialSaver
from langgraph.checkpoint.postgres.aio import AsyncPostgresSaver as OfficialAsyncSaver
from langgraph.graph import START, StateGraph
from psycopg_pool import AsyncConnectionPool, ConnectionPool
from typing_extensions import TypedDict

from checkpoint_pg import AsyncPostgresSaver, PostgresSaver
from tests.checkpoint.helpers import config

pytestmark = pytest.mark.nocitus("the official saver's reads are refused by Citus")

SYNC = {"official": OfficialSaver, "ours": PostgresSaver}
ASYNC = {"official": OfficialAsyncSaver, "ours": AsyncPostgresSaver}
BOTH = pytest.mark.parametrize("package", ["official", "ours"])


class State(TypedDict):
    trail: Annotated[list[str], operator.add]


def _graph(saver: Any) -> Any:
    builder = StateGraph(State)
    builder.add_node("a", lambda s: {"trail": ["a"]})
    builder.add_node("b", lambda s: {"trail": ["b"]})
    builder.add_edge(START, "a")
    builder.add_edge("a", "b")
    return builder.compile(checkpointer=saver)


def _thread(thread_id: str) -> Any:
    return {"configurable": {"thread_id": thread_id}}


def _setup(package: str, dsn: str) -> None:
    with SYNC[package].from_conn_string(dsn) as saver:
        saver.setup()


@BOTH
def test_conn_is_one_psycopg_connection(package: str, dsn: str) -> None:
    with SYNC[package].from_conn_string(dsn) as saver:
        assert type(saver.conn) is psycopg.Connection
        assert saver.pipe is None


@BOTH
async def test_async_conn_is_one_psycopg_async_connection(package: str, dsn: str) -> None:
    async with ASYNC[package].from_conn_string(dsn) as saver:
        assert type(saver.conn) is psycopg.AsyncConnection


@BOTH
def test_conn_info_names_the_database(package: str, dsn: str) -> None:
    """What LangGraph's prune tests read: ``checkpointer.conn.info.dbname``."""
    expected = psycopg.conninfo.conninfo_to_dict(dsn)["dbname"]
    with SYNC[package].from_conn_string(dsn) as saver:
        assert saver.conn.info.dbname == expected


@BOTH
def test_conn_execute_returns_dict_rows_in_autocommit(package: str, dsn: str) -> None:
    with SYNC[package].from_conn_string(dsn) as saver:
        assert saver.conn.autocommit
        assert saver.conn.execute("SELECT 1 AS one").fetchone() == {"one": 1}
        with saver.conn.cursor() as cur:
            assert cur.execute("SELECT 2 AS two").fetchall() == [{"two": 2}]


@BOTH
def test_langgraph_pipelined_fixture_runs_a_graph(package: str, dsn: str) -> None:
    """LangGraph's ``_checkpointer_postgres_pipe``: setup, then the saver's own connection in
    pipeline mode handed back to it as ``saver.pipe``."""
    with SYNC[package].from_conn_string(dsn) as saver:
        saver.setup()
        with saver.conn.pipeline() as pipe:
            saver.pipe = pipe
            graph = _graph(saver)
            assert graph.invoke({"trail": []}, _thread(f"pipe-{package}")) == {"trail": ["a", "b"]}
            assert graph.get_state(_thread(f"pipe-{package}")).values == {"trail": ["a", "b"]}
            assert len(list(saver.list(_thread(f"pipe-{package}")))) == 4


@BOTH
async def test_async_langgraph_pipelined_fixture_runs_a_graph(package: str, dsn: str) -> None:
    async with ASYNC[package].from_conn_string(dsn) as saver:
        await saver.setup()
        async with saver.conn.pipeline() as pipe:
            saver.pipe = pipe
            graph = _graph(saver)
            thread = _thread(f"apipe-{package}")
            assert await graph.ainvoke({"trail": []}, thread) == {"trail": ["a", "b"]}
            assert (await graph.aget_state(thread)).values == {"trail": ["a", "b"]}


@BOTH
def test_from_conn_string_pipeline_true_pipelines_its_connection(package: str, dsn: str) -> None:
    _setup(package, dsn)
    with SYNC[package].from_conn_string(dsn, pipeline=True) as saver:
        assert saver.pipe is not None
        graph = _graph(saver)
        assert graph.invoke({"trail": []}, _thread(f"pt-{package}")) == {"trail": ["a", "b"]}


@BOTH
def test_a_write_inside_the_callers_transaction_rolls_back_with_it(package: str, dsn: str) -> None:
    _setup(package, dsn)
    thread_id = f"tx-{package}"
    with SYNC[package].from_conn_string(dsn) as saver:
        with saver.conn.transaction():
            saver.put(config(thread_id), empty_checkpoint(), {}, {})
            raise psycopg.Rollback
        assert saver.get_tuple(config(thread_id)) is None
        with saver.conn.transaction():
            saver.put(config(thread_id), empty_checkpoint(), {}, {})
        assert saver.get_tuple(config(thread_id)) is not None


@BOTH
def test_a_setting_made_through_conn_applies_to_the_saver(package: str, dsn: str) -> None:
    """``saver.conn`` is the saver's own session: what is SET there holds for its writes."""
    _setup(package, dsn)
    with SYNC[package].from_conn_string(dsn) as saver:
        saver.conn.execute("SET default_transaction_read_only = on")
        with pytest.raises(psycopg.errors.ReadOnlySqlTransaction):
            saver.put(config(f"ro-{package}"), empty_checkpoint(), {}, {})
        saver.conn.execute("RESET default_transaction_read_only")
        saver.put(config(f"ro-{package}"), empty_checkpoint(), {}, {})


def test_pool_size_gives_a_pool(dsn: str) -> None:
    with PostgresSaver.from_conn_string(dsn, pool_size=3) as saver:
        assert isinstance(saver.conn, ConnectionPool)
        assert saver.conn.max_size == 3
        saver.setup()
        saver.put(config("pooled"), empty_checkpoint(), {}, {})
        assert saver.get_tuple(config("pooled")) is not None


async def test_async_pool_size_gives_a_pool(dsn: str) -> None:
    async with AsyncPostgresSaver.from_conn_string(dsn, pool_size=3) as saver:
        assert isinstance(saver.conn, AsyncConnectionPool)
        await saver.setup()
        await saver.aput(config("pooled"), empty_checkpoint(), {}, {})
        assert await saver.aget_tuple(config("pooled")) is not None


@pytest.mark.parametrize(
    "options",
    [{"pool_size": 0}, {"pool_size": "4"}, {"pool_size": True}, {"pool_size": 2, "pipeline": True}],
    ids=["zero", "string", "bool", "with-pipeline"],
)
def test_a_pool_size_that_is_not_a_pool_is_refused(dsn: str, options: dict[str, Any]) -> None:
    with (
        pytest.raises(ValueError, match="pool_size"),
        PostgresSaver.from_conn_string(dsn, **options),
    ):
        pass


@pytest.mark.timeout(60)
def test_default_saver_serves_many_threads_at_once(dsn: str) -> None:
    """One connection shared by many threads: every call is serialised, none is lost."""
    _setup("ours", dsn)
    with PostgresSaver.from_conn_string(dsn) as saver:

        def run(i: int) -> int:
            graph = _graph(saver)
            for step in range(3):
                graph.invoke({"trail": []}, _thread(f"t{i}-{step}"))
            return sum(1 for _ in saver.list(_thread(f"t{i}-0")))

        with ThreadPoolExecutor(16) as ex:
            assert list(ex.map(run, range(16))) == [4] * 16


@pytest.mark.timeout(60)
async def test_default_async_saver_serves_many_tasks_at_once(dsn: str) -> None:
    _setup("ours", dsn)
    async with AsyncPostgresSaver.from_conn_string(dsn) as saver:
        graph = _graph(saver)

        async def run(i: int) -> Any:
            return await graph.ainvoke({"trail": []}, _thread(f"task-{i}"))

        results = await asyncio.gather(*(run(i) for i in range(32)))
        assert results == [{"trail": ["a", "b"]}] * 32


@pytest.mark.timeout(60)
async def test_default_async_saver_answers_blocking_calls_from_threads(dsn: str) -> None:
    """LangGraph calls a saver's blocking methods from worker threads too."""
    _setup("ours", dsn)
    async with AsyncPostgresSaver.from_conn_string(dsn) as saver:

        def put_and_read(i: int) -> bool:
            saver.put(config(f"bt{i}"), empty_checkpoint(), {}, {})
            return saver.get_tuple(config(f"bt{i}")) is not None

        results = await asyncio.gather(*(asyncio.to_thread(put_and_read, i) for i in range(8)))
        assert all(results)
