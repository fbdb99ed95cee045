"""Which user and project a tool call works for: read from the run, never from the model.

The application starts a run with the scope in its config or its LangGraph context::

    graph.invoke(inputs, {"configurable": {"thread_id": t, "user_id": u, "project_id": p}})
    graph.invoke(inputs, config, context={"user_id": u, "project_id": p})  # context_schema

Both are set by the application; the model only writes tool arguments, and no tool has an
argument for either id. When both sources name a value they must agree. The ids in
``configurable`` also land in the checkpoints' metadata, which is how
`AppDataService.project_threads` finds a project's threads.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from app_data.errors import MissingScopeError
from app_data.schemas import ProjectRef, UserRef, parse

__all__ = ["SCOPE_KEYS", "ToolScope", "resolve_scope"]

SCOPE_KEYS = ("user_id", "project_id")


@dataclass(frozen=True)
class ToolScope:
    """The user and project a tool call acts for, and the thread it runs in (if any)."""

    user_id: str
    project_id: str
    thread_id: str | None = None


def _read(source: Any, key: str) -> Any:
    if source is None:
        return None
    if isinstance(source, Mapping):
        return source.get(key)
    return getattr(source, key, None)


def resolve_scope(config: Mapping[str, Any] | None, context: Any = None) -> ToolScope:
    """Read the scope from a run's `config` (``configurable``) and its runtime `context`.

    Args:
        config: the run's `RunnableConfig`.
        context: the run's LangGraph context (a mapping or an object with attributes).

    Raises:
        MissingScopeError: a key is missing, or the two sources disagree.
        InvalidInputError: an id is not a valid identifier.
    """
    configurable = _read(config, "configurable") or {}
    values: dict[str, Any] = {}
    for key in SCOPE_KEYS:
        from_context, from_config = _read(context, key), _read(configurable, key)
        if from_context is not None and from_config is not None and from_context != from_config:
            raise MissingScopeError(
                f"the run's context and its config name different {key}s; the application "
                "must give one"
            )
        values[key] = from_context if from_context is not None else from_config
    missing = [key for key in SCOPE_KEYS if values[key] in (None, "")]
    if missing:
        raise MissingScopeError(
            "this run is not attached to a project, so the project tools cannot be used: the "
            f"application must start it with {' and '.join(missing)} in its config "
            "('configurable') or context; tool arguments cannot set them"
        )
    user_id = parse(UserRef, user_id=values["user_id"]).user_id
    project_id = parse(ProjectRef, project_id=values["project_id"]).project_id
    thread_id = _read(configurable, "thread_id")
    return ToolScope(
        user_id=user_id,
        project_id=project_id,
        thread_id=thread_id if isinstance(thread_id, str) and thread_id else None,
    )
