"""The `checkpoint-pg` operator commands, run in-process with click's `CliRunner`.

`seeded` is a schema (the per-test `dsn`) holding what a real deployment holds: threads written
by a small LangGraph graph through our `PostgresSaver` (one with two turns, one waiting at an
`interrupt()` with a pending write, one in a subgraph namespace) and store items.
"""

from __future__ import annotations

import json
import operator
from collections.abc import Callable
from dataclasses import dataclass
from typing import Annotated, Any

import pytest
from click.testing import CliRunner, Result
from langchain_core.messages import AIMessage, AnyMessage, HumanMessage
from langgraph.graph import END, START, StateGraph
from langgraph.graph.message import add_messages
from langgraph.types import interrupt
from typing_extensions import TypedDict

from checkpoint_pg import PostgresSaver
from checkpoint_pg.cli import main
from store import PostgresStore

CHAT = "chat-1"
WAITING = "waiting-1"
NESTED = "nested-1"


class State(TypedDict):
    messages: Annotated[list[AnyMessage], add_messages]
    turns: Annotated[int, operator.add]


def reply(state: State) -> dict[str, Any]:
    last = state["messages"][-1].content
    return {"messages": [AIMessage(f"you said: {last}")], "turns": 1}


def ask(state: State) -> dict[str, Any]:
    answer = interrupt("approve?")
    return {"messages": [AIMessage(f"approved: {answer}")], "turns": 1}


def chat_graph() -> StateGraph[Any]:
    graph = StateGraph(State)
    graph.add_node("reply", reply)
    graph.add_edge(START, "reply")
    graph.add_edge("reply", END)
    return graph


def approval_graph() -> StateGraph[Any]:
    graph = StateGraph(State)
    graph.add_node("ask", ask)
    graph.add_edge(START, "ask")
    graph.add_edge("ask", END)
    return graph


def nested_graph() -> StateGraph[Any]:
    graph = StateGraph(State)
    graph.add_node("inner", chat_graph().compile())
    graph.add_edge(START, "inner")
    graph.add_edge("inner", END)
    return graph


@dataclass(frozen=True)
class Seeded:
    dsn: str
    chat_checkpoints: list[str]  # newest first

    def run(
        self, *args: str, input: str | None = None, env: dict[str, str] | None = None
    ) -> Result:
        return invoke(*args, "--dsn", self.dsn, input=input, env=env)


def invoke(*args: str, input: str | None = None, env: dict[str, str] | None = None) -> Result:
    """Run `checkpoint-pg ARGS` in-process, without any DSN from the outer environment."""
    runner = CliRunner()
    environment: dict[str, str | None] = {"CHECKPOINT_PG_DSN": None, "COLUMNS": "200"}
    environment.update(env or {})
    return runner.invoke(main, list(args), input=input, env=environment, catch_exceptions=False)


def parsed(result: Result) -> Any:
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


def seed(dsn: str) -> Seeded:
    with PostgresSaver.from_conn_string(dsn, pool_size=1) as saver:
        saver.setup()
        chat = chat_graph().compile(checkpointer=saver)
        config: Any = {"configurable": {"thread_id": CHAT}}
        chat.invoke({"messages": [HumanMessage("hello")], "turns": 0}, config)
        chat.invoke({"messages": [HumanMessage("how are you")]}, config)
        waiting = approval_graph().compile(checkpointer=saver)
        waiting.invoke(
            {"messages": [HumanMessage("delete it")], "turns": 0},
            {"configurable": {"thread_id": WAITING}},
        )
        nested = nested_graph().compile(checkpointer=saver)
        nested.invoke(
            {"messages": [HumanMessage("deep")], "turns": 0},
            {"configurable": {"thread_id": NESTED}},
        )
        history = [t.config["configurable"]["checkpoint_id"] for t in saver.list(config)]
    with PostgresStore.from_conn_string(dsn, pool_config={"max_size": 1}) as store:
        store.setup()
        store.put(("users", "42"), "prefs", {"text": "likes short answers", "score": 7})
        store.put(("users", "42"), "style", {"text": "formal", "score": 2})
        store.put(("users", "43"), "prefs", {"text": "likes long answers", "score": 9})
        store.put(("docs",), "readme", {"text": "read me"})
    return Seeded(dsn, history)


@pytest.fixture
def seeded(dsn: str) -> Seeded:
    return seed(dsn)


@pytest.fixture
def run() -> Callable[..., Result]:
    return invoke
