"""The fixed statements of one saver, rendered once per schema and kept on the saver."""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache

from checkpoint_pg._sql.hot_path import select_statement
from checkpoint_pg._sql.schema import SCHEMA
from checkpoint_pg._sql.tables import render
from checkpoint_pg._sql.threads import thread_statement

__all__ = ["Statements", "statements_for"]


@dataclass(frozen=True)
class Statements:
    """The rendered statements for one schema (or the search_path when schema is None)."""

    create_schema: str
    xact_lock_migrations: str
    latest_migration: str
    record_migration: str
    latest_own_migration: str
    record_own_migration: str

    select_latest: str
    select_by_id: str

    delete_thread: str
    delete_for_runs: str
    delete_for_runs_in_threads: str
    run_threads: str
    copy_thread: str
    sealed_thread_checkpoints: str
    sealed_thread_blobs: str
    sealed_thread_writes: str
    copy_sealed_thread: str
    prune_delete: str


@cache
def statements_for(schema: str | None) -> Statements:
    """The statements of a saver whose tables live in `schema` (None: the search_path)."""

    def setup(name: str) -> str:
        return render(SCHEMA, name, schema)

    return Statements(
        create_schema=setup("create_schema" if schema else "nothing"),
        xact_lock_migrations=setup("xact_lock_migrations"),
        latest_migration=setup("latest_migration"),
        record_migration=setup("record_migration"),
        latest_own_migration=setup("latest_own_migration"),
        record_own_migration=setup("record_own_migration"),
        select_latest=select_statement(schema, "select_latest"),
        select_by_id=select_statement(schema, "select_by_id"),
        delete_thread=thread_statement(schema, "delete_thread"),
        delete_for_runs=thread_statement(schema, "delete_for_runs"),
        delete_for_runs_in_threads=thread_statement(schema, "delete_for_runs", scoped=True),
        run_threads=thread_statement(schema, "run_threads"),
        copy_thread=thread_statement(schema, "copy_thread"),
        sealed_thread_checkpoints=thread_statement(schema, "sealed_thread_checkpoints"),
        sealed_thread_blobs=thread_statement(schema, "sealed_thread_blobs"),
        sealed_thread_writes=thread_statement(schema, "sealed_thread_writes"),
        copy_sealed_thread=thread_statement(schema, "copy_sealed_thread"),
        prune_delete=thread_statement(schema, "prune_delete"),
    )
