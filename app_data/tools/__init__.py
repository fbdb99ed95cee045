"""LangGraph agent tools over a project's files, thoughts and long-term memories.

    async with Database(url) as db:
        tools = ProjectTools(AppDataService(db), approval={"delete_file"}).tools
        graph = builder_with(ToolNode(tools)).compile(checkpointer=saver, store=store)
        await graph.ainvoke(
            {"messages": [...]},
            {"configurable": {"thread_id": "t-1", "user_id": user.id, "project_id": project.id}},
        )

    with ProjectTools.open(url) as toolkit:          # blocking runs: graph.invoke(...)
        graph = builder_with(ToolNode(toolkit.tools)).compile(checkpointer=saver)

The user and the project come from the run's config or context, never from tool arguments;
see `app_data.tools.toolkit` for the error contract and `app_data.tools.scope` for the scope.
"""

from app_data.tools.loop import EventLoopThread
from app_data.tools.scope import SCOPE_KEYS, ToolScope, resolve_scope
from app_data.tools.scripted import ScriptedChatModel, call, reply
from app_data.tools.toolkit import TOOL_NAMES, ProjectTools, memory_namespace

__all__ = [
    "SCOPE_KEYS",
    "TOOL_NAMES",
    "EventLoopThread",
    "ProjectTools",
    "ScriptedChatModel",
    "ToolScope",
    "call",
    "memory_namespace",
    "reply",
    "resolve_scope",
]
