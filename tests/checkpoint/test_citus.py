"""The savers on a Citus cluster: distribution, one shard per per-thread call, and what the
official saver can still do on tables we distributed.

The cluster is `CHECKPOINT_PG_TEST_CITUS_DSN`'s, or one started for the session when Citus is
installed here (tests/support/citus.py); without either these tests skip, saying why. Each
test gets a schema of its own on the coordinator. The routing tests drive the very operation
each public method builds and EXPLAIN every statement it sends (tests/support/citus_plans.py).
"""

from __future__ import annotations

import operator
from collections.abc import Iterator
from typing import Annotated, Any, TypedDict

import psycopg
import pytest
from langgraph.checkpoint.base import empty_checkpoint
from langgraph.checkpoint.postgres import PostgresSaver as OfficialSaver
from langgraph.graph import END, START, StateGraph

from checkpoint_pg import PostgresSaver
from checkpoint_pg._runtime.citus import CITUS
from checkpoint_pg.errors import CitusUnavailableError
from tests.support.citus_plans import ExplainedStatement, run_explaining


@pytest.fixture
def saver(citus_dsn: str) -> Iterator[PostgresSaver]:
    """Our saver over distributed tables, on an autocommit connection."""
    with psycopg.connect(citus_dsn, autocommit=True) as conn:
        saver = PostgresSaver(conn)
        saver.setup(distributed=True)
        yield saver


class State(TypedDict):
    log: Annotated[list[str], operator.add]


def _graph() -> StateGraph[State]:
    graph = StateGraph(State)
    graph.add_node("plan", lambda s: {"log": ["planned"]})
    graph.add_node("act", lambda s: {"log": ["acted"]})
    graph.add_edge(START, "plan")
    graph.add_edge("plan", "act")
    graph.add_edge("act", END)
    return graph


def _thread(thread_id: str, ns: str = "") -> dict[str, Any]:
    return {"configurable": {"thread_id": thread_id, "checkpoint_ns": ns}}


def _distribution(dsn: str) -> dict[str, tuple[str, str | None, int]]:
    with psycopg.connect(dsn, autocommit=True) as conn:
        rows = conn.execute(
            "SELECT c.relname, p.partmethod::text,"
            " column_to_column_name(p.logicalrelid, p.partkey), p.colocationid"
            " FROM pg_dist_partition AS p JOIN pg_class AS c ON c.oid = p.logicalrelid"
            " WHERE c.relnamespace = current_schema()::regnamespace"
        ).fetchall()
    return {name: (method, column or None, group) for name, method, column, group in rows}


# -- setup(distributed=True) ---------------------------------------------------------------------


def test_setup_distributed_shards_the_checkpoint_tables_by_thread_id_co_located(
    saver: PostgresSaver, citus_dsn: str
) -> None:
    tables = _distribution(citus_dsn)
    sharded = {
        name: tables[name] for name in ("checkpoints", "checkpoint_blobs", "checkpoint_writes")
    }
    assert {(method, column) for method, column, _ in sharded.values()} == {("h", "thread_id")}
    assert len({group for _, _, group in sharded.values()}) == 1


def test_setup_distributed_makes_the_migration_tables_reference_tables(
    saver: PostgresSaver, citus_dsn: str
) -> None:
    tables = _distribution(citus_dsn)
    assert tables["checkpoint_migrations"][0] == "n"
    assert tables["checkpoint_pg_migrations"][0] == "n"


def test_setup_distributed_records_the_official_migration_rows_as_always(
    saver: PostgresSaver, citus_dsn: str
) -> None:
    with psycopg.connect(citus_dsn) as conn:
        versions = [v for (v,) in conn.execute("SELECT v FROM checkpoint_migrations ORDER BY v")]
    assert versions == list(range(10))


def test_setup_distributed_again_and_plain_setup_change_nothing(
    saver: PostgresSaver, citus_dsn: str
) -> None:
    before = _distribution(citus_dsn)
    saver.setup(distributed=True)
    saver.setup()
    assert _distribution(citus_dsn) == before


@pytest.mark.unpartitioned(reason="needs the tables absent")
def test_setup_distributed_without_citus_raises_and_creates_nothing(dsn: str) -> None:
    with psycopg.connect(dsn, autocommit=True) as conn:
        if conn.execute("SELECT 1 FROM pg_extension WHERE extname = 'citus'").fetchone():
            pytest.skip("the test server has Citus: this is about a server without it")
        with pytest.raises(CitusUnavailableError, match="citus extension"):
            PostgresSaver(conn).setup(distributed=True)
        assert conn.execute("SELECT to_regclass('checkpoints')").fetchone() == (None,)


def test_setup_distributed_must_be_a_bool(dsn: str) -> None:
    with (
        psycopg.connect(dsn, autocommit=True) as conn,
        pytest.raises(ValueError, match="distributed must be True or False"),
    ):
        PostgresSaver(conn).setup(distributed="yes")  # type: ignore[arg-type]


# -- every per-thread call runs on one shard -----------------------------------------------------


def _sent(explained: list[ExplainedStatement]) -> list[ExplainedStatement]:
    """The statements sent, but the Citus check (a catalog query, asked once per saver)."""
    return [s for s in explained if s.sql != CITUS["citus_installed"].text]


def _one_shard_each(explained: list[ExplainedStatement]) -> list[int]:
    sent = _sent(explained)
    assert sent, "the operation sent no statement"
    return [statement.shards for statement in sent]


def _explained(saver: PostgresSaver, op: Any) -> tuple[Any, list[ExplainedStatement]]:
    """`op` run on the saver's own connection, each statement EXPLAINed first."""
    assert isinstance(saver.conn, psycopg.Connection)
    return run_explaining(saver.conn, op)


def _seeded(saver: PostgresSaver, thread_id: str = "t-routed") -> dict[str, Any]:
    app = _graph().compile(checkpointer=saver)
    for _ in range(3):
        app.invoke({"log": []}, _thread(thread_id))
    return _thread(thread_id)


def test_get_tuple_runs_on_one_shard(saver: PostgresSaver) -> None:
    config = _seeded(saver)
    latest = saver.get_tuple(config)
    assert latest is not None
    for target in (config, latest.config):
        result, explained = _explained(saver, saver._get_tuple_op(target))
        assert result is not None
        assert result.checkpoint["id"] == latest.checkpoint["id"]
        assert _one_shard_each(explained) == [1]


def test_put_runs_on_one_shard_with_few_and_many_blobs(saver: PostgresSaver) -> None:
    config = _seeded(saver)
    for channels in (2, 12):  # VALUES rows, then arrays (MAX_VALUES_ROWS is 8)
        checkpoint = empty_checkpoint()
        checkpoint["channel_values"] = {f"c{i}": [i, "x"] for i in range(channels)}
        versions = {f"c{i}": saver.get_next_version(None, None) for i in range(channels)}
        checkpoint["channel_versions"] = versions
        op = saver._put_op(config, checkpoint, {"source": "update", "step": 9}, versions)
        _, explained = _explained(saver, op)
        assert _one_shard_each(explained) == [1]


def test_put_writes_runs_on_one_shard_in_every_form(saver: PostgresSaver) -> None:
    config = saver.get_tuple(_seeded(saver))
    assert config is not None
    for channel, count in (("log", 2), ("log", 12), ("__error__", 1)):  # rows, arrays, upsert
        writes = [(channel, f"value {i}") for i in range(count)]
        op = saver._put_writes_op(config.config, writes, f"task-{channel}-{count}", "")
        assert op is not None
        _, explained = _explained(saver, op)
        assert _one_shard_each(explained) == [1]


def test_list_of_a_thread_runs_on_one_shard_with_every_filter(saver: PostgresSaver) -> None:
    config = _seeded(saver)
    latest = saver.get_tuple(config)
    assert latest is not None
    cases: list[dict[str, Any]] = [
        {"config": config},
        {"config": {"configurable": {"thread_id": "t-routed"}}},  # no namespace
        {"config": config, "filter": {"source": "loop"}},
        {"config": config, "before": latest.config, "limit": 2},
    ]
    for case in cases:
        pager = saver._list_pager(
            case["config"],
            filter=case.get("filter"),
            before=case.get("before"),
            limit=case.get("limit"),
        )
        op = pager.next_operation()
        assert op is not None
        tuples, explained = _explained(saver, op)
        assert tuples
        assert _one_shard_each(explained) == [1]


def test_delete_thread_runs_on_one_shard(saver: PostgresSaver) -> None:
    config = _seeded(saver)
    _, explained = _explained(saver, saver._delete_thread_op("t-routed"))
    assert _one_shard_each(explained) == [1]
    assert saver.get_tuple(config) is None


def test_prune_runs_each_statement_on_one_shard(saver: PostgresSaver) -> None:
    config = _seeded(saver)
    for strategy in ("keep_latest", "delete"):
        op = saver._prune_op(["t-routed"], strategy)
        assert op is not None
        _, explained = _explained(saver, op)
        assert set(_one_shard_each(explained)) == {1}
    assert saver.get_tuple(config) is None


def test_get_delta_channel_history_runs_on_one_shard(saver: PostgresSaver) -> None:
    config = _seeded(saver)
    _, explained = _explained(saver, saver._delta_history_op(config, ["log"]))
    assert _one_shard_each(explained) == [1]


def test_copy_thread_copies_between_shards_in_one_statement(saver: PostgresSaver) -> None:
    """Two threads, two shards: Citus runs the copy's INSERT … SELECT through the coordinator
    (it cannot EXPLAIN it with parameters, so the test checks what it does)."""
    config = _seeded(saver)
    saver.copy_thread("t-routed", "t-copy")
    source, copy = saver.get_tuple(config), saver.get_tuple(_thread("t-copy"))
    assert source is not None
    assert copy is not None
    assert copy.checkpoint == source.checkpoint
    assert len(list(saver.list(_thread("t-copy")))) == len(list(saver.list(config)))


def test_list_across_threads_runs_on_every_shard_and_pages_in_order(
    saver: PostgresSaver,
) -> None:
    app = _graph().compile(checkpointer=saver)
    for i in range(6):
        app.invoke({"log": []}, _thread(f"t{i}"))
    op = saver._list_pager(None, filter={"source": "loop"}, before=None, limit=5).next_operation()
    assert op is not None
    tuples, explained = _explained(saver, op)
    assert [s.shards > 1 for s in _sent(explained)] == [True]
    ids = [t.checkpoint["id"] for t in tuples]
    assert ids == sorted(ids, reverse=True)
    assert len(ids) == 5
    every = [t.checkpoint["id"] for t in saver.list(None, filter={"source": "loop"})]
    assert every[:5] == ids
    assert len(every) == 18  # 3 loop steps per run


# -- the official saver on tables we distributed -------------------------------------------------


def test_the_official_saver_writes_to_distributed_tables(
    saver: PostgresSaver, citus_dsn: str
) -> None:
    with OfficialSaver.from_conn_string(citus_dsn) as official:
        official.setup()  # finds every migration applied: changes nothing
        checkpoint = empty_checkpoint()
        checkpoint["channel_values"] = {"log": ["from the official saver"]}
        versions = {"log": official.get_next_version(None, None)}
        checkpoint["channel_versions"] = versions
        official.put(_thread("t-official"), checkpoint, {"source": "input", "step": -1}, versions)
        official.delete_thread("t-official-other")
    ours = saver.get_tuple(_thread("t-official"))
    assert ours is not None
    assert ours.checkpoint["channel_values"]["log"] == ["from the official saver"]


def test_the_official_saver_cannot_read_distributed_tables(
    saver: PostgresSaver, citus_dsn: str
) -> None:
    """Citus refuses the official read statement (docs/scaling.md): its blobs subquery joins
    `jsonb_each_text` to a distributed table, which Citus 13 fails to plan."""
    config = _seeded(saver)
    with OfficialSaver.from_conn_string(citus_dsn) as official:
        with pytest.raises(psycopg.errors.InternalError_, match="jsonb_each_text"):
            official.get_tuple(config)
        with pytest.raises(psycopg.errors.InternalError_, match="jsonb_each_text"):
            list(official.list(config))


def test_partitioned_tables_can_be_distributed_too(citus_dsn: str) -> None:
    with psycopg.connect(citus_dsn, autocommit=True) as conn:
        saver = PostgresSaver(conn, partitions=4)
        saver.setup(distributed=True)
        app = _graph().compile(checkpointer=saver)
        app.invoke({"log": []}, _thread("t-both"))
        latest = saver.get_tuple(_thread("t-both"))
    assert latest is not None
    assert latest.checkpoint["channel_values"]["log"] == ["planned", "acted"]
    tables = _distribution(citus_dsn)
    assert tables["checkpoints"][:2] == ("h", "thread_id")
    assert tables["checkpoints_p0"][:2] == ("h", "thread_id")
