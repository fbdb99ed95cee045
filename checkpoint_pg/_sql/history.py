"""The get_delta_channel_history statement, from history.sql."""

from __future__ import annotations

from functools import cache

from psycopg import sql

from checkpoint_pg._sql.tables import compose, load_file, render

__all__ = ["HISTORY", "delta_history_statement", "has_value"]

HISTORY = load_file("history.sql")


def has_value(schema: str | None, *, one_thread: bool) -> sql.Composed:
    """The `has_value` test (does checkpoint `p` store channel `ch`?), as a part: keyed by
    the thread_id parameter, or by `p`'s thread among the statement's thread_ids."""
    thread = (
        sql.SQL("%(thread_id)s")
        if one_thread
        else sql.SQL("p.thread_id AND hb.thread_id = ANY(%(thread_ids)s::text[])")
    )
    return compose(HISTORY, "has_value", schema, thread=thread)


@cache
def delta_history_statement(schema: str | None) -> str:
    """The `get_delta_channel_history` query for `schema`."""
    return render(HISTORY, "delta_history", schema, has_value=has_value(schema, one_thread=True))
