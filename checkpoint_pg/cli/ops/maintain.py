"""`copy`, `delete`, `stats` and `sweep`: change or measure what is stored.

`copy` and `delete` use the saver (`copy_thread`, `delete_thread`); `stats` is read-only SQL;
`sweep` is the unattended maintenance job (for cron): it deletes expired store items
(`store.sweep_ttl`) and, given a policy, applies checkpoint retention. It never asks.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import click

from checkpoint_pg.cli.ops.common import (
    DURATION,
    NotFoundError,
    OperationFailedError,
    Session,
    confirm_destructive,
    endpoint,
    operator_command,
)
from checkpoint_pg.cli.ops.output import emit_json, human_bytes, kv_table, progress, table
from checkpoint_pg.cli.ops.threads import policy_text

__all__ = ["COMMANDS"]

SAVER_TABLES = ("checkpoints", "checkpoint_blobs", "checkpoint_writes")
STORE_TABLES = ("store", "store_vectors")


def _exists(session: Session, name: str) -> bool:
    return bool(session.fetchone("table_exists", {"table": session.qualified(name)})[0])


def _checkpoints_of(session: Session, thread_id: str) -> int:
    return int(session.fetchone("thread_checkpoints", {"thread_id": thread_id})[0])


def _require_saver_tables(session: Session) -> None:
    if not _exists(session, "checkpoints"):
        raise OperationFailedError(
            "the checkpoint tables do not exist here: run `checkpoint-pg setup` first"
        )


@operator_command("copy", short_help="Copy a thread's whole history to another thread id.")
@click.argument("source")
@click.argument("target")
@click.option("--force", is_flag=True, help="Copy even if TARGET has checkpoints (kept as is).")
def copy(session: Session, source: str, target: str, force: bool) -> None:
    """Copy every checkpoint, blob and write of thread SOURCE to thread TARGET."""
    _require_saver_tables(session)
    if source == target:
        raise click.UsageError("SOURCE and TARGET are the same thread")
    count = _checkpoints_of(session, source)
    if not count:
        raise NotFoundError(f"no such thread: {source}")
    existing = _checkpoints_of(session, target)
    if existing and not force:
        raise OperationFailedError(
            f"thread {target} already exists ({existing} checkpoints): pass --force to copy "
            "into it anyway (its own checkpoints are kept), or delete it first"
        )
    session.saver().copy_thread(source, target)
    copied = _checkpoints_of(session, target) - existing
    if session.json:
        emit_json({"source": source, "target": target, "checkpoints_copied": copied})
    else:
        click.echo(f"copied thread {source} to {target}: {copied} checkpoint(s)")


@operator_command("delete", short_help="Delete a thread (checkpoints, blobs, writes).")
@click.argument("thread_id")
@click.option("--yes", "-y", is_flag=True, help="Do not ask for confirmation.")
def delete(session: Session, thread_id: str, yes: bool) -> None:
    """Delete every checkpoint, blob and write of a thread, atomically. Asks first unless --yes."""
    _require_saver_tables(session)
    count = _checkpoints_of(session, thread_id)
    if not count:
        raise NotFoundError(f"no such thread: {thread_id}")
    confirm_destructive(
        f"Delete thread {thread_id} ({count} checkpoints) from {endpoint(session.dsn)}?", yes
    )
    session.saver().delete_thread(thread_id)
    if session.json:
        emit_json({"thread_id": thread_id, "deleted": True, "checkpoints_deleted": count})
    else:
        click.echo(f"deleted thread {thread_id} ({count} checkpoints)")


def _table_size(session: Session, name: str) -> int:
    return int(session.fetchone("table_size", {"table": session.qualified(name)})[0])


def _count_rows(session: Session, name: str) -> int:
    return int(session.fetchone("count_rows", table=session.identifier(name))[0])


def _biggest_threads(session: Session, top: int) -> list[dict[str, Any]]:
    rows = session.execute("biggest_threads", {"limit": top}).fetchall()
    return [
        {"thread_id": t, "checkpoints": c, "blobs": b, "writes": w, "bytes": int(n)}
        for t, c, b, w, n in rows
    ]


@operator_command("stats", short_help="Rows and bytes per table, the biggest threads.")
@click.option(
    "--top", type=click.IntRange(0, 1000), default=10, show_default=True, help="Biggest threads."
)
def stats(session: Session, top: int) -> None:
    """Threads, checkpoints, blobs, writes and store items; bytes per table (with indexes and
    TOAST); the biggest threads by stored bytes. Counts scan the tables: slow on huge ones."""
    _require_saver_tables(session)
    store = _exists(session, "store")
    steps = 4 + (1 if top else 0) + (1 if store else 0)
    counts: dict[str, int] = {}
    sizes: dict[str, int] = {}
    with progress("measuring", steps, enabled=not session.json) as advance:
        counts["threads"] = int(session.fetchone("count_threads")[0])
        advance(1)
        for name, key in zip(SAVER_TABLES, ("checkpoints", "blobs", "writes"), strict=True):
            counts[key] = _count_rows(session, name)
            advance(1)
        if store:
            counts["store_items"] = _count_rows(session, "store")
            counts["store_items_expired"] = int(session.fetchone("count_expired_store_items")[0])
            advance(1)
        for name in SAVER_TABLES + STORE_TABLES:
            if _exists(session, name):
                sizes[name] = _table_size(session, name)
        biggest = _biggest_threads(session, top) if top else []
        advance(1 if top else 0)
    if session.json:
        emit_json(
            {
                "counts": counts,
                "table_bytes": sizes,
                "total_bytes": sum(sizes.values()),
                "biggest_threads": biggest,
            }
        )
        return
    kv_table([(k, f"{v:,}") for k, v in counts.items()], title="rows")
    table(
        ["table", "size", "bytes"],
        [(name, human_bytes(n), f"{n:,}") for name, n in sizes.items()]
        + [("total", human_bytes(sum(sizes.values())), f"{sum(sizes.values()):,}")],
        title="size on disk (with indexes and TOAST)",
        right=("size", "bytes"),
    )
    if biggest:
        table(
            ["thread_id", "checkpoints", "blobs", "writes", "stored"],
            [
                (t["thread_id"], t["checkpoints"], t["blobs"], t["writes"], human_bytes(t["bytes"]))
                for t in biggest
            ],
            title="biggest threads (stored bytes)",
            right=("checkpoints", "blobs", "writes", "stored"),
        )


@operator_command("sweep", short_help="Delete expired store items; apply checkpoint retention.")
@click.option(
    "--idle-for",
    type=DURATION,
    default=None,
    help="Also delete threads whose latest checkpoint is older than this (7d, 12h).",
)
@click.option(
    "--keep-latest",
    type=click.IntRange(min=1),
    default=None,
    help="Also keep only the newest N checkpoints of each thread's namespaces (a subgraph "
    "call's namespace goes whole once the parent checkpoint that started it is deleted).",
)
@click.option(
    "--batch-size",
    type=click.IntRange(1, 1000),
    default=100,
    show_default=True,
    help="Rows (store) or threads (checkpoints) per transaction.",
)
@click.option(
    "--yes",
    "-y",
    is_flag=True,
    help="Apply the retention policy without asking (needed without a terminal, as in cron).",
)
def sweep(
    session: Session,
    idle_for: timedelta | None,
    keep_latest: int | None,
    batch_size: int,
    yes: bool,
) -> None:
    """Maintenance for cron: delete expired store items (TTL) and, with --idle-for and/or
    --keep-latest, apply that retention policy to the checkpoints. Expired items go without
    asking (no reader sees them any more); a retention policy deletes live checkpoints, so it
    asks on a terminal and needs --yes without one."""
    from checkpoint_pg.retention import RetentionPolicy

    result: dict[str, Any] = {"store_items_deleted": None, "retention": None}
    policy = None
    if idle_for is not None or keep_latest is not None:
        policy = RetentionPolicy(idle_for=idle_for, keep_latest=keep_latest, batch_size=batch_size)
        what = policy_text(idle_for, keep_latest)
        confirm_destructive(f"{what.capitalize()} in {endpoint(session.dsn)}?", yes)
    steps = 1 + (1 if policy else 0)
    with progress("sweeping", steps, enabled=not session.json) as advance:
        if _exists(session, "store"):
            result["store_items_deleted"] = session.store().sweep_ttl(batch_size=batch_size)
        advance(1)
        if policy is not None:
            _require_saver_tables(session)
            report = session.saver().apply_retention(policy)
            result["retention"] = {**report.to_dict(), "policy": policy.to_dict()}
            advance(1)
    if session.json:
        emit_json(result)
        return
    deleted = result["store_items_deleted"]
    click.echo(
        "store: no store tables here"
        if deleted is None
        else f"store: {deleted} expired item(s) deleted"
    )
    if result["retention"] is not None:
        r = result["retention"]
        click.echo(
            f"checkpoints: {r['threads_deleted']} thread(s) deleted, {r['threads_pruned']} "
            f"pruned, {r['checkpoints_deleted']} checkpoint(s) deleted in {r['elapsed_s']:.2f}s"
        )
    else:
        click.echo("checkpoints: no retention policy given (--idle-for, --keep-latest)")


COMMANDS = [copy, delete, stats, sweep]
