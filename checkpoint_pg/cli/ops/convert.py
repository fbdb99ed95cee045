"""`convert-storage`: move threads between the official format and delta storage.

``--to official`` rewrites every delta row (``storage="delta"``, checkpoint_pg/_delta.py) as
the full value it stands for, so that the official package (and a saver in the default
mode) reads the thread again. ``--to delta`` rewrites every plain msgpack list value that
extends the channel's previous version as a delta, as a saver with ``storage="delta"``
would have written it; afterwards only such a saver reads those threads.

Threads are converted one at a time, each in one transaction (its rows locked meanwhile),
in thread id order, ``--batch`` threads per page: an interrupted run leaves every thread
either converted or as it was, and a new run (or ``--after`` the last thread reported)
carries on. Values whose bytes are not plain msgpack (written through an encrypting or
compressing serializer) are left as they are and counted as skipped.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import click

from checkpoint_pg import _delta
from checkpoint_pg.cli.ops.common import OperationFailedError, Session, operator_command
from checkpoint_pg.cli.ops.output import emit_json, note, table

__all__ = ["COMMANDS"]

DEFAULT_BATCH = 100


@dataclass
class Tally:
    threads: int = 0
    rows: int = 0
    skipped: list[str] = field(default_factory=list)
    last_thread: str | None = None
    seconds: float = 0.0

    def as_dict(self, target: str, dry_run: bool) -> dict[str, Any]:
        return {
            "to": target,
            "dry_run": dry_run,
            "threads": self.threads,
            "rows_converted": self.rows,
            "rows_skipped": len(self.skipped),
            "last_thread": self.last_thread,
            "threads_per_second": round(self.threads / self.seconds, 1) if self.seconds else None,
        }


def _threads(
    session: Session, page: str, thread_id: str | None, after: str | None, batch: int
) -> Iterator[str]:
    while True:
        params = {"thread_id": thread_id, "after": after, "limit": batch}
        found = [row[0] for row in session.execute(page, params).fetchall()]
        yield from found
        if len(found) < batch:
            return
        after = found[-1]


def _convert_thread(session: Session, target: str, thread_id: str, dry_run: bool) -> Tally:
    """One thread in one transaction: its rows read (locked), converted, updated."""
    tally = Tally()
    conn = session.conn
    with conn.transaction(force_rollback=dry_run):
        if target == "official":
            rows = session.execute("delta_channel_rows", {"thread_id": thread_id}).fetchall()
            changes = list(_delta.to_official([tuple(r) for r in rows]))
        else:
            cursor = session.execute("thread_blob_rows", {"thread_id": thread_id})
            changes = list(_delta.to_delta(tuple(r) for r in cursor))
        updates = []
        for (ns, channel, version, old_type, _), new_type, new in changes:
            if new_type is None or isinstance(new, str):
                tally.skipped.append(f"thread {thread_id!r}: {new!s}")
                continue
            updates.append(
                {
                    "thread_id": thread_id,
                    "checkpoint_ns": ns,
                    "channel": channel,
                    "version": version,
                    "old_type": old_type,
                    "new_type": new_type,
                    "new_blob": new,
                }
            )
        if updates:
            with conn.cursor() as cur:
                cur.executemany(_statement(session, "convert_blob"), updates)
        tally.rows = len(updates)
    return tally


def _statement(session: Session, name: str) -> Any:
    from checkpoint_pg.cli.ops.common import TABLES, queries

    tables = {part: session.identifier(t) for part, t in TABLES.items()}
    return queries()[name].compose(**tables)


@operator_command(
    "convert-storage",
    short_help="Convert threads between the official format and delta storage.",
)
@click.option(
    "--to",
    "target",
    type=click.Choice(["official", "delta"]),
    required=True,
    help="official: full values, readable by the official package; delta: storage='delta'.",
)
@click.option("--thread", "thread_id", default=None, help="Only this thread.")
@click.option("--after", default=None, help="Resume after this thread id (as reported).")
@click.option("--batch", type=click.IntRange(1, 100_000), default=DEFAULT_BATCH, show_default=True)
@click.option("--dry-run", is_flag=True, help="Count what would change; change nothing.")
def convert_storage(
    session: Session,
    target: str,
    thread_id: str | None,
    after: str | None,
    batch: int,
    dry_run: bool,
) -> None:
    """Rewrite threads' blobs as full values (--to official) or as deltas (--to delta).

    Each thread is converted in one transaction, in thread id order; progress names the last
    thread done, which --after takes to resume. Values that are not plain msgpack (written
    through an encrypting or compressing serializer) are left as they are (exit code 1).
    """
    page = "delta_threads_page" if target == "official" else "blob_threads_page"
    total = Tally()
    start = time.perf_counter()
    for one in _threads(session, page, thread_id, after, batch):
        done = _convert_thread(session, target, one, dry_run)
        total.threads += 1
        total.rows += done.rows
        total.skipped.extend(done.skipped)
        total.last_thread = one
        if total.threads % batch == 0:
            note(f"convert-storage: {total.threads} threads, through {one!r}")
    total.seconds = time.perf_counter() - start
    result = total.as_dict(target, dry_run)
    if session.json:
        emit_json(result)
    else:
        table(list(result), [list(result.values())])
    if total.skipped:
        raise OperationFailedError(
            f"{len(total.skipped)} value(s) were left as they are, first: {total.skipped[0]}"
        )


COMMANDS = [convert_storage]
