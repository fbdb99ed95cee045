"""Read-only mappings of the LangGraph tables: they match what the savers and the store create.

docs/audit.md maps each finding of the audit to the tests that cover it.
"""

from __future__ import annotations

import warnings
from typing import Any, TypedDict

import psycopg
import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from langgraph.graph import END, START, StateGraph
from sqlalchemy import Connection, insert, select, update

from app_data import AppDataService, Database, ReadOnlyModelError, migrations
from app_data.agent_tables import (
    CHECKPOINT_TABLES,
    STORE_TABLES,
    VECTOR_TABLES,
    AgentBase,
    Checkpoint,
    StoreItem,
)
from app_data.models import Base
from checkpoint_pg import PostgresSaver
from store import PostgresStore
from tests.app_data.conftest import new_project


def setup_langgraph(dsn: str, *, vectors: bool = False) -> None:
    """Create the savers' and the store's tables the way applications do."""
    with psycopg.connect(dsn, autocommit=True) as conn:
        PostgresSaver(conn).setup()
        index = (
            {"dims": 3, "embed": lambda texts: [[0.1, 0.2, 0.3] for _ in texts]}
            if vectors
            else None
        )
        PostgresStore(conn, index=index).setup()


def _only(tables: set[str]) -> Any:
    def include(obj: object, name: str | None, type_: str, reflected: bool, other: Any) -> bool:
        if type_ == "table":
            return name in tables
        # The ANN index's kind and parameters depend on the store's index configuration.
        return name != "store_vectors_embedding_idx"

    return include


async def _diff(db: Database, metadata: Any, include: Any) -> list[Any]:
    def run(conn: Connection) -> list[Any]:
        ctx = MigrationContext.configure(
            conn,
            opts={
                "compare_type": migrations.compare_type,
                "compare_server_default": True,
                "include_object": include,
                "version_table": migrations.VERSION_TABLE,
            },
        )
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", "Did not recognize type 'vector'")
            return list(compare_metadata(ctx, metadata))

    async with db.engine.connect() as conn:
        return await conn.run_sync(run)


async def test_the_mappings_match_the_tables_the_savers_and_the_store_create(dsn: str) -> None:
    setup_langgraph(dsn)
    async with Database(dsn) as db:
        diff = await _diff(
            db, AgentBase.metadata, _only(set(CHECKPOINT_TABLES) | set(STORE_TABLES))
        )
    assert diff == []


async def test_the_vector_mappings_match_a_store_with_an_index(
    dsn: str, requires_pgvector: None
) -> None:
    setup_langgraph(dsn, vectors=True)
    async with Database(dsn) as db:
        diff = await _diff(db, AgentBase.metadata, _only(set(VECTOR_TABLES) | {"store"}))
    assert diff == []


async def test_one_database_holds_exactly_the_mapped_tables(migrated: str) -> None:
    # Savers, store and app_data in one schema: every table is accounted for, nothing differs.
    setup_langgraph(migrated)
    async with Database(migrated) as db:
        diff = await _diff(db, [Base.metadata, AgentBase.metadata], _only_not_vectors())
    assert diff == []


def _only_not_vectors() -> Any:
    def include(obj: object, name: str | None, type_: str, reflected: bool, other: Any) -> bool:
        return not (type_ == "table" and name in VECTOR_TABLES)

    return include


async def test_the_drift_check_sees_a_missing_saver_index(dsn: str) -> None:
    setup_langgraph(dsn)
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute("DROP INDEX checkpoints_metadata_idx")
    async with Database(dsn) as db:
        diff = await _diff(db, AgentBase.metadata, _only(set(CHECKPOINT_TABLES)))
    assert [d[0] for d in diff] == ["add_index"]


# -- read-only ----------------------------------------------------------------------------------


async def _flush_new_checkpoint(db: Database) -> None:
    async with db.transaction() as session:
        session.add(Checkpoint(thread_id="t", checkpoint_ns="", checkpoint_id="c", checkpoint={}))
        await session.flush()


async def _run(db: Database, statement: Any) -> None:
    async with db.transaction() as session:
        await session.execute(statement)


async def test_the_langgraph_mappings_refuse_writes(dsn: str) -> None:
    setup_langgraph(dsn)
    async with Database(dsn) as db:
        with pytest.raises(ReadOnlyModelError, match="checkpoints"):
            await _flush_new_checkpoint(db)
        with pytest.raises(ReadOnlyModelError):
            await _run(db, insert(StoreItem).values(prefix="p", key="k", value={}))
        with pytest.raises(ReadOnlyModelError):
            await _run(db, update(StoreItem).values(value={}))
        async with db.transaction() as session:
            assert (await session.execute(select(Checkpoint))).all() == []


class State(TypedDict):
    count: int


def _graph(saver: PostgresSaver) -> Any:
    builder = StateGraph(State)
    builder.add_node("step", lambda state: {"count": state["count"] + 1})
    builder.add_edge(START, "step")
    builder.add_edge("step", END)
    return builder.compile(checkpointer=saver)


async def test_a_projects_agent_threads_are_reported_from_the_checkpoints(migrated: str) -> None:
    setup_langgraph(migrated)
    async with Database(migrated) as db:
        service = AppDataService(db)
        project = await new_project(service)
        other = await new_project(service, "0xother")
        with psycopg.connect(migrated, autocommit=True) as conn:
            graph = _graph(PostgresSaver(conn))
            for thread, pid, runs in (("t-1", project.id, 2), ("t-2", project.id, 1)):
                config = {"configurable": {"thread_id": thread, "project_id": pid}}
                for _ in range(runs):
                    graph.invoke({"count": 0}, config)
            graph.invoke({"count": 0}, {"configurable": {"thread_id": "x", "project_id": other.id}})

        threads = await service.project_threads(project.id)

        async with db.transaction() as session:
            stored = (
                await session.execute(
                    select(Checkpoint.thread_id, Checkpoint.checkpoint_id).where(
                        Checkpoint.thread_id.in_(["t-1", "t-2"])
                    )
                )
            ).all()
        assert await service.project_threads("ghost") == []
    assert {t.thread_id for t in threads} == {"t-1", "t-2"}
    by_id = {t.thread_id: t for t in threads}
    assert by_id["t-1"].checkpoints == 2 * by_id["t-2"].checkpoints
    assert by_id["t-1"].last_checkpoint_id == max(c for t, c in stored if t == "t-1")
    assert threads[0].thread_id == "t-2"  # most recent activity first
    assert all(t.last_activity is not None and t.last_activity.tzinfo for t in threads)
