"""`threads` and `prune`: list threads, apply a retention policy.

Both use the savers' retention API (`saver.list_threads`, `saver.apply_retention` with a
`RetentionPolicy`, see `checkpoint_pg.retention`). `prune --dry-run` is
``apply_retention(policy, dry_run=True)``: the real prune, each batch rolled back, so it counts
exactly what the real prune would delete (subgraph namespaces deleted whole included).
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import click

from checkpoint_pg.cli.ops.common import (
    DURATION,
    Session,
    confirm_destructive,
    endpoint,
    json_object_option,
    operator_command,
)
from checkpoint_pg.cli.ops.ids import short_ids
from checkpoint_pg.cli.ops.output import (
    bars_shown,
    emit_json,
    full_option,
    human_bytes,
    human_duration,
    note,
    preview,
    progress,
    table,
    timestamp,
)

__all__ = ["COMMANDS"]

PAGE = 1000


@operator_command("threads", short_help="List threads: latest checkpoint, size, metadata.")
@click.option(
    "--limit",
    type=click.IntRange(1, 10_000),
    default=50,
    show_default=True,
    help="Threads per page.",
)
@click.option("--after", metavar="THREAD_ID", help="Start after this thread (the next page).")
@click.option(
    "--idle-for",
    type=DURATION,
    default=None,
    help="Only threads whose latest checkpoint is older than this (7d, 12h, 1d12h).",
)
@click.option(
    "--filter",
    "metadata",
    metavar="JSON",
    help='Only threads whose latest metadata contains this, e.g. \'{"source": "loop"}\'.',
)
@click.option("--all", "every", is_flag=True, help="Every page, not only the first.")
@full_option
def threads(
    session: Session,
    limit: int,
    after: str | None,
    idle_for: timedelta | None,
    metadata: str | None,
    every: bool,
    full: bool,
) -> None:
    """Threads by thread id: latest checkpoint and its time, checkpoints, bytes, metadata.

    Pages by thread id: the last line says how to get the next page (--after). Checkpoint ids
    are shortened to a unique prefix (--full or --json for whole ids).
    """
    metadata_filter = json_object_option(metadata)
    saver = session.saver()
    found: list[Any] = []
    cursor = after
    with progress("listing threads", None, enabled=every and not session.json) as advance:
        while True:
            page = saver.list_threads(
                filter=metadata_filter, limit=limit, after=cursor, idle_for=idle_for
            )
            found.extend(page.threads)
            advance(len(page.threads))
            cursor = page.next_after
            if cursor is None or not every:
                break
    if session.json:
        emit_json({"threads": [t.to_dict() for t in found], "next_after": cursor})
        return
    if not found:
        click.echo("no threads")
        return
    latest = [(t.thread_id, t.latest_checkpoint_id) for t in found]
    short = {} if full else short_ids(session, latest)
    table(
        ["thread_id", "latest_checkpoint", "latest", "checkpoints", "size", "metadata"],
        [
            (
                t.thread_id,
                short.get((t.thread_id, t.latest_checkpoint_id), t.latest_checkpoint_id),
                timestamp(t.latest_ts),
                t.checkpoints,
                human_bytes(t.bytes),
                preview(t.metadata, 48),
            )
            for t in found
        ],
        right=("checkpoints", "size"),
    )
    if cursor is not None:
        note(f"more threads: add --after {cursor} (or --all)")


def _count_threads(session: Session) -> int:
    return int(session.fetchone("count_threads")[0])


SUBGRAPHS = (
    "a subgraph call's namespace goes whole once the parent-graph checkpoint that started it "
    'is deleted, as prune("keep_latest") does'
)


def policy_text(idle_for: timedelta | None, keep_latest: int | None) -> str:
    parts = []
    if idle_for is not None:
        parts.append(
            "delete every thread whose latest checkpoint is older than " + human_duration(idle_for)
        )
    if keep_latest is not None:
        parts.append(
            f"keep only the newest {keep_latest} checkpoint(s) of each namespace of "
            + ("the other threads" if idle_for is not None else "every thread")
        )
    return " and ".join(parts)


def _summary(report: Any, dry_run: bool = False) -> str:
    deleted = "would be deleted" if dry_run else "deleted"
    return (
        f"{report.threads_deleted} thread(s) {deleted}, {report.threads_pruned} pruned; "
        f"{report.checkpoints_deleted} checkpoint(s), {report.blobs_deleted} blob(s) and "
        f"{report.writes_deleted} write(s) {deleted}; {report.threads_examined} thread(s) "
        f"examined in {report.elapsed_s:.2f}s"
    )


def _apply(session: Session, policy: Any, dry_run: bool) -> Any:
    saver = session.saver()
    total = _count_threads(session) if bars_shown(not session.json) else None
    label = "counting (dry run)" if dry_run else "pruning threads"
    with progress(label, total, enabled=not session.json) as advance:
        seen = 0

        def step(examined: int) -> None:
            nonlocal seen
            advance(examined - seen)
            seen = examined

        return saver.apply_retention(policy, progress=step, dry_run=dry_run)


@operator_command("prune", short_help="Delete idle threads and/or old checkpoints.")
@click.option(
    "--idle-for",
    type=DURATION,
    default=None,
    help="Delete threads whose latest checkpoint (its ts) is older than this (7d, 12h, 1d12h).",
)
@click.option(
    "--idle-days",
    type=click.FloatRange(min=0, min_open=True),
    default=None,
    help="The same as --idle-for, in days.",
)
@click.option(
    "--keep-latest",
    type=click.IntRange(min=1),
    default=None,
    help="In the other threads keep the newest N checkpoints of each namespace (and what "
    "they need); a subgraph's namespace goes whole once the parent checkpoint that started "
    "it is deleted.",
)
@click.option(
    "--batch-size",
    type=click.IntRange(1, 1000),
    default=100,
    show_default=True,
    help="Threads per transaction.",
)
@click.option(
    "--dry-run",
    is_flag=True,
    help="Count exactly what would be deleted (the real prune, rolled back batch by batch).",
)
@click.option("--yes", "-y", is_flag=True, help="Do not ask for confirmation.")
def prune(
    session: Session,
    idle_for: timedelta | None,
    idle_days: float | None,
    keep_latest: int | None,
    batch_size: int,
    dry_run: bool,
    yes: bool,
) -> None:
    """Apply a retention policy to every thread, in batches (safe beside running graphs and
    other pruners). Asks for confirmation on a terminal unless --yes or --dry-run; without a
    terminal, needs --yes."""
    from checkpoint_pg.retention import RetentionPolicy

    if idle_for is not None and idle_days is not None:
        raise click.UsageError("give --idle-for or --idle-days, not both")
    if idle_days is not None:
        idle_for = timedelta(days=idle_days)
    if idle_for is None and keep_latest is None:
        raise click.UsageError("say what to prune: --idle-for/--idle-days, --keep-latest or both")
    policy = RetentionPolicy(idle_for=idle_for, keep_latest=keep_latest, batch_size=batch_size)
    what = policy_text(idle_for, keep_latest)
    if not dry_run:
        confirm_destructive(f"{what.capitalize()} in {endpoint(session.dsn)}?", yes)
    report = _apply(session, policy, dry_run)
    if session.json:
        emit_json({**report.to_dict(), "dry_run": dry_run, "policy": policy.to_dict()})
        return
    if dry_run:
        click.echo(f"dry run: would {what}:")
        if keep_latest is not None:
            click.echo(f"  ({SUBGRAPHS})")
        click.echo(f"  {_summary(report, dry_run=True)}")
        click.echo("  (counted by running the prune and rolling it back: nothing was deleted)")
        return
    click.echo(_summary(report))
    if report.threads_skipped:
        note(f"{report.threads_skipped} thread(s) skipped (busy): left for the next prune")


COMMANDS = [threads, prune]
