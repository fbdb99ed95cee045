"""The names a docs snippet may use without defining them, each built only when it is used.

- ``DSN``, ``url``: the test's own database (a schema of its own on the test server);
- ``conn``: an autocommit psycopg connection to it;
- ``saver``, ``store``: a `PostgresSaver` and a `PostgresStore` on it, tables set up;
- ``builder``: a LangGraph `StateGraph` over `MessagesState` whose one node answers;
- ``builder_with(tool_node)``: a graph builder whose scripted model writes a file with the tools
  of `tool_node` and then answers;
- ``embeddings``: LangChain's deterministic fake embeddings (1536 dimensions);
- ``user_id``, ``project_id``: a user and a project of `app_data` (its tables migrated).
The environment has ``APP_DATA_DATABASE_URL`` and ``CHECKPOINT_PG_DSN`` set to the DSN.
"""

from __future__ import annotations

import ast
from collections.abc import Callable
from contextlib import AsyncExitStack
from typing import Any

import psycopg
from langchain_core.embeddings.fake import DeterministicFakeEmbedding
from langchain_core.messages import AIMessage
from langgraph.graph import START, MessagesState, StateGraph
from langgraph.prebuilt import ToolNode, tools_condition

NAMES = frozenset(
    {"DSN", "url", "conn", "saver", "store", "builder", "builder_with", "embeddings"}
    | {"user_id", "project_id"}
)


def free_names(code: str) -> set[str]:
    """The names `code` reads and never assigns: those the namespace must provide."""
    tree = ast.parse(code)
    loaded, stored = set(), set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Name):
            (stored if isinstance(node.ctx, ast.Store) else loaded).add(node.id)
        elif isinstance(node, (ast.Import, ast.ImportFrom)):
            stored.update((a.asname or a.name).split(".")[0] for a in node.names)
    return (loaded - stored) & NAMES


def _answering_builder() -> StateGraph[Any]:
    def answer(state: MessagesState) -> dict[str, list[AIMessage]]:
        return {"messages": [AIMessage(f"You said: {state['messages'][-1].content}")]}

    graph = StateGraph(MessagesState)
    graph.add_node("answer", answer)
    graph.add_edge(START, "answer")
    return graph


def _builder_with(tool_node: ToolNode) -> StateGraph[Any]:
    from app_data.tools import ScriptedChatModel, call, reply

    model = ScriptedChatModel(
        script=[reply("", call("write_file", path="README.md", content="# Hello\n")), "Added."]
    ).bind_tools(list(tool_node.tools_by_name.values()))

    def agent(state: MessagesState) -> dict[str, list[Any]]:
        return {"messages": [model.invoke(state["messages"])]}

    async def aagent(state: MessagesState) -> dict[str, list[Any]]:
        return {"messages": [await model.ainvoke(state["messages"])]}

    from langchain_core.runnables import RunnableLambda

    graph = StateGraph(MessagesState)
    graph.add_node("agent", RunnableLambda(agent, afunc=aagent))
    graph.add_node("tools", tool_node)
    graph.add_edge(START, "agent")
    graph.add_conditional_edges("agent", tools_condition)
    graph.add_edge("tools", "agent")
    return graph


async def _app_scope(dsn: str) -> tuple[str, str]:
    from app_data import AppDataService, Database, ProjectType, migrations

    await migrations.upgrade(dsn)
    async with Database(dsn, pool_size=1, max_overflow=0) as db:
        service = AppDataService(db)
        user = await service.create_user("0xdocs", id="docs-user")
        project = await service.create_project(user.id, "docs", ProjectType.GAME, id="docs-project")
    return user.id, project.id


async def build(names: set[str], dsn: str, stack: AsyncExitStack) -> dict[str, Any]:
    """The namespace for a snippet that reads `names`; what it opens closes with `stack`."""
    from checkpoint_pg import PostgresSaver
    from store import PostgresStore

    ns: dict[str, Any] = {"DSN": dsn, "url": dsn}
    makers: dict[str, Callable[[], Any]] = {
        "conn": lambda: stack.enter_context(psycopg.connect(dsn, autocommit=True)),
        "builder": _answering_builder,
        "builder_with": lambda: _builder_with,
        "embeddings": lambda: DeterministicFakeEmbedding(size=1536),
    }
    for name in sorted(names & makers.keys()):
        ns[name] = makers[name]()
    if "saver" in names:
        ns["saver"] = stack.enter_context(PostgresSaver.from_conn_string(dsn, pool_size=2))
        ns["saver"].setup()
    if "store" in names:
        ns["store"] = stack.enter_context(PostgresStore.from_conn_string(dsn))
        ns["store"].setup()
    if names & {"user_id", "project_id"}:
        ns["user_id"], ns["project_id"] = await _app_scope(dsn)
    return ns
