"""A transaction pooler on any port, with no configuration: the savers recognise it.

PgBouncer here listens on a port of its own (not 6432/6543), so nothing in the DSN says
"pooler". The savers start with prepared statements, as on a direct connection; the first
error a transaction pooler gives about psycopg's prepared statements (``_pg3_N`` already exists,
does not exist, or wants other parameters) switches that pool to unprepared statements, logs one
WARNING naming ``pooler=True``, and runs the operation again: the caller sees success.
``pooler=False`` turns this off, and a direct connection never switches.
"""

from __future__ import annotations

import asyncio
import itertools
import operator
from typing import Annotated, Any, TypedDict

import psycopg
import pytest
from langgraph.graph import END, START, StateGraph
from psycopg_pool import ConnectionPool

from checkpoint_pg import AsyncPostgresSaver, PostgresSaver
from checkpoint_pg._runtime.dsn import is_pooled
from tests.checkpoint.helpers import checkpoint, config, versions_of
from tests.support.pooler import (
    CLIENTS,
    any_port_dsn,
    in_threads,
    one_server_dsn,
    pooler_warnings,
)

__all__ = ["any_port_dsn", "one_server_dsn"]  # fixtures

RUNS = 5
NODES = ("plan", "act", "check")


class State(TypedDict):
    owner: str
    trail: Annotated[list[str], operator.add]


def build(checkpointer: Any) -> Any:
    graph = StateGraph(State)
    for name in NODES:
        graph.add_node(name, lambda state, name=name: {"trail": [f"{state['owner']}:{name}"]})
    graph.add_edge(START, NODES[0])
    for before, after in itertools.pairwise(NODES):
        graph.add_edge(before, after)
    graph.add_edge(NODES[-1], END)
    return graph.compile(checkpointer=checkpointer)


def expected(owner: str) -> dict[str, Any]:
    return {"owner": owner, "trail": [f"{owner}:{n}" for n in NODES]}


def cfg(owner: str) -> Any:
    return {"configurable": {"thread_id": owner}}


def run_graphs(saver: PostgresSaver, client: int) -> None:
    graph = build(saver)
    for run in range(RUNS):
        owner = f"c{client}-r{run}"
        assert graph.invoke({"owner": owner, "trail": []}, cfg(owner)) == expected(owner)
        assert graph.get_state(cfg(owner)).values == expected(owner)


def seed(dsn: str) -> None:
    with PostgresSaver.from_conn_string(dsn) as saver:
        saver.setup()
        for owner in ("a", "b"):
            cp = checkpoint({"owner": owner})
            saver.put(config(owner), cp, {"owner": owner}, versions_of(cp))


def read_again_and_again(saver: PostgresSaver, owner: str, times: int = 8) -> None:
    """More reads than psycopg's prepare_threshold (5): the statement gets prepared."""
    for _ in range(times):
        got = saver.get_tuple(config(owner))
        assert got is not None
        assert got.checkpoint["channel_values"] == {"owner": owner}


def test_graph_runs_from_many_threads_each_with_its_own_saver_all_succeed(
    any_port_dsn: str, database_dsn: str, caplog: pytest.LogCaptureFixture
) -> None:
    seed(database_dsn)

    def client(i: int) -> None:
        with PostgresSaver.from_conn_string(any_port_dsn) as saver:
            run_graphs(saver, i)

    with caplog.at_level("WARNING", logger="checkpoint_pg"):
        in_threads(CLIENTS, client)  # 8 threads x 5 graph runs: every one succeeds
    # At most one warning per pool: a pool whose connections never met another's statement
    # had nothing to switch.
    assert len(pooler_warnings(caplog.records)) <= CLIENTS


def test_a_shared_saver_switches_its_pool_once_and_every_run_succeeds(
    any_port_dsn: str, database_dsn: str, caplog: pytest.LogCaptureFixture
) -> None:
    seed(database_dsn)
    with (
        caplog.at_level("WARNING", logger="checkpoint_pg"),
        PostgresSaver.from_conn_string(any_port_dsn, pool_size=CLIENTS) as saver,
    ):
        in_threads(CLIENTS, lambda i: run_graphs(saver, i))
        assert len(pooler_warnings(caplog.records)) == 1
        pool = saver.conn
        assert isinstance(pool, ConnectionPool)
        with pool.connection() as conn:
            assert conn.prepare_threshold is None


async def test_async_graph_runs_as_tasks_on_a_shared_saver(
    any_port_dsn: str, database_dsn: str, caplog: pytest.LogCaptureFixture
) -> None:
    seed(database_dsn)
    with caplog.at_level("WARNING", logger="checkpoint_pg"):
        async with AsyncPostgresSaver.from_conn_string(any_port_dsn, pool_size=CLIENTS) as saver:
            graph = build(saver)

            async def client(i: int) -> None:
                for run in range(RUNS):
                    owner = f"ac{i}-r{run}"
                    assert await graph.ainvoke({"owner": owner, "trail": []}, cfg(owner)) == (
                        expected(owner)
                    )

            await asyncio.gather(*(client(i) for i in range(CLIENTS)))
    assert len(pooler_warnings(caplog.records)) == 1


def test_the_second_client_on_one_server_connection_switches_and_succeeds(
    one_server_dsn: str, database_dsn: str, caplog: pytest.LogCaptureFixture
) -> None:
    """Client a prepares ``_pg3_0`` on the one server connection; client b's own ``_pg3_0``
    then already exists: b's pool switches (one warning naming pooler=True), a's never needs to."""
    seed(database_dsn)
    with (
        caplog.at_level("WARNING", logger="checkpoint_pg"),
        PostgresSaver.from_conn_string(one_server_dsn, pool_size=1) as first,
        PostgresSaver.from_conn_string(one_server_dsn, pool_size=1) as second,
    ):
        read_again_and_again(first, "a")
        read_again_and_again(second, "b")
        read_again_and_again(first, "a")
        read_again_and_again(second, "b")
    warnings = pooler_warnings(caplog.records)
    assert len(warnings) == 1
    assert "DuplicatePreparedStatement" in warnings[0]


def test_pooler_false_through_a_pooler_lets_the_error_surface(
    one_server_dsn: str, database_dsn: str, caplog: pytest.LogCaptureFixture
) -> None:
    seed(database_dsn)
    with (
        caplog.at_level("WARNING", logger="checkpoint_pg"),
        PostgresSaver.from_conn_string(one_server_dsn, pool_size=1, pooler=False) as first,
        PostgresSaver.from_conn_string(one_server_dsn, pool_size=1, pooler=False) as second,
    ):
        read_again_and_again(first, "a")
        with pytest.raises(psycopg.errors.DuplicatePreparedStatement, match="_pg3_0"):
            read_again_and_again(second, "b")
    assert pooler_warnings(caplog.records) == []


def test_a_users_own_pool_is_switched_too(
    one_server_dsn: str, database_dsn: str, caplog: pytest.LogCaptureFixture
) -> None:
    """A pool made by the caller with psycopg's defaults: its future connections get
    ``prepare_threshold=None`` from a copy of its kwargs; the caller's dict is left alone."""
    seed(database_dsn)
    options: dict[str, Any] = {"autocommit": True}
    with (
        caplog.at_level("WARNING", logger="checkpoint_pg"),
        ConnectionPool(one_server_dsn, kwargs=options, min_size=1, max_size=1) as mine,
        PostgresSaver.from_conn_string(one_server_dsn, pool_size=1) as other,
    ):
        saver = PostgresSaver(mine)
        read_again_and_again(other, "a")
        read_again_and_again(saver, "b")
        read_again_and_again(other, "a")
        assert mine.kwargs == {"autocommit": True, "prepare_threshold": None}
        assert options == {"autocommit": True}
    assert len(pooler_warnings(caplog.records)) == 1


def test_a_direct_connection_never_switches_and_keeps_preparing(
    database_dsn: str, caplog: pytest.LogCaptureFixture
) -> None:
    seed(database_dsn)
    with (
        caplog.at_level("WARNING", logger="checkpoint_pg"),
        PostgresSaver.from_conn_string(database_dsn, pool_size=1) as saver,
    ):
        in_threads(CLIENTS, lambda i: run_graphs(saver, i))
        read_again_and_again(saver, "a")
        pool = saver.conn
        assert isinstance(pool, ConnectionPool)
        with pool.connection() as conn:  # the pool's one connection, used by every run
            assert conn.prepare_threshold == 5
            prepared = conn.execute(
                "SELECT count(*) AS n FROM pg_prepared_statements WHERE name LIKE '_pg3_%'"
            ).fetchone()
        assert prepared is not None
        assert prepared["n"] > 0  # rows are dicts, as on the official package's connections
    assert pooler_warnings(caplog.records) == []


@pytest.mark.parametrize(
    "conninfo",
    [
        "postgresql://app@ep-cool-darkness-123456-pooler.us-east-2.aws.neon.tech/neondb",
        "postgresql://app@aws-0-eu-west-1.pooler.supabase.com:5432/postgres",
        "host=db.proxy-abc123def.eu-west-1.rds.amazonaws.com port=5432 dbname=app",
    ],
)
def test_pooler_host_names_are_known_on_any_port(conninfo: str) -> None:
    assert is_pooled(conninfo)


@pytest.mark.parametrize(
    "conninfo",
    [
        "postgresql://app@ep-cool-darkness-123456.us-east-2.aws.neon.tech/neondb",
        "postgresql://app@db.example.com:5432/app",
        "host=mydb.abc123.eu-west-1.rds.amazonaws.com port=5432",
        "host=/var/run/postgresql",
    ],
)
def test_direct_host_names_are_not_taken_for_poolers(conninfo: str) -> None:
    assert not is_pooled(conninfo)


def test_a_bind_to_another_clients_statement_of_other_arity_is_recognised_too(
    one_server_dsn: str, database_dsn: str, caplog: pytest.LogCaptureFixture
) -> None:
    """The saver prepared its read as ``_pg3_0``; another client replaces ``_pg3_0`` on the one
    server connection with a one-parameter statement: the saver's next read binds its parameters
    to that one (08P01, ProtocolViolation), switches and reads right."""
    seed(database_dsn)
    with (
        caplog.at_level("WARNING", logger="checkpoint_pg"),
        PostgresSaver.from_conn_string(one_server_dsn, pool_size=1) as saver,
        psycopg.connect(one_server_dsn, autocommit=True) as other,
    ):
        read_again_and_again(saver, "a")
        other.execute("DEALLOCATE ALL")
        other.execute("SELECT %s::int", [1], prepare=True)  # its own _pg3_0, one parameter
        read_again_and_again(saver, "a")
    warnings = pooler_warnings(caplog.records)
    assert len(warnings) == 1
    assert "ProtocolViolation" in warnings[0]
