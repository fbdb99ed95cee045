"""The get_delta_channel_history statement, from history.sql."""

from __future__ import annotations

from functools import cache

from psycopg import sql

from checkpoint_pg._sql.tables import compose, load_file, render

__all__ = ["HISTORY", "delta_history_statement", "has_value"]

HISTORY = load_file("history.sql")


def has_value(schema: str | None) -> sql.Composed:
    """The `has_value` test (does checkpoint `p` store channel `ch`?), as a part."""
    return compose(HISTORY, "has_value", schema)


@cache
def delta_history_statement(schema: str | None) -> str:
    """The `get_delta_channel_history` query for `schema`."""
    return render(HISTORY, "delta_history", schema, has_value=has_value(schema))
