"""End-to-end fixtures: a schema with every table, two users with a project each, agent runs.

`world` is the database as an agent platform sees it: the owner's project (where runs are
scoped) and a stranger's project holding a secret file that no run of the owner may read or
change. `run_agent` runs the demo's agent graph with a scripted model, blocking
(``graph.invoke`` with `ProjectTools.open`) or async (``graph.ainvoke`` on the test's loop).
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterator, Sequence
from contextlib import asynccontextmanager, contextmanager
from dataclasses import dataclass
from typing import Any

import psycopg
import pytest
from langchain_core.messages import AIMessage, BaseMessage, HumanMessage, ToolMessage
from langchain_core.runnables import RunnableConfig

from app_data import AppDataService, Database, ProjectType, migrations
from app_data.tools import ProjectTools, ScriptedChatModel
from checkpoint_pg import AsyncPostgresSaver, PostgresSaver
from checkpoint_pg.cli.demo import build_agent
from store import AsyncPostgresStore, PostgresStore

SECRET = "the stranger's secret"
MODES = ["sync", "async"]


@dataclass(frozen=True)
class World:
    dsn: str
    user_id: str
    project_id: str
    stranger_id: str
    stranger_project_id: str

    def config(self, thread_id: str | None = "t-1", **overrides: str | None) -> RunnableConfig:
        configurable: dict[str, str | None] = {
            "thread_id": thread_id,
            "user_id": self.user_id,
            "project_id": self.project_id,
            **overrides,
        }
        return {"configurable": {k: v for k, v in configurable.items() if v is not None}}


@pytest.fixture
async def world(dsn: str) -> World:
    await migrations.upgrade(dsn)
    with PostgresSaver.from_conn_string(dsn, pool_size=1) as saver:
        saver.setup()
    with PostgresStore.from_conn_string(dsn, pool_config={"max_size": 1}) as memory:
        memory.setup()
    async with Database(dsn, pool_size=1, max_overflow=1) as db:
        service = AppDataService(db)
        owner = await service.create_user("0xowner", id="owner")
        mine = await service.create_project(owner.id, "mine", ProjectType.GAME, id="mine")
        stranger = await service.create_user("0xstranger", id="stranger")
        theirs = await service.create_project(stranger.id, "theirs", ProjectType.GAME, id="theirs")
        await service.save_file(theirs.id, "secret.txt", SECRET)
    return World(dsn, owner.id, mine.id, stranger.id, theirs.id)


# -- reading rows back --------------------------------------------------------------------------


def files(dsn: str, project_id: str) -> dict[str, tuple[str, bool]]:
    """``{path: (content, deleted)}`` of a project, straight from the table."""
    with psycopg.connect(dsn) as conn:
        rows = conn.execute(
            'SELECT path, content, deleted_at IS NOT NULL FROM "ProjectFile" '
            "WHERE project_id = %s ORDER BY path",
            (project_id,),
        ).fetchall()
    return {path: (content, deleted) for path, content, deleted in rows}


def thoughts(dsn: str, project_id: str) -> list[tuple[str, str, str | None]]:
    """``(kind, content, thread_id)`` of a project's thoughts, oldest first."""
    with psycopg.connect(dsn) as conn:
        rows = conn.execute(
            'SELECT kind, content, thread_id FROM "ProjectThought" '
            "WHERE project_id = %s ORDER BY created_at, id",
            (project_id,),
        ).fetchall()
    return [(kind, content, thread) for kind, content, thread in rows]


def tool_results(messages: Sequence[BaseMessage]) -> list[ToolMessage]:
    return [m for m in messages if isinstance(m, ToolMessage)]


def final_answer(messages: Sequence[BaseMessage]) -> str:
    last = messages[-1]
    assert isinstance(last, AIMessage), last
    assert not last.tool_calls, last
    return str(last.content)


# -- running an agent ---------------------------------------------------------------------------


@contextmanager
def blocking_graph(
    world: World, script: list[Any], *, store: bool, db_options: dict[str, Any], **tool_options: Any
) -> Iterator[Any]:
    with (
        ProjectTools.open(world.dsn, database_options=db_options, **tool_options) as toolkit,
        PostgresSaver.from_conn_string(world.dsn, pool_size=2) as saver,
        PostgresStore.from_conn_string(world.dsn, pool_config={"max_size": 2}) as memory,
    ):
        model = ScriptedChatModel(script=script)
        yield build_agent(model, toolkit.tools, checkpointer=saver, store=memory if store else None)


@asynccontextmanager
async def async_graph(
    world: World, script: list[Any], *, store: bool, db_options: dict[str, Any], **tool_options: Any
) -> AsyncIterator[Any]:
    async with (
        Database(world.dsn, pool_size=2, **db_options) as db,
        AsyncPostgresSaver.from_conn_string(world.dsn, pool_size=2) as saver,
        AsyncPostgresStore.from_conn_string(world.dsn, pool_config={"max_size": 2}) as memory,
    ):
        toolkit = ProjectTools(AppDataService(db), **tool_options)
        model = ScriptedChatModel(script=script)
        yield build_agent(model, toolkit.tools, checkpointer=saver, store=memory if store else None)


async def run_agent(
    mode: str,
    world: World,
    script: list[Any],
    *,
    config: RunnableConfig | None = None,
    request: str = "go",
    store: bool = True,
    db_options: dict[str, Any] | None = None,
    **tool_options: Any,
) -> list[BaseMessage]:
    """Run the agent on `script` to the end; return the thread's messages."""
    run_config = config or world.config()
    run_input = {"messages": [HumanMessage(request)]}
    options = db_options or {}
    if mode == "sync":

        def blocking() -> list[BaseMessage]:
            with blocking_graph(
                world, script, store=store, db_options=options, **tool_options
            ) as graph:
                return list(graph.invoke(run_input, run_config)["messages"])

        return await asyncio.to_thread(blocking)
    async with async_graph(world, script, store=store, db_options=options, **tool_options) as graph:
        return list((await graph.ainvoke(run_input, run_config))["messages"])
