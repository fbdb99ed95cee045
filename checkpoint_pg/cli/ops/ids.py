"""Checkpoint ids as people type and read them: unique prefixes, like abbreviated git hashes.

A full id is 36 characters; tables print the shortest prefix that is unique in its thread (at
least `SHORT_MIN` characters), and every command that takes an id takes such a prefix (at least
`PREFIX_MIN` characters). An ambiguous prefix is a usage error (exit 2) listing the candidates;
a prefix nothing starts with is not found (exit 3).
"""

from __future__ import annotations

from collections.abc import Iterable

import click
from psycopg import sql

from checkpoint_pg.cli.ops.common import NotFoundError, Session

__all__ = ["PREFIX_MIN", "SHORT_MIN", "resolve_checkpoint_id", "short_ids"]

PREFIX_MIN = 4
SHORT_MIN = 8
CANDIDATES_SHOWN = 10

Key = tuple[str, str]  # (thread_id, checkpoint_id)


def resolve_checkpoint_id(
    session: Session, thread_id: str, checkpoint_ns: str | None, prefix: str
) -> str:
    """The one checkpoint id of the thread (and namespace, unless None) starting with `prefix`.

    Raises:
        click.BadParameter: fewer than `PREFIX_MIN` characters (exit 2).
        click.UsageError: several ids start with it; the message lists them (exit 2).
        NotFoundError: none does (exit 3).
    """
    prefix = prefix.strip().lower()
    if len(prefix) < PREFIX_MIN:
        raise click.BadParameter(
            f"{prefix!r}: give at least {PREFIX_MIN} characters of a checkpoint id"
        )
    conditions = [
        sql.SQL("thread_id = %(thread_id)s"),
        sql.SQL("left(checkpoint_id, %(length)s) = %(prefix)s"),
    ]
    if checkpoint_ns is not None:
        conditions.append(sql.SQL("checkpoint_ns = %(checkpoint_ns)s"))
    rows = session.execute(
        "checkpoint_ids_with_prefix",
        {
            "thread_id": thread_id,
            "length": len(prefix),
            "prefix": prefix,
            "checkpoint_ns": checkpoint_ns,
            "limit": CANDIDATES_SHOWN + 1,
        },
        where=sql.SQL(" AND ").join(conditions),
    ).fetchall()
    ids = [row[0] for row in rows]
    if len(ids) == 1:
        return str(ids[0])
    place = f"thread {thread_id}" + (f" (namespace {checkpoint_ns!r})" if checkpoint_ns else "")
    if not ids:
        raise NotFoundError(f"no checkpoint {prefix} in {place}")
    listed = ", ".join(ids[:CANDIDATES_SHOWN]) + (", ..." if len(ids) > CANDIDATES_SHOWN else "")
    raise click.UsageError(
        f"checkpoint id {prefix} is ambiguous in {place}: it starts {listed}; give more characters"
    )


def _shared(a: str, b: str) -> int:
    """How many leading characters `a` and `b` have in common."""
    n = 0
    for x, y in zip(a, b, strict=False):
        if x != y:
            break
        n += 1
    return n


def _unique_length(checkpoint_id: str, neighbours: Iterable[str | None]) -> int:
    shared = max((_shared(checkpoint_id, other) for other in neighbours if other), default=0)
    return max(SHORT_MIN, shared + 1)


def short_ids(session: Session, keys: Iterable[Key]) -> dict[Key, str]:
    """Each (thread, checkpoint id) with the id shortened to its shortest unique prefix.

    Unique in the whole thread (every namespace), so the short id works in ``show`` and
    ``diff``. One query: only an id's two neighbours in sorted order can share a longer prefix.
    """
    wanted = sorted({key for key in keys if key[1]})
    if not wanted:
        return {}
    rows = session.execute(
        "neighbour_ids",
        {"thread_ids": [t for t, _ in wanted], "checkpoint_ids": [c for _, c in wanted]},
    ).fetchall()
    return {
        (thread_id, cid): cid[: _unique_length(cid, (before, after))]
        for thread_id, cid, before, after in rows
    }
