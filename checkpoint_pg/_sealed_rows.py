"""The savers' rows with `RowBoundEncryption` on: what `_rows` does, every value sealed to its row.

Only used when a saver is given ``encryption=``; without it `_rows` runs as it always did and
the rows are the official format, byte for byte.

With it:
- every channel value goes to ``checkpoint_blobs`` (none stays inline as plain JSON), sealed
  with associated data (thread_id, checkpoint_ns, channel, version, type tag);
- every write is sealed with (thread_id, checkpoint_ns, checkpoint_id, task_id, task_path,
  idx, channel, type tag);
- the type column gets the suffix ``+rowaead``, so a plain value is told apart at once;
- the checkpoint's JSONB (ids, ``channel_versions``, ``versions_seen``, the ``true`` markers
  of DeltaChannel snapshots) and its metadata stay plain: the SQL reads them (blob lookups,
  ``list(filter=...)``, retention). They are *authenticated* instead: a copy of both, and of
  the parent id, is sealed to (thread_id, checkpoint_ns, checkpoint_id) in one more blob, on
  the reserved channel ``__checkpoint_pg_seal__`` that the checkpoint's ``channel_versions``
  names (so the read that fetches the blobs fetches it too, and retention keeps or frees it
  with its checkpoint). A load compares the row with its seal; any difference is refused.
  The parent id may be NULL where the seal names one: pruning cuts history that way.
"""

from __future__ import annotations

import json
import secrets
from collections.abc import Sequence
from typing import Any, cast

from langchain_core.runnables import RunnableConfig
from langgraph.checkpoint.base import (
    ChannelVersions,
    Checkpoint,
    CheckpointMetadata,
    CheckpointTuple,
    PendingWrite,
    get_serializable_checkpoint_metadata,
    writes_sort_key,
)
from langgraph.checkpoint.serde.base import SerializerProtocol
from langgraph.checkpoint.serde.types import _DeltaSnapshot
from psycopg.types.json import Jsonb

from checkpoint_pg._rows import (
    _EMPTY,
    ThreadRef,
    _checked_blob,
    _json,
    _zip,
    text_field,
    thread_ref,
)
from checkpoint_pg._runtime.aead import RowBoundEncryption, row_name
from checkpoint_pg.errors import (
    InvalidConfigError,
    InvalidMetadataError,
    TamperedValueError,
)

__all__ = [
    "SEAL_CHANNEL",
    "SUFFIX",
    "blob_row",
    "checkpoint_row",
    "put_params",
    "seal_writes",
    "tuple_from_row",
    "write_row",
]

SUFFIX = "+rowaead"
SEAL_CHANNEL = "__checkpoint_pg_seal__"
SEAL_TYPE = "seal" + SUFFIX


def checkpoint_row(thread_id: str, ns: str, checkpoint_id: str) -> list[str]:
    return ["checkpoints", thread_id, ns, checkpoint_id, "seal"]


def blob_row(thread_id: str, ns: str, channel: str, version: str, type_: str) -> list[str]:
    return ["checkpoint_blobs", thread_id, ns, channel, version, type_]


def write_row(
    thread_id: str,
    ns: str,
    checkpoint_id: str,
    task_id: str,
    task_path: str,
    idx: int,
    channel: str,
    type_: str,
) -> list[str]:
    return [
        "checkpoint_writes",
        thread_id,
        ns,
        checkpoint_id,
        task_id,
        task_path,
        str(idx),
        channel,
        type_,
    ]


def seal_version_of(checkpoint_id: str) -> str:
    """A fresh version for a checkpoint's seal: a re-put of the same id gets its own blob."""
    return f"{checkpoint_id}:{secrets.token_hex(8)}"


def checkpoint_id_of_seal(version: str) -> str:
    return version.rpartition(":")[0]


def put_params(
    enc: RowBoundEncryption,
    serde: SerializerProtocol,
    config: RunnableConfig,
    checkpoint: Checkpoint,
    metadata: CheckpointMetadata,
    new_versions: ChannelVersions,
) -> tuple[dict[str, Any], RunnableConfig]:
    """`_rows.put_params` with every new value sealed in a blob, and the checkpoint's seal."""
    ref = thread_ref(config)
    checkpoint_id = text_field(checkpoint.get("id"), "checkpoint['id']", allow_empty=False)
    if SEAL_CHANNEL in checkpoint["channel_versions"]:
        raise InvalidConfigError(f"the channel name {SEAL_CHANNEL!r} is reserved")
    inline: dict[str, Any] = {}
    channels, versions, types, blobs = [], [], [], []
    for channel, value in checkpoint["channel_values"].items():
        if channel not in new_versions:
            continue  # its sealed blob is stored under the version the checkpoint names
        if isinstance(value, _DeltaSnapshot):
            inline[channel] = True  # the official marker; the snapshot is in the blob
        name = text_field(channel, "a channel name")
        version = text_field(str(new_versions[channel]), f"channel {channel!r}'s version")
        type_, plain = _checked_blob(serde, value, f"channel {channel!r}'s value")
        channels.append(name)
        versions.append(version)
        types.append(type_ + SUFFIX)
        blobs.append(
            enc.seal(plain, blob_row(ref.thread_id, ref.checkpoint_ns, name, version, type_))
        )
    seal_version = seal_version_of(checkpoint_id)
    stored = {
        **checkpoint,
        "channel_values": inline,
        "channel_versions": {**checkpoint["channel_versions"], SEAL_CHANNEL: seal_version},
    }
    checkpoint_text = _json(stored, "the checkpoint", InvalidConfigError)
    meta = get_serializable_checkpoint_metadata(config, metadata)
    metadata_text = _json(meta, "checkpoint metadata", InvalidMetadataError)
    # The channels holding a value: a blob deleted or emptied later is then noticed too.
    present = sorted(c for c in checkpoint["channel_values"] if c in checkpoint["channel_versions"])
    sealed = json.dumps([checkpoint_text, metadata_text, ref.checkpoint_id, present]).encode()
    channels.append(SEAL_CHANNEL)
    versions.append(seal_version)
    types.append(SEAL_TYPE)
    blobs.append(enc.seal(sealed, checkpoint_row(ref.thread_id, ref.checkpoint_ns, checkpoint_id)))
    params = {
        "thread_id": ref.thread_id,
        "checkpoint_ns": ref.checkpoint_ns,
        "checkpoint_id": checkpoint_id,
        "parent_checkpoint_id": ref.checkpoint_id,
        "checkpoint": checkpoint_text,
        "metadata": metadata_text,
        "channels": channels,
        "versions": versions,
        "types": types,
        "blobs": blobs,
    }
    return params, ref.config(checkpoint_id)


def seal_writes(enc: RowBoundEncryption, params: dict[str, Any]) -> dict[str, Any]:
    """`_rows.writes_params`' parameters with each write sealed to its row."""
    types, blobs = [], []
    for idx, channel, type_, plain in zip(
        params["idxs"], params["channels"], params["types"], params["blobs"], strict=True
    ):
        row = write_row(
            params["thread_id"],
            params["checkpoint_ns"],
            params["checkpoint_id"],
            params["task_id"],
            params["task_path"],
            idx,
            channel,
            type_,
        )
        types.append(type_ + SUFFIX)
        blobs.append(enc.seal(plain, row))
    return {**params, "types": types, "blobs": blobs}


def open_value(
    enc: RowBoundEncryption, type_: str | None, blob: bytes | None, row: list[str], name: str
) -> tuple[str, bytes]:
    """A sealed value checked against `row` (whose last part, the type tag, is filled in
    here): its type tag and plaintext, or `TamperedValueError` naming `name`."""
    if not type_ or not type_.endswith(SUFFIX):
        raise TamperedValueError(name, "the value is not encrypted")
    inner = type_[: -len(SUFFIX)]
    return inner, enc.open(blob, [*row[:-1], inner], name)


def _verify_checkpoint(
    enc: RowBoundEncryption,
    ref: ThreadRef,
    row: tuple[Any, ...],
    seal: tuple[str, bytes] | None,
) -> list[str]:
    """Check the checkpoint row against its seal; return the channels it sealed as holding a
    value."""
    parent_id, checkpoint, metadata = row
    name = row_name(
        "checkpoints",
        thread_id=ref.thread_id,
        checkpoint_ns=ref.checkpoint_ns,
        checkpoint_id=ref.checkpoint_id,
    )
    if seal is None or seal[0] != SEAL_TYPE:
        raise TamperedValueError(name, "the checkpoint has no seal: it was not written encrypted")
    assert ref.checkpoint_id is not None
    plain = enc.open(
        seal[1], checkpoint_row(ref.thread_id, ref.checkpoint_ns, ref.checkpoint_id), name
    )
    checkpoint_text, metadata_text, sealed_parent, present = json.loads(plain)
    if (
        json.loads(checkpoint_text) != checkpoint
        or json.loads(metadata_text) != metadata
        or (parent_id is not None and parent_id != sealed_parent)
    ):
        raise TamperedValueError(name, "the checkpoint or its metadata differs from its seal")
    return list(present)


def _open_blobs(
    enc: RowBoundEncryption,
    ref: ThreadRef,
    versions: dict[str, Any],
    blobs: list[tuple[Any, ...]],
) -> dict[str, tuple[str, bytes]]:
    """Each channel's (type tag, plaintext), every blob checked against its row."""
    opened: dict[str, tuple[str, bytes]] = {}
    for channel, type_, blob in blobs:
        if channel == SEAL_CHANNEL or type_ == _EMPTY:
            continue
        version = str(versions[channel])
        name = row_name(
            "checkpoint_blobs",
            thread_id=ref.thread_id,
            checkpoint_ns=ref.checkpoint_ns,
            channel=channel,
            version=version,
        )
        where = blob_row(ref.thread_id, ref.checkpoint_ns, channel, version, "")
        opened[channel] = open_value(enc, type_, blob, where, name)
    return opened


def _open_writes(
    enc: RowBoundEncryption, ref: ThreadRef, rows: list[tuple[Any, ...]]
) -> list[tuple[str, str, tuple[str, bytes]]]:
    """The writes in `writes_sort_key` order as (task id, channel, (type tag, plaintext)),
    every one checked against its row."""
    assert ref.checkpoint_id is not None
    opened = []
    for task_id, path, idx, channel, type_, blob in sorted(
        rows, key=lambda w: writes_sort_key(w[1], w[0], w[2])
    ):
        name = row_name(
            "checkpoint_writes",
            thread_id=ref.thread_id,
            checkpoint_ns=ref.checkpoint_ns,
            checkpoint_id=ref.checkpoint_id,
            task_id=task_id,
            idx=idx,
        )
        where = write_row(
            ref.thread_id, ref.checkpoint_ns, ref.checkpoint_id, task_id, path, idx, channel, ""
        )
        opened.append((task_id, channel, open_value(enc, type_, blob, where, name)))
    return opened


def _check_complete(
    ref: ThreadRef, present: list[str], opened: dict[str, Any], legacy_sends: bool
) -> None:
    """Refuse a checkpoint whose sealed values are not all there."""
    name = row_name(
        "checkpoints",
        thread_id=ref.thread_id,
        checkpoint_ns=ref.checkpoint_ns,
        checkpoint_id=ref.checkpoint_id,
    )
    if legacy_sends:  # only checkpoints of format < 4 have them, and those were not sealed
        raise TamperedValueError(name, "a checkpoint of format < 4 cannot be sealed")
    if missing_channels := sorted(set(present) - set(opened)):
        missing = ", ".join(repr(c) for c in missing_channels)
        raise TamperedValueError(
            name, f"the value of channel {missing} is missing (its blob was deleted or emptied)"
        )


def tuple_from_row(
    enc: RowBoundEncryption, serde: SerializerProtocol, row: Sequence[Any]
) -> CheckpointTuple:
    """`_rows.tuple_from_row` for sealed rows: the checkpoint checked against its seal, every
    value opened against its own row before it is deserialised."""
    (
        thread_id,
        ns,
        checkpoint_id,
        parent_id,
        checkpoint,
        metadata,
        b_channels,
        b_types,
        b_blobs,
        w_task_ids,
        w_paths,
        w_idxs,
        w_channels,
        w_types,
        w_blobs,
        s_types,
        _,
    ) = row
    ref = ThreadRef(thread_id, ns, checkpoint_id)
    blobs = _zip(b_channels, b_types, b_blobs)
    seal = next(((t, b) for c, t, b in blobs if c == SEAL_CHANNEL), None)
    present = _verify_checkpoint(enc, ref, (parent_id, checkpoint, metadata), seal)
    versions = dict(checkpoint["channel_versions"])
    del versions[SEAL_CHANNEL]
    # Every value is opened (checked) before any is deserialised.
    opened = _open_blobs(enc, ref, versions, blobs)
    _check_complete(ref, present, opened, bool(s_types))
    opened_writes = _open_writes(
        enc, ref, _zip(w_task_ids, w_paths, w_idxs, w_channels, w_types, w_blobs)
    )
    values = dict(checkpoint.get("channel_values") or {})
    for channel, plain in opened.items():
        values[channel] = serde.loads_typed(plain)
    pending: list[PendingWrite] = [
        (task_id, channel, serde.loads_typed(plain)) for task_id, channel, plain in opened_writes
    ]
    stored = {**checkpoint, "channel_versions": versions, "channel_values": values}
    return CheckpointTuple(
        config=ref.config(),
        checkpoint=cast(Checkpoint, stored),
        metadata=cast(CheckpointMetadata, metadata),
        parent_config=ref.config(parent_id) if parent_id else None,
        pending_writes=pending,
    )


# -- re-encryption (checkpoint-pg reencrypt) -------------------------------------------------------


def reseal_blob(
    enc: RowBoundEncryption,
    thread_id: str,
    ns: str,
    channel: str,
    version: str,
    type_: str,
    blob: bytes,
    target: str | None = None,
) -> bytes:
    """A blob (a value or a checkpoint's seal) opened and sealed again with the current key,
    for thread `target` if given; `TamperedValueError` if it does not open for its row."""
    inner = type_.removesuffix(SUFFIX)
    if channel == SEAL_CHANNEL:
        checkpoint_id = checkpoint_id_of_seal(version)
        row = checkpoint_row(thread_id, ns, checkpoint_id)
        new_row = checkpoint_row(target or thread_id, ns, checkpoint_id)
        name = row_name(
            "checkpoints", thread_id=thread_id, checkpoint_ns=ns, checkpoint_id=checkpoint_id
        )
    else:
        row = blob_row(thread_id, ns, channel, version, inner)
        new_row = blob_row(target or thread_id, ns, channel, version, inner)
        name = row_name(
            "checkpoint_blobs",
            thread_id=thread_id,
            checkpoint_ns=ns,
            channel=channel,
            version=version,
        )
    return enc.seal(enc.open(blob, row, name), new_row)


def reseal_write(
    enc: RowBoundEncryption,
    thread_id: str,
    ns: str,
    checkpoint_id: str,
    task_id: str,
    task_path: str,
    idx: int,
    channel: str,
    type_: str,
    blob: bytes,
    target: str | None = None,
) -> bytes:
    """A write opened and sealed again with the current key (see `reseal_blob`)."""
    inner = type_.removesuffix(SUFFIX)
    row = write_row(thread_id, ns, checkpoint_id, task_id, task_path, idx, channel, inner)
    new_row = [row[0], target or thread_id, *row[2:]]
    name = row_name(
        "checkpoint_writes",
        thread_id=thread_id,
        checkpoint_ns=ns,
        checkpoint_id=checkpoint_id,
        task_id=task_id,
        idx=idx,
    )
    return enc.seal(enc.open(blob, row, name), new_row)


def copy_thread_params(
    enc: RowBoundEncryption,
    source: str,
    target: str,
    checkpoints: Sequence[Sequence[Any]],
    blobs: Sequence[Sequence[Any]],
    writes: Sequence[Sequence[Any]],
) -> dict[str, Any]:
    """The parameters of copy_sealed_thread: the source's rows, each value opened against its
    own row and sealed for the target thread (refused, as on load, if it does not open)."""
    b_rows = [
        (ns, channel, version, type_, blob)
        if type_ == _EMPTY
        else (
            ns,
            channel,
            version,
            type_,
            reseal_blob(enc, source, ns, channel, version, type_, blob, target),
        )
        for ns, channel, version, type_, blob in blobs
    ]
    w_rows = [
        (*row[:7], reseal_write(enc, source, *row, target=target))  # type: ignore[misc]
        for row in writes
    ]
    c_rows = [(*row[:4], Jsonb(row[4]), Jsonb(row[5])) for row in checkpoints]
    return {
        "source": source,
        "target": target,
        **_named(("b_ns", "b_channels", "b_versions", "b_types", "b_blobs"), b_rows),
        **_named(
            ("w_ns", "w_ids", "w_tasks", "w_paths", "w_idxs", "w_channels", "w_types", "w_blobs"),
            w_rows,
        ),
        **_named(("c_ns", "c_ids", "c_parents", "c_types", "c_checkpoints", "c_metadata"), c_rows),
    }


def _named(names: Sequence[str], rows: Sequence[Sequence[Any]]) -> dict[str, list[Any]]:
    """`rows` as one array parameter per column, named `names`."""
    return {name: [row[i] for row in rows] for i, name in enumerate(names)}
