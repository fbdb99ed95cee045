"""`checkpoint-pg demo`: a small LangGraph graph with durable checkpoints, then its history.

Runs on the embedded PostgreSQL 18 unless a DSN is given, so it needs nothing else installed
or running. Each run uses a new thread, so running it again is harmless.
"""

from __future__ import annotations

import operator
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Annotated, TypedDict

from langchain_core.runnables import RunnableConfig
from langgraph.graph import END, START, StateGraph

from checkpoint_pg.connection import mask_dsn
from checkpoint_pg.saver import PostgresSaver


class DemoState(TypedDict):
    steps: Annotated[list[str], operator.add]
    total: int


def _plan(state: DemoState) -> dict[str, object]:
    return {"steps": ["plan: split the work in three"], "total": state["total"] + 1}


def _work(state: DemoState) -> dict[str, object]:
    return {"steps": [f"work: item {state['total']}"], "total": state["total"] * 10}


def _review(state: DemoState) -> dict[str, object]:
    return {"steps": [f"review: total is {state['total']}"], "total": state["total"]}


def build_graph(saver: PostgresSaver):  # type: ignore[no-untyped-def]
    """The demo graph: plan → work → review, checkpointed after every step."""
    graph = StateGraph(DemoState)
    graph.add_node("plan", _plan)
    graph.add_node("work", _work)
    graph.add_node("review", _review)
    graph.add_edge(START, "plan")
    graph.add_edge("plan", "work")
    graph.add_edge("work", "review")
    graph.add_edge("review", END)
    return graph.compile(checkpointer=saver)


@contextmanager
def database(dsn: str | None, say: Callable[[str], None]) -> Iterator[str]:
    """The given DSN, or the embedded server's (started for the duration of the block)."""
    if dsn:
        say(f"PostgreSQL: {mask_dsn(dsn)}")
        yield dsn
        return
    from checkpoint_pg.embedded import start_embedded

    server = start_embedded()
    say(f"PostgreSQL: embedded server in {server.data_dir}")
    try:
        yield server.dsn
    finally:
        server.stop()


def run_demo(dsn: str | None, say: Callable[[str], None] = print) -> list[str]:
    """Run the graph on a new thread and print its checkpoint history; return the steps."""
    with database(dsn, say) as url, PostgresSaver.from_conn_string(url) as saver:
        saver.setup()
        graph = build_graph(saver)
        config: RunnableConfig = {"configurable": {"thread_id": f"demo-{uuid.uuid4().hex[:8]}"}}
        result = graph.invoke({"steps": [], "total": 1}, config)
        say(f"thread {config['configurable']['thread_id']}: final state {result}")
        say("checkpoint history (newest first):")
        for snapshot in saver.list(config):
            meta = snapshot.metadata
            values = snapshot.checkpoint["channel_values"]
            say(
                f"  step {meta.get('step'):>2}  {meta.get('source'):<5}  "
                f"{snapshot.checkpoint['id']}  steps={len(values.get('steps', []))}"
                f"  total={values.get('total')}"
            )
        return list(result["steps"])
