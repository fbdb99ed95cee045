"""Citus support shared by the savers and the stores: detect it, distribute tables.

`setup(distributed=True)` runs the usual migrations, then `distribute` shards each table by
its key (co-located, so one thread's or one namespace's rows of every table share a node) and
makes the migration tables reference tables. Statements that Citus cannot plan the way a
single server does take a second form where the caller finds `citus_installed` true.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from checkpoint_pg._runtime.errors import CitusUnavailableError, SchemaMismatchError
from checkpoint_pg._runtime.protocol import Query, Steps
from checkpoint_pg._runtime.sqlfile import load

__all__ = ["ShardedTable", "citus_installed", "distribute"]

CITUS = load("checkpoint_pg._runtime", "citus.sql")


@dataclass(frozen=True)
class ShardedTable:
    """A table to shard by `column`, co-located with `colocate` (None: starts a group)."""

    name: str
    column: str
    colocate: str | None = None


def citus_installed() -> Steps[bool]:
    """Whether the database has the citus extension (one catalog query)."""
    rows = yield Query(CITUS["citus_installed"].text, fetch=True)
    return bool(rows and rows[0][0])


def distribute(sharded: Sequence[ShardedTable], references: Sequence[str]) -> Steps[int]:
    """Shard `sharded` and replicate `references`, skipping what is already so; return how
    many tables changed. A table distributed some other way raises `SchemaMismatchError`."""
    if not (yield from citus_installed()):
        raise CitusUnavailableError(
            "setup(distributed=True) needs the citus extension in this database "
            "(CREATE EXTENSION citus on the coordinator and on every worker)"
        )
    names = [t.name for t in sharded] + list(references)
    rows = yield Query(CITUS["distribution"].text, {"names": names}, fetch=True)
    now = {name: (method, column) for name, method, column in rows}
    changed = 0
    for table in sharded:
        method, column = now[table.name]
        if method == "h" and column == table.column:
            continue
        if method is not None:
            raise SchemaMismatchError(
                f"{table.name} is distributed already, not by hash of {table.column}: "
                "it is never redistributed in place"
            )
        params = {"table": table.name, "column": table.column, "colocate": table.colocate or "none"}
        yield Query(CITUS["distribute"].text, params, fetch=True)
        changed += 1
    for name in references:
        if now[name][0] is None:
            yield Query(CITUS["make_reference"].text, {"table": name}, fetch=True)
            changed += 1
    return changed
