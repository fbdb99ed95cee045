"""A real LangGraph agent loop without an LLM: the graph both implementations checkpoint.

An ``agent`` node answers with a tool call, a ``tools`` node answers the call, and so on
until the agent has made its last call and replies: 25 super-steps in all. State is one
``messages`` channel reduced by `add_messages`, so every checkpoint re-stores the whole
growing list, as a chat agent's does. Message text is fixed per step, so every thread and
both implementations store the same bytes.
"""

from __future__ import annotations

import random
from typing import Annotated, Any, TypedDict

from langchain_core.messages import AIMessage, AnyMessage, HumanMessage, ToolMessage
from langchain_core.runnables import RunnableConfig
from langgraph.checkpoint.base import BaseCheckpointSaver
from langgraph.graph import END, START, StateGraph
from langgraph.graph.message import add_messages

from benchmarks.data import text

__all__ = ["SUPER_STEPS", "AgentState", "agent_config", "agent_input", "build_agent"]

SUPER_STEPS = 25
_TOOL_CALLS = (SUPER_STEPS - 1) // 2
_AI_CHARS = 400
_TOOL_CHARS = 1_500


class AgentState(TypedDict):
    messages: Annotated[list[AnyMessage], add_messages]


def _reply(turn: int) -> AIMessage:
    body = text(random.Random(f"ai-{turn}"), _AI_CHARS)
    if turn >= _TOOL_CALLS:
        return AIMessage(id=f"ai-{turn}", content=body)
    call = {"name": "lookup", "args": {"query": body[:40]}, "id": f"call-{turn}"}
    return AIMessage(id=f"ai-{turn}", content=body, tool_calls=[call])


def _tool_result(turn: int) -> ToolMessage:
    body = text(random.Random(f"tool-{turn}"), _TOOL_CHARS)
    return ToolMessage(id=f"tool-{turn}", content=body, tool_call_id=f"call-{turn}")


def _turn(state: AgentState) -> int:
    return sum(isinstance(m, AIMessage) for m in state["messages"])


def _agent(state: AgentState) -> dict[str, Any]:
    return {"messages": [_reply(_turn(state))]}


def _tools(state: AgentState) -> dict[str, Any]:
    return {"messages": [_tool_result(_turn(state) - 1)]}


async def _aagent(state: AgentState) -> dict[str, Any]:
    return _agent(state)


async def _atools(state: AgentState) -> dict[str, Any]:
    return _tools(state)


def _route(state: AgentState) -> str:
    last = state["messages"][-1]
    return "tools" if isinstance(last, AIMessage) and last.tool_calls else END


def build_agent(saver: BaseCheckpointSaver[Any], *, asynchronous: bool = False) -> Any:
    """The compiled agent graph, checkpointed by `saver` (async nodes for `ainvoke`)."""
    graph = StateGraph(AgentState)
    graph.add_node("agent", _aagent if asynchronous else _agent)
    graph.add_node("tools", _atools if asynchronous else _tools)
    graph.add_edge(START, "agent")
    graph.add_conditional_edges("agent", _route, ["tools", END])
    graph.add_edge("tools", "agent")
    return graph.compile(checkpointer=saver)


def agent_input() -> dict[str, Any]:
    """The user's opening message."""
    return {"messages": [HumanMessage(id="human-0", content=text(random.Random("human"), 300))]}


def agent_config(thread_id: str) -> RunnableConfig:
    """Config of one run on `thread_id`, with room for all super-steps."""
    return {"configurable": {"thread_id": thread_id}, "recursion_limit": SUPER_STEPS + 10}
