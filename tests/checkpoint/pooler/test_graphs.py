"""Real LangGraph graphs checkpointed through PgBouncer, many threads at once.

Each run pauses before its last node (an interrupt), is resumed from its checkpoint, and must
end with exactly its own state and its own history.
"""

from __future__ import annotations

import asyncio
import operator
from typing import Annotated, Any, TypedDict

from langgraph.graph import END, START, StateGraph

from checkpoint_pg import AsyncPostgresSaver, PostgresSaver
from tests.support.pooler import CLIENTS, in_threads


class State(TypedDict):
    owner: str
    trail: Annotated[list[str], operator.add]


def _node(name: str) -> Any:
    def step(state: State) -> dict[str, Any]:
        return {"trail": [f"{state['owner']}:{name}"]}

    return step


def build(checkpointer: Any) -> Any:
    graph = StateGraph(State)
    for name in ("plan", "act", "check", "finish"):
        graph.add_node(name, _node(name))
    graph.add_edge(START, "plan")
    graph.add_edge("plan", "act")
    graph.add_edge("act", "check")
    graph.add_edge("check", "finish")
    graph.add_edge("finish", END)
    return graph.compile(checkpointer=checkpointer, interrupt_before=["finish"])


def expected(owner: str) -> list[str]:
    return [f"{owner}:{n}" for n in ("plan", "act", "check", "finish")]


def test_graph_runs_in_threads(pooled_dsn: str) -> None:
    with PostgresSaver.from_conn_string(pooled_dsn, pooler=True, pool_size=CLIENTS) as saver:
        saver.setup()
        graph = build(saver)

        def run(i: int) -> None:
            owner = f"g{i}"
            cfg = {"configurable": {"thread_id": owner}}
            paused = graph.invoke({"owner": owner, "trail": []}, cfg)
            assert paused["trail"] == expected(owner)[:3]
            assert graph.get_state(cfg).next == ("finish",)
            done = graph.invoke(None, cfg)
            assert done == {"owner": owner, "trail": expected(owner)}
            history = list(graph.get_state_history(cfg))
            assert {s.values["owner"] for s in history if "owner" in s.values} == {owner}
            assert len(history) == 6  # input, plan, act, check, finish + the start

        in_threads(CLIENTS * 2, run)


async def test_graph_runs_as_tasks(pooled_dsn: str) -> None:
    async with AsyncPostgresSaver.from_conn_string(
        pooled_dsn, pooler=True, pool_size=CLIENTS
    ) as saver:
        await saver.setup()
        graph = build(saver)

        async def run(i: int) -> None:
            owner = f"ag{i}"
            cfg = {"configurable": {"thread_id": owner}}
            await graph.ainvoke({"owner": owner, "trail": []}, cfg)
            done = await graph.ainvoke(None, cfg)
            assert done == {"owner": owner, "trail": expected(owner)}
            state = await graph.aget_state(cfg)
            assert state.values == done
            assert state.next == ()

        await asyncio.gather(*(run(i) for i in range(CLIENTS * 2)))
