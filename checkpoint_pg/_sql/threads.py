"""The prune statements, from threads.sql (the others of that file are in `Statements`)."""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache

from psycopg import sql

from checkpoint_pg._sql.history import has_value
from checkpoint_pg._sql.tables import compose, load_file, render

__all__ = ["THREADS", "PruneStatements", "prune_statements_for", "thread_statement"]

THREADS = load_file("threads.sql")


def _parts(schema: str | None) -> dict[str, sql.Composable]:
    return {"writes_and_freed_of_gone": compose(THREADS, "writes_and_freed_of_gone", schema)}


def thread_statement(schema: str | None, name: str) -> str:
    """Statement `name` of threads.sql for `schema`."""
    return render(THREADS, name, schema, **_parts(schema))


@dataclass(frozen=True)
class PruneStatements:
    """The three steps of prune(strategy="keep_latest"), see checkpoint_pg/_prune.py."""

    heads: str
    delta_chains: str
    apply: str


@cache
def prune_statements_for(schema: str | None) -> PruneStatements:
    """The keep_latest statements for `schema`."""
    return PruneStatements(
        heads=thread_statement(schema, "prune_heads"),
        delta_chains=render(THREADS, "prune_delta_chains", schema, has_value=has_value(schema)),
        apply=thread_statement(schema, "prune_apply"),
    )
