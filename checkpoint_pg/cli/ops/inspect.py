"""`history`, `show` and `diff`: look at one thread's checkpoints.

`history` reads the checkpoint rows with plain read-only SQL (no value is deserialised, so it
costs the same for big states); `show` and `diff` go through the saver (`get_tuple`), so the
values are decoded by the same serializer a graph uses.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import click
from langgraph.checkpoint.base import CheckpointTuple
from psycopg import sql

from checkpoint_pg.cli.ops.common import NotFoundError, Session, operator_command
from checkpoint_pg.cli.ops.ids import resolve_checkpoint_id, short_ids
from checkpoint_pg.cli.ops.output import (
    emit_json,
    full_option,
    jsonable,
    kv_table,
    preview,
    table,
    timestamp,
)

__all__ = ["COMMANDS"]

ns_option = click.option(
    "--ns",
    "checkpoint_ns",
    default="",
    show_default="'' (the root graph)",
    metavar="NS",
    help="Checkpoint namespace (a subgraph's, e.g. 'child:<task id>').",
)


def _history_where(ns: str | None, before: str | None) -> sql.Composable:
    conditions = [sql.SQL("c.thread_id = %(thread_id)s")]
    if ns is not None:
        conditions.append(sql.SQL("c.checkpoint_ns = %(checkpoint_ns)s"))
    if before is not None:
        conditions.append(sql.SQL("c.checkpoint_id < %(before)s"))
    return sql.SQL(" AND ").join(conditions)


def _history_rows(
    session: Session, thread_id: str, ns: str | None, limit: int, before: str | None
) -> tuple[list[tuple[Any, ...]], int]:
    """The newest `limit` checkpoints matching, and how many match in all."""
    where = _history_where(ns, before)
    params = {"thread_id": thread_id, "checkpoint_ns": ns, "before": before, "limit": limit}
    rows = [tuple(r) for r in session.execute("history_page", params, where=where).fetchall()]
    total = len(rows)
    if total == limit:
        total = int(session.fetchone("history_count", params, where=where)[0])
    return rows, total


def _thread_exists(session: Session, thread_id: str) -> bool:
    return bool(session.fetchone("thread_exists", {"thread_id": thread_id})[0])


@operator_command("history", short_help="A thread's checkpoints, newest first.")
@click.argument("thread_id")
@click.option(
    "--ns",
    "checkpoint_ns",
    default=None,
    metavar="NS",
    help="Only this checkpoint namespace ('' = the root graph); default: all.",
)
@click.option(
    "--limit", type=click.IntRange(min=1), default=20, show_default=True, help="Most rows."
)
@click.option(
    "--before", metavar="CHECKPOINT_ID", help="Only checkpoints older than this one (or a prefix)."
)
@full_option
def history(
    session: Session,
    thread_id: str,
    checkpoint_ns: str | None,
    limit: int,
    before: str | None,
    full: bool,
) -> None:
    """A thread's checkpoints, newest first: id, parent, step, source, time, pending writes.

    Ids are shortened to their shortest unique prefix (at least 8 characters; --full or --json
    for whole ids); `show` and `diff` take such a prefix."""
    if not _thread_exists(session, thread_id):
        raise NotFoundError(f"no such thread: {thread_id}")
    if before is not None:
        before = resolve_checkpoint_id(session, thread_id, checkpoint_ns, before)
    rows, total = _history_rows(session, thread_id, checkpoint_ns, limit, before)
    records = [
        {
            "checkpoint_id": cid,
            "parent_checkpoint_id": parent,
            "checkpoint_ns": ns,
            "step": step,
            "source": source,
            "ts": ts,
            "writes": int(writes),
            "metadata": metadata,
        }
        for cid, parent, ns, step, source, ts, writes, metadata in rows
    ]
    if session.json:
        emit_json({"thread_id": thread_id, "total": total, "checkpoints": records})
        return
    short = _shortener(session, thread_id, records, full)
    show_ns = any(r["checkpoint_ns"] for r in records)
    columns = ["checkpoint_id", "parent", *(["ns"] if show_ns else []), "step", "source", "ts"]
    table(
        [*columns, "writes"],
        [
            (
                short(r["checkpoint_id"]),
                short(r["parent_checkpoint_id"]) or "-",
                *([r["checkpoint_ns"] or "''"] if show_ns else []),
                r["step"],
                r["source"],
                timestamp(r["ts"]),
                r["writes"],
            )
            for r in records
        ],
        title=f"thread {thread_id}: {_count(len(records), total)}, newest first",
        right=("step", "writes"),
    )


def _count(shown: int, total: int) -> str:
    """ "5 of 47 checkpoints" when some are not shown, else "47 checkpoints"."""
    noun = "checkpoint" if total == 1 else "checkpoints"
    return f"{total} {noun}" if shown == total else f"{shown} of {total} {noun}"


def _shortener(
    session: Session, thread_id: str, records: list[dict[str, Any]], full: bool
) -> Callable[[str | None], str | None]:
    if full:
        return lambda cid: cid
    ids = {r[k] for r in records for k in ("checkpoint_id", "parent_checkpoint_id") if r[k]}
    short = short_ids(session, [(thread_id, cid) for cid in ids])
    return lambda cid: short.get((thread_id, cid), cid) if cid else cid


def _tuple(
    session: Session, thread_id: str, checkpoint_ns: str, checkpoint_id: str | None
) -> CheckpointTuple:
    configurable: dict[str, Any] = {"thread_id": thread_id, "checkpoint_ns": checkpoint_ns}
    if checkpoint_id:
        if not _thread_exists(session, thread_id):
            raise NotFoundError(f"no such thread: {thread_id}")
        checkpoint_id = resolve_checkpoint_id(session, thread_id, checkpoint_ns, checkpoint_id)
        configurable["checkpoint_id"] = checkpoint_id
    found = session.saver().get_tuple({"configurable": configurable})
    if found is not None:
        return found
    if not _thread_exists(session, thread_id):
        raise NotFoundError(f"no such thread: {thread_id}")
    where = f" in namespace {checkpoint_ns!r}" if checkpoint_ns else ""
    if checkpoint_id:
        raise NotFoundError(f"no checkpoint {checkpoint_id} in thread {thread_id}{where}")
    raise NotFoundError(f"thread {thread_id} has no checkpoint{where}")


def _type_name(value: Any) -> str:
    kind = type(value)
    if isinstance(value, list) and value:
        inner = {type(v).__name__ for v in value}
        return f"list[{inner.pop()}]" if len(inner) == 1 else "list"
    return kind.__name__


def _describe(found: CheckpointTuple) -> dict[str, Any]:
    cp = found.checkpoint
    conf = found.config["configurable"]
    parent = (found.parent_config or {}).get("configurable", {}).get("checkpoint_id")
    return {
        "thread_id": conf["thread_id"],
        "checkpoint_ns": conf.get("checkpoint_ns", ""),
        "checkpoint_id": conf["checkpoint_id"],
        "parent_checkpoint_id": parent,
        "ts": cp.get("ts"),
        "metadata": dict(found.metadata or {}),
        "channel_versions": dict(cp.get("channel_versions") or {}),
        "channel_values": dict(cp.get("channel_values") or {}),
        "pending_writes": [
            {"task_id": task_id, "channel": channel, "value": value}
            for task_id, channel, value in found.pending_writes or []
        ],
    }


@operator_command("show", short_help="One checkpoint with its channel values decoded.")
@click.argument("thread_id")
@click.argument("checkpoint_id", required=False)
@ns_option
@click.option(
    "--width", type=click.IntRange(min=10), default=72, show_default=True, help="Preview width."
)
def show(
    session: Session, thread_id: str, checkpoint_id: str | None, checkpoint_ns: str, width: int
) -> None:
    """A checkpoint (default: the thread's latest; CHECKPOINT_ID may be a unique prefix of at
    least 4 characters) with its channel values decoded and its pending writes. Tables shorten
    values to --width; --json prints them whole."""
    info = _describe(_tuple(session, thread_id, checkpoint_ns, checkpoint_id))
    if session.json:
        emit_json(info)
        return
    meta = info["metadata"]
    kv_table(
        [
            ("thread", info["thread_id"]),
            ("namespace", info["checkpoint_ns"] or "'' (root)"),
            ("checkpoint", info["checkpoint_id"]),
            ("parent", info["parent_checkpoint_id"] or "-"),
            ("time", timestamp(info["ts"])),
            ("step", meta.get("step")),
            ("source", meta.get("source")),
            ("metadata", preview(meta, width * 2)),
        ]
    )
    values = info["channel_values"]
    versions = info["channel_versions"]
    table(
        ["channel", "version", "type", "value"],
        [
            (ch, versions.get(ch, ""), _type_name(v), preview(v, width))
            for ch, v in sorted(values.items())
        ],
        title=f"{len(values)} channel value(s)",
    )
    writes = info["pending_writes"]
    if writes:
        table(
            ["task_id", "channel", "value"],
            [(w["task_id"], w["channel"], preview(w["value"], width)) for w in writes],
            title=f"{len(writes)} pending write(s)",
        )
    else:
        click.echo("no pending writes")


@operator_command("diff", short_help="What changed between two checkpoints of a thread.")
@click.argument("thread_id")
@click.argument("a", metavar="A")
@click.argument("b", metavar="B")
@ns_option
@click.option(
    "--width", type=click.IntRange(min=10), default=48, show_default=True, help="Preview width."
)
@click.option("--all", "show_all", is_flag=True, help="List unchanged channels too.")
def diff(
    session: Session,
    thread_id: str,
    a: str,
    b: str,
    checkpoint_ns: str,
    width: int,
    show_all: bool,
) -> None:
    """Channels added, removed and changed from checkpoint A to checkpoint B, with previews.

    A and B may be unique prefixes of checkpoint ids (at least 4 characters)."""
    first = _describe(_tuple(session, thread_id, checkpoint_ns, a))
    second = _describe(_tuple(session, thread_id, checkpoint_ns, b))
    before, after = first["channel_values"], second["channel_values"]
    added = sorted(set(after) - set(before))
    removed = sorted(set(before) - set(after))
    common = sorted(set(before) & set(after))
    changed = [ch for ch in common if jsonable(before[ch]) != jsonable(after[ch])]
    unchanged = [ch for ch in common if ch not in changed]
    if session.json:
        emit_json(
            {
                "thread_id": thread_id,
                "checkpoint_ns": checkpoint_ns,
                "a": {k: first[k] for k in ("checkpoint_id", "ts", "metadata")},
                "b": {k: second[k] for k in ("checkpoint_id", "ts", "metadata")},
                "added": {ch: after[ch] for ch in added},
                "removed": {ch: before[ch] for ch in removed},
                "changed": {ch: {"a": before[ch], "b": after[ch]} for ch in changed},
                "unchanged": unchanged,
            }
        )
        return

    def label(info: dict[str, Any]) -> str:
        meta = info["metadata"]
        return (
            f"{info['checkpoint_id']} (step {meta.get('step')}, {meta.get('source')}, "
            f"{timestamp(info['ts'])})"
        )

    click.echo(f"A: {label(first)}\nB: {label(second)}")
    rows: list[tuple[str, str, str, str]] = []
    rows += [(ch, "added", "", preview(after[ch], width)) for ch in added]
    rows += [(ch, "removed", preview(before[ch], width), "") for ch in removed]
    rows += [
        (ch, "changed", preview(before[ch], width), preview(after[ch], width)) for ch in changed
    ]
    if show_all:
        rows += [(ch, "same", preview(before[ch], width), "") for ch in unchanged]
    if rows:
        table(["channel", "change", "A", "B"], rows)
    summary = f"{len(added)} added, {len(removed)} removed, {len(changed)} changed"
    click.echo(f"{summary}, {len(unchanged)} unchanged")


COMMANDS = [history, show, diff]
