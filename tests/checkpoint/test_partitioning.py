"""Opt-in hash partitioning of the checkpoint tables by thread_id (``partitions=N``).

The layout: same columns, keys and defaults as the official tables, the official migration rows
and nothing more, this project's own indexes on every partition. The behaviour: existing
unpartitioned tables are refused, the official saver reads and writes the partitioned tables,
and every hot-path query touches one partition of each table (checked on the plans, custom and
generic). The whole suite runs on partitioned tables with CHECKPOINT_PG_TEST_PARTITIONS=8.
"""

from __future__ import annotations

import json
import logging
import operator
import re
import threading
from collections.abc import Iterator
from typing import Annotated, Any, TypedDict

import psycopg
import pytest
from langgraph.checkpoint.postgres import PostgresSaver as OfficialSaver
from langgraph.graph import END, START, StateGraph
from psycopg import sql
from psycopg.types.json import Jsonb

from checkpoint_pg import AsyncPostgresSaver, InvalidConfigError, PostgresSaver
from checkpoint_pg._sql import (
    OFFICIAL_MIGRATIONS,
    TASKS_CHANNEL,
    delta_history_statement,
    list_statement,
    statements_for,
)
from checkpoint_pg.errors import SchemaMismatchError
from tests.checkpoint.helpers import checkpoint, config
from tests.checkpoint.plans import history_fill
from tests.harness import DatabaseFactory

TABLES = ("checkpoints", "checkpoint_blobs", "checkpoint_writes")
N = 8

# Tests that look at a fresh schema: they run on one even when the whole run pre-partitions
# every schema (CHECKPOINT_PG_TEST_PARTITIONS), instead of being skipped then.
pytestmark = pytest.mark.nocitus(
    "native hash partitions on one server; on Citus the tables are sharded instead"
)
fresh_schema = pytest.mark.unpartitioned(reason="sets the tables up itself, on a fresh schema")


def layout(conn: psycopg.Connection[Any], schema: str | None = None) -> dict[str, Any]:
    """Per checkpoint table: its kind, partition key and partitions."""
    found = {}
    for table in TABLES:
        name = sql.Identifier(schema, table) if schema else sql.Identifier(table)
        row = conn.execute(
            """SELECT c.relkind::text,
                      CASE WHEN c.relkind = 'p' THEN pg_get_partkeydef(c.oid) END,
                      (SELECT array_agg(i.inhrelid::regclass::text ORDER BY 1)
                       FROM pg_inherits AS i WHERE i.inhparent = c.oid)
               FROM pg_class AS c WHERE c.oid = to_regclass(%s)""",
            (name.as_string(conn),),
        ).fetchone()
        found[table] = row
    return found


def migration_rows(conn: psycopg.Connection[Any], schema: str | None = None) -> list[int]:
    table = (
        sql.Identifier(schema, "checkpoint_migrations")
        if schema
        else sql.Identifier("checkpoint_migrations")
    )
    query = sql.SQL("SELECT v FROM {} ORDER BY v").format(table)
    return [r[0] for r in conn.execute(query).fetchall()]


def definitions(conn: psycopg.Connection[Any]) -> dict[str, list[tuple[Any, ...]]]:
    """Columns (with defaults and nullability) and primary keys of the checkpoint tables."""
    columns = conn.execute(
        """SELECT table_name, ordinal_position, column_name, data_type, is_nullable,
                  column_default
           FROM information_schema.columns
           WHERE table_schema = current_schema() AND table_name = ANY(%s)
           ORDER BY 1, 2""",
        (list(TABLES),),
    ).fetchall()
    keys = conn.execute(
        """SELECT c.conrelid::regclass::text, c.conname, pg_get_constraintdef(c.oid)
           FROM pg_constraint AS c
           WHERE c.conrelid = ANY(%s::regclass[]) AND c.contype IN ('p', 'u', 'f')
           ORDER BY 1, 2""",
        (list(TABLES),),
    ).fetchall()
    indexes = conn.execute(
        """SELECT tablename, indexname,
                  regexp_replace(indexdef, ' ON (ONLY )?' || quote_ident(schemaname) || '[.]',
                                 ' ON ')
           FROM pg_indexes
           WHERE schemaname = current_schema() AND tablename = ANY(%s)
           ORDER BY 1, 2""",
        (list(TABLES),),
    ).fetchall()
    return {"columns": columns, "keys": keys, "indexes": indexes}


# -- the layout ----------------------------------------------------------------------------------


@fresh_schema
def test_setup_creates_the_tables_hash_partitioned_with_the_official_migration_rows(
    dsn: str,
) -> None:
    with psycopg.connect(dsn, autocommit=True) as conn:
        PostgresSaver(conn, partitions=N).setup()
        found = layout(conn)
        assert migration_rows(conn) == list(range(len(OFFICIAL_MIGRATIONS)))
        own = conn.execute("SELECT count(*) FROM checkpoint_pg_migrations").fetchone()
        # the GIN metadata index was made on the parent and exists on every partition
        gin = conn.execute(
            """SELECT count(*) FROM pg_indexes
               WHERE schemaname = current_schema() AND indexdef LIKE '%%jsonb_path_ops%%'"""
        ).fetchone()
    for table in TABLES:
        kind, key, partitions = found[table]
        assert (kind, key) == ("p", "HASH (thread_id)")
        assert sorted(p.rsplit(".", 1)[-1] for p in partitions) == sorted(
            f"{table}_p{i}" for i in range(N)
        )
    assert own is not None
    assert own[0] >= 2
    assert gin == (N + 1,)


@fresh_schema
def test_partitioned_tables_have_the_official_columns_keys_and_indexes(
    dsn: str, db_factory: DatabaseFactory
) -> None:
    with db_factory.database() as reference, psycopg.connect(reference, autocommit=True) as ref:
        OfficialSaver(ref).setup()  # type: ignore[arg-type]
        official = definitions(ref)
    with psycopg.connect(dsn, autocommit=True) as conn:
        PostgresSaver(conn, partitions=4).setup()
        ours = definitions(conn)
    assert ours["columns"] == official["columns"]
    assert ours["keys"] == official["keys"]
    # every official index, same name and definition (ours adds the GIN metadata index)
    assert set(official["indexes"]) <= set(ours["indexes"])


def test_the_schema_option_partitions_the_tables_of_that_schema(database_dsn: str) -> None:
    schema = "agent state"
    with psycopg.connect(database_dsn, autocommit=True) as conn:
        saver = PostgresSaver(conn, schema=schema, partitions=3)
        saver.setup()
        saver.setup()
        found = layout(conn, schema)
        public = conn.execute("SELECT to_regclass('public.checkpoints')").fetchone()
        assert migration_rows(conn, schema) == list(range(len(OFFICIAL_MIGRATIONS)))
        cfg = saver.put(config("t"), checkpoint({"a": 1}), {"step": 1}, {"a": "1"})
        tuple_ = saver.get_tuple(cfg)
    assert public == (None,)
    assert all(found[t][0] == "p" and len(found[t][2]) == 3 for t in TABLES)
    assert tuple_ is not None
    assert tuple_.checkpoint["channel_values"] == {"a": 1}


@fresh_schema
def test_six_concurrent_partitioned_setups_all_succeed(dsn: str) -> None:
    errors: list[BaseException] = []

    def set_up() -> None:
        try:
            with psycopg.connect(dsn, autocommit=True) as conn:
                PostgresSaver(conn, partitions=N).setup()
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=set_up) for _ in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    with psycopg.connect(dsn) as conn:
        assert migration_rows(conn) == list(range(len(OFFICIAL_MIGRATIONS)))
        assert all(len(v[2]) == N for v in layout(conn).values())


@fresh_schema
def test_setup_with_partitions_refuses_unpartitioned_tables_and_changes_nothing(
    dsn: str,
) -> None:
    with psycopg.connect(dsn, autocommit=True) as conn:
        PostgresSaver(conn).setup()
        before = layout(conn), migration_rows(conn)
        with pytest.raises(SchemaMismatchError, match=r"checkpoints.* not partitioned"):
            PostgresSaver(conn, partitions=N).setup()
        assert (layout(conn), migration_rows(conn)) == before


def test_another_partition_count_keeps_the_tables_and_warns(
    dsn: str, caplog: pytest.LogCaptureFixture
) -> None:
    with psycopg.connect(dsn, autocommit=True) as conn:
        PostgresSaver(conn, partitions=N).setup()
        before = layout(conn)
        with caplog.at_level(logging.WARNING, logger="checkpoint_pg"):
            PostgresSaver(conn, partitions=N * 2).setup()
        assert layout(conn) == before
    warnings = [r.getMessage() for r in caplog.records if r.name == "checkpoint_pg"]
    assert len(warnings) == 3
    assert all(f"has {N} hash partitions, not the {N * 2}" in w for w in warnings)


def test_setup_without_partitions_accepts_partitioned_tables(dsn: str) -> None:
    with psycopg.connect(dsn, autocommit=True) as conn:
        PostgresSaver(conn, partitions=N).setup()
        PostgresSaver(conn).setup()
        assert all(v[0] == "p" for v in layout(conn).values())


@pytest.mark.parametrize("bad", [0, -1, 1025, 2.0, "8", True])
def test_partitions_must_be_an_int_from_1_to_1024(bad: Any) -> None:
    with pytest.raises(InvalidConfigError, match="partitions"):
        PostgresSaver(psycopg.Connection.__new__(psycopg.Connection), partitions=bad)


def test_from_conn_string_takes_partitions(dsn: str) -> None:
    with PostgresSaver.from_conn_string(dsn, partitions=2) as saver:
        saver.setup()
    with psycopg.connect(dsn) as conn:
        assert all(v[0] == "p" for v in layout(conn).values())


async def test_the_async_saver_takes_partitions(dsn: str) -> None:
    async with AsyncPostgresSaver.from_conn_string(dsn, partitions=2) as saver:
        await saver.setup()
        cfg = await saver.aput(config("a"), checkpoint({"x": 1}), {"step": 1}, {"x": "1"})
        assert (await saver.aget_tuple(cfg)) is not None
    with psycopg.connect(dsn) as conn:
        assert all(v[0] == "p" for v in layout(conn).values())


# -- the official saver on partitioned tables ----------------------------------------------------


class Counter(TypedDict):
    total: Annotated[int, operator.add]
    log: Annotated[list[str], operator.add]


def counter_graph(saver: Any) -> Any:
    builder = StateGraph(Counter)
    builder.add_node("step", lambda state: {"total": 1, "log": [f"step {state['total']}"]})
    builder.add_edge(START, "step")
    builder.add_edge("step", END)
    return builder.compile(checkpointer=saver)


def test_the_official_saver_reads_and_writes_partitioned_tables(dsn: str) -> None:
    with psycopg.connect(dsn, autocommit=True) as conn:
        PostgresSaver(conn, partitions=N).setup()
        official = OfficialSaver(conn)  # type: ignore[arg-type]
        official.setup()  # finds every official migration applied: adds nothing
        assert migration_rows(conn) == list(range(len(OFFICIAL_MIGRATIONS)))
        ours = PostgresSaver(conn)
        cfg: Any = {"configurable": {"thread_id": "shared"}}

        counter_graph(official).invoke({"total": 0, "log": []}, cfg)
        counter_graph(ours).invoke({"total": 0, "log": []}, cfg)
        counter_graph(official).invoke({"total": 0, "log": []}, cfg)

        expected = {"total": 3, "log": ["step 0", "step 1", "step 2"]}
        assert counter_graph(ours).get_state(cfg).values == expected
        assert counter_graph(official).get_state(cfg).values == expected
        mine = [t.config["configurable"]["checkpoint_id"] for t in ours.list(cfg)]
        theirs = [t.config["configurable"]["checkpoint_id"] for t in official.list(cfg)]
        assert mine == theirs
        assert len(mine) == 9
        partitions = conn.execute(
            "SELECT DISTINCT tableoid::regclass::text FROM checkpoints WHERE thread_id = 'shared'"
        ).fetchall()
    assert len(partitions) == 1


# -- where a thread's rows are, and which partitions each query reads -----------------------------


def partitions_of(conn: psycopg.Connection[Any], thread_id: str) -> set[str]:
    rows = conn.execute(
        """SELECT tableoid::regclass::text FROM checkpoints WHERE thread_id = %(t)s
           UNION SELECT tableoid::regclass::text FROM checkpoint_blobs WHERE thread_id = %(t)s
           UNION SELECT tableoid::regclass::text FROM checkpoint_writes WHERE thread_id = %(t)s""",
        {"t": thread_id},
    ).fetchall()
    return {r[0] for r in rows}


def test_a_threads_rows_live_in_one_partition_of_each_table(dsn: str) -> None:
    with psycopg.connect(dsn, autocommit=True) as conn:
        saver = PostgresSaver(conn, partitions=N)
        saver.setup()
        for thread_id in ("alpha", "beta", "gamma"):
            cfg = config(thread_id)
            for step in range(3):
                cp = checkpoint({"doc": [thread_id, step]}, doc=f"{step + 1}")  # a blob
                cfg = saver.put(cfg, cp, {"step": step}, {"doc": f"{step + 1}"})
                saver.put_writes(cfg, [("doc", "w"), ("other", 1)], "task")
            found = partitions_of(conn, thread_id)
            suffixes = {name.rsplit("_p", 1)[1] for name in found}
            assert len(found) == 3, found
            assert len(suffixes) == 1, found


_FILL = history_fill(big=3_000, end=15_000, other_thread="'th' || (g % 300)", write_channel="doc")


@pytest.fixture(scope="module")
def filled(db_factory: DatabaseFactory) -> Iterator[psycopg.Connection[Any]]:
    """N partitions holding one thread of 3,000 checkpoints and 300 of 40, analysed."""
    with db_factory.database() as dsn, psycopg.connect(dsn, autocommit=True) as conn:
        PostgresSaver(conn, partitions=N).setup()
        conn.execute(_FILL)
        conn.execute("ANALYZE")
        yield conn


def _nodes(plan: dict[str, Any]) -> list[dict[str, Any]]:
    nodes = [plan]
    for child in plan.get("Plans", []):
        nodes += _nodes(child)
    return nodes


def _read_partitions(nodes: list[dict[str, Any]]) -> set[str]:
    """The tables a plan actually read (scans that ran at least once)."""
    return {
        n["Relation Name"]
        for n in nodes
        if "Relation Name" in n and n["Node Type"] != "ModifyTable" and n.get("Actual Loops", 1) > 0
    }


def _custom_plan(conn: psycopg.Connection[Any], query: str, params: dict[str, Any]) -> Any:
    row = conn.execute("EXPLAIN (FORMAT JSON, ANALYZE) " + query, params).fetchone()
    assert row is not None
    return row[0][0]["Plan"]


def _generic_plan(conn: psycopg.Connection[Any], query: str, params: dict[str, Any]) -> Any:
    """The plan a prepared statement gets once the server switches it to a generic plan."""
    order: list[str] = []

    def number(match: re.Match[str]) -> str:
        if match[1] not in order:
            order.append(match[1])
        return f"${order.index(match[1]) + 1}"

    conn.execute("PREPARE partition_probe AS " + re.sub(r"%\((\w+)\)[sb]", number, query))
    conn.execute("SET plan_cache_mode = force_generic_plan")
    try:
        explain = sql.SQL("EXPLAIN (FORMAT JSON, ANALYZE) EXECUTE partition_probe ({})").format(
            sql.SQL(", ").join(sql.Literal(params[name]) for name in order)
        )
        row = conn.execute(explain).fetchone()
    finally:
        conn.execute("RESET plan_cache_mode")
        conn.execute("DEALLOCATE partition_probe")
    assert row is not None
    return row[0][0]["Plan"]


_LATEST = {"thread_id": "big", "checkpoint_ns": "", "checkpoint_id": None, "tasks": TASKS_CHANNEL}

HOT_PATH = {
    "get_tuple latest": (statements_for(None).select_latest, _LATEST),
    "get_tuple by id": (
        statements_for(None).select_by_id,
        {**_LATEST, "checkpoint_id": "000000001500"},
    ),
    "list by thread": (
        list_statement(None, frozenset({"thread_id", "checkpoint_ns"})),
        {**_LATEST, "limit": 10},
    ),
    "list by thread, before": (
        list_statement(None, frozenset({"thread_id", "checkpoint_ns", "before"})),
        {**_LATEST, "limit": 10, "before": "000000002000"},
    ),
    "list by thread, metadata": (
        list_statement(None, frozenset({"thread_id", "checkpoint_ns", "metadata"})),
        {**_LATEST, "limit": 10, "metadata": Jsonb({"source": "loop"})},
    ),
    "get_delta_channel_history": (
        delta_history_statement(None),
        {**_LATEST, "channels": ["doc"]},
    ),
}


@pytest.mark.parametrize("plan_kind", ["custom", "generic"])
@pytest.mark.parametrize("name", list(HOT_PATH))
def test_hot_path_reads_touch_only_the_threads_partitions(
    filled: psycopg.Connection[Any], name: str, plan_kind: str
) -> None:
    query, params = HOT_PATH[name]
    if plan_kind == "generic":  # EXECUTE takes literals: JSON as its text
        params = {k: json.dumps(v.obj) if isinstance(v, Jsonb) else v for k, v in params.items()}
    expected = partitions_of(filled, "big")
    plan = (_custom_plan if plan_kind == "custom" else _generic_plan)(filled, query, params)
    read = _read_partitions(_nodes(plan))
    assert read, name
    assert read <= expected, (name, read, expected)


def test_delete_thread_touches_only_the_threads_partitions(
    filled: psycopg.Connection[Any],
) -> None:
    expected = partitions_of(filled, "th7")
    with filled.transaction(force_rollback=True):
        plan = _custom_plan(filled, statements_for(None).delete_thread, {"thread_id": "th7"})
    read = _read_partitions(_nodes(plan))
    assert read
    assert read <= expected, read


def test_a_list_across_threads_fans_out_to_every_partition(
    filled: psycopg.Connection[Any],
) -> None:
    plan = _custom_plan(filled, list_statement(None, frozenset()), {**_LATEST, "limit": 10})
    read = _read_partitions(_nodes(plan))
    assert {f"checkpoints_p{i}" for i in range(N)} <= read
