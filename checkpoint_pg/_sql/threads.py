"""The prune statements, from threads.sql (the others of that file are in `Statements`)."""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache

from psycopg import sql

from checkpoint_pg._sql.history import has_value
from checkpoint_pg._sql.tables import compose, load_file, render

__all__ = ["THREADS", "PruneStatements", "prune_statements_for", "thread_statement"]

THREADS = load_file("threads.sql")


SCOPED = ("w", "g", "b", "k", "d")  # the aliases delete_for_runs (and its fragment) may scope


def _scope(alias: str, scoped: bool) -> sql.Composable:
    return THREADS["thread_scope"].compose(alias=sql.SQL(alias)) if scoped else sql.SQL("")


def _parts(schema: str | None, *, scoped: bool) -> dict[str, sql.Composable]:
    """The scope parts (thread_scope, or nothing) and the shared fragment composed with them."""
    scopes = {f"{alias}_scope": _scope(alias, scoped) for alias in SCOPED}
    fragment = compose(THREADS, "writes_and_freed_of_gone", schema, w_scope=scopes["w_scope"])
    step = compose(THREADS, "based_on_step", schema, d_scope=scopes["d_scope"])
    return {**scopes, "writes_and_freed_of_gone": fragment, "based_on_step": step}


def thread_statement(schema: str | None, name: str, *, scoped: bool = False) -> str:
    """Statement `name` of threads.sql for `schema`; `scoped`: restricted to thread_ids."""
    return render(THREADS, name, schema, **_parts(schema, scoped=scoped))


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
        delta_chains=render(
            THREADS, "prune_delta_chains", schema, has_value=has_value(schema, one_thread=False)
        ),
        apply=thread_statement(schema, "prune_apply", scoped=True),
    )
