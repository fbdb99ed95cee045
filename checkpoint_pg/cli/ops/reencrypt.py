"""`reencrypt`: seal every value written with `RowBoundEncryption` again, with the current key.

After a new key is made current (and the old one kept in the keyring, so that old rows stay
readable), this moves every sealed blob, checkpoint seal, write and store item to the new key;
the old key can then be dropped. Each value is opened against its own row first: a value that
does not open (tampered, moved, or sealed with a key not in the keyring) is left alone and
reported by the row it was found in. Unencrypted rows are not touched (they are not read).

The keyring comes from ``--keys-file`` or ``$CHECKPOINT_PG_KEYS`` (JSON, see
`RowBoundEncryption.from_json`), never from the command line, and is never printed.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

import click
from psycopg.types.json import Jsonb

from checkpoint_pg._runtime.aead import KEYS_ENV_VAR, RowBoundEncryption
from checkpoint_pg.cli.ops.common import OperationFailedError, Session, operator_command
from checkpoint_pg.cli.ops.output import emit_json, note, table
from checkpoint_pg.errors import CheckpointPgError, TamperedValueError

__all__ = ["COMMANDS"]

DEFAULT_BATCH = 500


@dataclass
class Tally:
    """What one table's pass found."""

    table: str
    read: int = 0
    resealed: int = 0
    current: int = 0
    failed: list[str] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return {
            "table": self.table,
            "read": self.read,
            "reencrypted": self.resealed,
            "already_current": self.current,
            "failed": len(self.failed),
        }


@dataclass(frozen=True)
class Pass:
    """One table: its page and update statements, its key columns, how to reseal a row."""

    table: str
    page: str
    update: str
    keys: Sequence[str]  # the key columns, in page order: the keyset of the next page
    sealed_column: int  # the position of the sealed value in a page row
    reseal: Callable[[RowBoundEncryption, tuple[Any, ...]], Any]
    update_params: Callable[[tuple[Any, ...], Any], dict[str, Any]]


def _reseal_blob(enc: RowBoundEncryption, row: tuple[Any, ...]) -> bytes:
    from checkpoint_pg._sealed_rows import reseal_blob

    return reseal_blob(enc, *row)


def _reseal_write(enc: RowBoundEncryption, row: tuple[Any, ...]) -> bytes:
    from checkpoint_pg._sealed_rows import reseal_write

    thread_id, ns, checkpoint_id, task_id, idx, task_path, channel, type_, blob = row
    return reseal_write(
        enc, thread_id, ns, checkpoint_id, task_id, task_path, idx, channel, type_, blob
    )


def _reseal_item(enc: RowBoundEncryption, row: tuple[Any, ...]) -> str:
    from store._sealed import reseal

    prefix, key, value = row
    return reseal(enc, value, prefix, key)


def _store_key_id(enc: RowBoundEncryption, value: Any) -> str | None:
    from store._sealed import key_id_of

    return key_id_of(enc, value)


PASSES = (
    Pass(
        "checkpoint_blobs",
        "reencrypt_blobs_page",
        "reencrypt_blob",
        ("thread_id", "checkpoint_ns", "channel", "version"),
        5,
        _reseal_blob,
        lambda row, new: {
            "thread_id": row[0],
            "checkpoint_ns": row[1],
            "channel": row[2],
            "version": row[3],
            "old": row[5],
            "new": new,
        },
    ),
    Pass(
        "checkpoint_writes",
        "reencrypt_writes_page",
        "reencrypt_write",
        ("thread_id", "checkpoint_ns", "checkpoint_id", "task_id", "idx"),
        8,
        _reseal_write,
        lambda row, new: {
            "thread_id": row[0],
            "checkpoint_ns": row[1],
            "checkpoint_id": row[2],
            "task_id": row[3],
            "idx": row[4],
            "old": row[8],
            "new": new,
        },
    ),
    Pass(
        "store",
        "reencrypt_store_page",
        "reencrypt_store_item",
        ("prefix", "key"),
        2,
        _reseal_item,
        lambda row, new: {
            "prefix": row[0],
            "key": row[1],
            "old_value": Jsonb(row[2]),
            "new_value": new,
        },
    ),
)


def _keyring(keys_file: str | None) -> RowBoundEncryption:
    try:
        if keys_file is not None:
            return RowBoundEncryption.from_file(keys_file)
        return RowBoundEncryption.from_env(KEYS_ENV_VAR)
    except CheckpointPgError as exc:  # InvalidKeyringError, MissingExtraError: no key in them
        raise click.UsageError(f"{exc} (give --keys-file or ${KEYS_ENV_VAR})") from None


def _pages(
    session: Session, one: Pass, thread_id: str | None, batch: int
) -> Iterator[list[tuple[Any, ...]]]:
    after: tuple[Any, ...] = ()
    while True:
        params: dict[str, Any] = {"first": not after, "limit": batch, "thread_id": thread_id}
        params.update({f"a{i}": after[i - 1] if i <= len(after) else None for i in range(1, 6)})
        rows = [tuple(r) for r in session.execute(one.page, params).fetchall()]
        if not rows:
            return
        yield rows
        if len(rows) < batch:
            return
        after = rows[-1][: len(one.keys)]


def _key_id(enc: RowBoundEncryption, one: Pass, row: tuple[Any, ...]) -> str | None:
    value = row[one.sealed_column]
    if one.table == "store":
        return _store_key_id(enc, value)
    return enc.key_id_of(value)


def _run_pass(
    session: Session,
    enc: RowBoundEncryption,
    one: Pass,
    *,
    thread_id: str | None,
    batch: int,
    dry_run: bool,
) -> Tally:
    tally = Tally(one.table)
    for rows in _pages(session, one, thread_id, batch):
        updates = []
        for row in rows:
            tally.read += 1
            if _key_id(enc, one, row) == enc.current:
                tally.current += 1
                continue
            try:
                new = one.reseal(enc, row)
            except TamperedValueError as exc:
                tally.failed.append(exc.row)
                continue
            updates.append(one.update_params(row, new))
        if updates and not dry_run:
            with session.conn.transaction(), session.conn.cursor() as cur:
                statement = _statement(session, one.update)
                cur.executemany(statement, updates)
        tally.resealed += len(updates)
        verb = "would re-encrypt" if dry_run else "re-encrypted"
        note(f"reencrypt {one.table}: {tally.read} read, {tally.resealed} {verb}")
    return tally


def _statement(session: Session, name: str) -> Any:
    from checkpoint_pg.cli.ops.common import TABLES, queries

    tables = {part: session.identifier(t) for part, t in TABLES.items()}
    return queries()[name].compose(**tables)


def _exists(session: Session, name: str) -> bool:
    return bool(session.fetchone("table_exists", {"table": session.qualified(name)})[0])


@operator_command(
    "reencrypt", short_help="Re-encrypt sealed values with the keyring's current key."
)
@click.option("--thread", "thread_id", default=None, help="Only this thread's checkpoints.")
@click.option(
    "--keys-file",
    type=click.Path(dir_okay=False),
    default=None,
    help=f"The keyring JSON file; default: ${KEYS_ENV_VAR}.",
)
@click.option("--batch", type=click.IntRange(1, 100_000), default=DEFAULT_BATCH, show_default=True)
@click.option("--dry-run", is_flag=True, help="Count and check what would change; change nothing.")
def reencrypt(
    session: Session, thread_id: str | None, keys_file: str | None, batch: int, dry_run: bool
) -> None:
    """Seal every encrypted blob, write and store item again with the current key.

    Values are opened against their own rows first; one that does not open is left as it is
    and counted as failed (the command then exits with 1). With --thread, only that thread's
    blobs and writes (the store is not per thread).
    """
    enc = _keyring(keys_file)
    tallies = []
    for one in PASSES:
        if (thread_id is not None and one.table == "store") or not _exists(session, one.table):
            continue
        tallies.append(
            _run_pass(session, enc, one, thread_id=thread_id, batch=batch, dry_run=dry_run)
        )
    if session.json:
        emit_json(
            {
                "current_key": enc.current,
                "dry_run": dry_run,
                "tables": [t.as_dict() for t in tallies],
            }
        )
    else:
        columns = ("table", "read", "reencrypted", "already_current", "failed")
        table(columns, [[t.as_dict()[c] for c in columns] for t in tallies])
    failed = [row for t in tallies for row in t.failed]
    if failed:
        raise OperationFailedError(
            f"{len(failed)} value(s) did not open and were left as they are, first: {failed[0]}"
        )


COMMANDS = [reencrypt]
