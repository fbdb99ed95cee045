"""LangGraph objects to statement parameters and result rows back: pure, no I/O.

The storage format is the official package's: primitive channel values stay inline in the
checkpoint's JSONB, everything else goes to `checkpoint_blobs` keyed by (channel, version),
writes go to `checkpoint_writes` with their type tag and serialised bytes.
"""

from __future__ import annotations

import math
import random
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, cast
from uuid import UUID

from langchain_core.runnables import RunnableConfig
from langgraph.checkpoint.base import (
    WRITES_IDX_MAP,
    ChannelVersions,
    Checkpoint,
    CheckpointMetadata,
    CheckpointTuple,
    DeltaChannelHistory,
    PendingWrite,
    get_serializable_checkpoint_metadata,
    writes_sort_key,
)
from langgraph.checkpoint.serde.base import SerializerProtocol
from langgraph.checkpoint.serde.types import TASKS, _DeltaSnapshot
from psycopg.types.json import Jsonb

from checkpoint_pg._runtime.jsonb import jsonb_text, lone_surrogate
from checkpoint_pg.errors import (
    DeltaStorageError,
    InvalidConfigError,
    InvalidMetadataError,
    UnserializableValueError,
)

_INLINE_TYPES = (str, int, float, bool)
_EMPTY = "empty"
# The type of a row in delta storage (checkpoint_pg/_delta.py), which only it reads.
DELTA_TYPE_PREFIX = "cpg-delta:"


def _refuse_delta_row(type_: str, channel: str) -> None:
    if type_.startswith(DELTA_TYPE_PREFIX):
        raise DeltaStorageError(
            f"channel {channel!r} is stored in delta storage: open the saver with "
            "storage='delta' to read it, or convert the thread to the official format "
            "with `checkpoint-pg convert-storage --to official`"
        )


@dataclass(frozen=True)
class ThreadRef:
    """Where a checkpoint lives: thread, namespace and (optionally) its id."""

    thread_id: str
    checkpoint_ns: str
    checkpoint_id: str | None

    def config(self, checkpoint_id: str | None = None) -> RunnableConfig:
        return {
            "configurable": {
                "thread_id": self.thread_id,
                "checkpoint_ns": self.checkpoint_ns,
                "checkpoint_id": checkpoint_id or self.checkpoint_id,
            }
        }


# Keys of the primary keys: btree entries are capped near 2.7 kB, so each part stays well under.
MAX_KEY_BYTES = 1024
# PostgreSQL's hard limit for one bytea value.
MAX_BLOB_BYTES = (1 << 30) - 1


def text_field(value: Any, what: str, *, allow_empty: bool = True, key: bool = True) -> str:
    """Validate a text value that goes into a column; ints and UUIDs are turned into text."""
    if isinstance(value, (int, UUID)) and not isinstance(value, bool):
        value = str(value)
    if not isinstance(value, str):
        raise InvalidConfigError(f"{what} must be a string, not {type(value).__name__}")
    if "\x00" in value:
        raise InvalidConfigError(f"{what} contains a NUL byte, which PostgreSQL cannot store")
    if not allow_empty and not value:
        raise InvalidConfigError(f"{what} must not be empty")
    bad = lone_surrogate(value)
    if bad is not None:
        raise InvalidConfigError(
            f"{what} contains a lone surrogate (U+{ord(bad):04X}), which is not valid Unicode"
        )
    if key and len(value) > MAX_KEY_BYTES // 4 and len(value.encode()) > MAX_KEY_BYTES:
        raise InvalidConfigError(
            f"{what} is {len(value.encode())} bytes long; at most {MAX_KEY_BYTES} are allowed"
        )
    return value


def _checked_blob(serde: SerializerProtocol, value: Any, what: str) -> tuple[str, bytes]:
    """`value` through the serializer, refused with a typed error it cannot take."""
    try:
        type_and_blob = serde.dumps_typed(value)
    except RecursionError:
        raise UnserializableValueError(f"{what} is nested too deeply to serialise") from None
    except (TypeError, ValueError, OverflowError) as exc:
        raise UnserializableValueError(f"{what} cannot be serialised: {exc}") from None
    size = len(type_and_blob[1])
    if size > MAX_BLOB_BYTES:
        raise InvalidConfigError(
            f"{what} serialises to {size} bytes, over PostgreSQL's limit of 1 GiB per value"
        )
    return type_and_blob


def thread_id_of(value: Any) -> str:
    """Validate a thread id given directly (delete_thread, copy_thread, prune).

    An empty thread id is a thread like any other, in every method, as in the official saver.
    """
    return text_field(value, "thread_id")


def thread_ref(config: RunnableConfig | None, *, need_checkpoint_id: bool = False) -> ThreadRef:
    """Read and validate thread id, namespace and checkpoint id from `config`."""
    configurable = (config or {}).get("configurable")
    if not isinstance(configurable, Mapping):
        raise InvalidConfigError("config['configurable'] is missing: it must hold a thread_id")
    if configurable.get("thread_id") is None:
        raise InvalidConfigError("config['configurable']['thread_id'] is required")
    thread_id = text_field(configurable["thread_id"], "config['configurable']['thread_id']")
    ns = text_field(
        configurable.get("checkpoint_ns") or "", "config['configurable']['checkpoint_ns']"
    )
    raw_id = configurable.get("checkpoint_id") or configurable.get("thread_ts")
    checkpoint_id = (
        text_field(raw_id, "config['configurable']['checkpoint_id']") if raw_id else None
    )
    if need_checkpoint_id and not checkpoint_id:
        raise InvalidConfigError(
            "config['configurable']['checkpoint_id'] is required: writes belong to a checkpoint"
        )
    return ThreadRef(thread_id, ns, checkpoint_id)


def next_version(current: str | int | float | None) -> str:
    """Next channel version, in the official package's format: zero-padded counter + random."""
    if current is None:
        counter = 0
    elif isinstance(current, (int, float)):
        counter = int(current)
    else:
        counter = int(current.split(".")[0])
    return f"{counter + 1:032}.{random.random():016}"  # noqa: S311 - a tie-breaker, not a secret


def _has_nul(value: Any) -> bool:
    if isinstance(value, str):
        return "\x00" in value
    if isinstance(value, Mapping):
        return any(_has_nul(k) or _has_nul(v) for k, v in value.items())
    if isinstance(value, (list, tuple)):
        return any(_has_nul(v) for v in value)
    return False


def _json(value: Any, what: str, error: type[Exception]) -> str:
    """A checkpoint or its metadata as JSON text, by orjson where it can (`jsonb_text`)."""
    return jsonb_text(value, what, error, fast=True)


# Floats from here up print in exponent form; JSONB keeps them as numerics and gives them back
# as integers (1e16 -> 10000000000000000), so they go through the serializer instead.
_INLINE_FLOAT_LIMIT = 1e16


def _stays_inline(value: Any) -> bool:
    """Whether a channel value reads back from the checkpoint's JSONB exactly as it was put.

    What does not goes to the blobs table through the serializer, where every saver reading
    this format finds it through channel_versions (and gets what the serializer gives back,
    as from `InMemorySaver`): strings with NUL or a lone surrogate (JSONB refuses both), NaN
    and infinities (not JSON), -0.0 and floats JSONB would turn into integers.
    """
    if isinstance(value, str):
        return "\x00" not in value and lone_surrogate(value) is None
    if isinstance(value, float):
        return (
            math.isfinite(value)
            and abs(value) < _INLINE_FLOAT_LIMIT
            and not (value == 0 and math.copysign(1.0, value) < 0)
        )
    return value is None or isinstance(value, _INLINE_TYPES)


def metadata_filter(filter: Mapping[str, Any]) -> Jsonb:
    """A `list(filter=...)` as the JSONB document the metadata must contain."""
    text = jsonb_text(dict(filter), "the list filter", InvalidConfigError)
    return Jsonb(dict(filter), dumps=lambda _: text)


def before_id(checkpoint_id: Any) -> str:
    """Validate the checkpoint id of `list(before=...)`."""
    return text_field(checkpoint_id, "before['configurable']['checkpoint_id']")


def put_params(
    serde: SerializerProtocol,
    config: RunnableConfig,
    checkpoint: Checkpoint,
    metadata: CheckpointMetadata,
    new_versions: ChannelVersions,
    *,
    inline_primitives: bool = True,
) -> tuple[dict[str, Any], RunnableConfig]:
    """Parameters of the put statements (_sql/hot_path.sql) and the config `put` returns.

    With ``inline_primitives=False`` (an encrypting serializer), a primitive value the
    checkpoint changes goes through the serializer into a blob too, instead of sitting in
    plain text in the JSONB; any reader of this format finds it through channel_versions.
    Unchanged primitives stay where they already are.
    """
    ref = thread_ref(config)
    checkpoint_id = text_field(checkpoint.get("id"), "checkpoint['id']", allow_empty=False)
    inline = dict(checkpoint["channel_values"])
    to_blob: dict[str, Any] = {}
    for channel, value in checkpoint["channel_values"].items():
        if isinstance(value, _DeltaSnapshot):
            # The official marker: `true` inline, the snapshot itself in a blob.
            to_blob[channel] = value
            inline[channel] = True
        elif not _stays_inline(value) or (not inline_primitives and channel in new_versions):
            to_blob[channel] = inline.pop(channel)
    channels, versions, types, blobs = [], [], [], []
    for channel, version in new_versions.items():
        # Unchanged channels already have their blob under the version the checkpoint names.
        if channel in to_blob:
            type_, blob = _checked_blob(serde, to_blob[channel], f"channel {channel!r}'s value")
            channels.append(text_field(channel, "a channel name"))
            versions.append(text_field(str(version), f"channel {channel!r}'s version"))
            types.append(type_)
            blobs.append(blob)
    stored = {**checkpoint, "channel_values": inline}
    meta = get_serializable_checkpoint_metadata(config, metadata)
    params = {
        "thread_id": ref.thread_id,
        "checkpoint_ns": ref.checkpoint_ns,
        "checkpoint_id": checkpoint_id,
        "parent_checkpoint_id": ref.checkpoint_id,
        "checkpoint": _json(stored, "the checkpoint", InvalidConfigError),
        "metadata": _json(meta, "checkpoint metadata", InvalidMetadataError),
        "channels": channels,
        "versions": versions,
        "types": types,
        "blobs": blobs,
    }
    return params, ref.config(checkpoint_id)


def _pairs(writes: Any) -> list[tuple[Any, Any]]:
    """`put_writes`' writes as a list of (channel, value) pairs, or a typed error."""
    if isinstance(writes, (str, bytes, Mapping)) or not isinstance(writes, Sequence):
        raise InvalidConfigError(
            f"writes must be a list of (channel, value) pairs, not {type(writes).__name__}"
        )
    pairs = []
    for position, write in enumerate(writes):
        if not isinstance(write, (tuple, list)) or len(write) != 2:
            raise InvalidConfigError(f"writes[{position}] must be a (channel, value) pair")
        pairs.append((write[0], write[1]))
    return pairs


def writes_params(
    serde: SerializerProtocol,
    config: RunnableConfig,
    writes: Sequence[tuple[str, Any]],
    task_id: str,
    task_path: str,
) -> tuple[bool, dict[str, Any]]:
    """Parameters of the writes statement, and whether it upserts (special channels only).

    Writes to the special channels of `WRITES_IDX_MAP` replace what was stored under the same
    index; others are inserted only if absent, so a retried `put_writes` changes nothing.
    """
    ref = thread_ref(config, need_checkpoint_id=True)
    writes = _pairs(writes)
    upsert = all(channel in WRITES_IDX_MAP for channel, _ in writes)
    by_idx: dict[int, tuple[str, str, bytes]] = {}
    for position, (channel, value) in enumerate(writes):
        idx = WRITES_IDX_MAP.get(channel, position)
        if idx in by_idx and not upsert:
            continue  # as a row-by-row insert-if-absent would: the first one stays
        channel = text_field(channel, "a write's channel")
        type_, blob = _checked_blob(serde, value, f"the write to {channel!r}")
        by_idx[idx] = (channel, type_, blob)
    return upsert, {
        "thread_id": ref.thread_id,
        "checkpoint_ns": ref.checkpoint_ns,
        "checkpoint_id": ref.checkpoint_id,
        "task_id": text_field(task_id, "task_id"),
        "task_path": text_field(task_path, "task_path", key=False),
        "idxs": list(by_idx),
        "channels": [c for c, _, _ in by_idx.values()],
        "types": [t for _, t, _ in by_idx.values()],
        "blobs": [b for _, _, b in by_idx.values()],
    }


def _zip(*columns: Sequence[Any] | None) -> list[tuple[Any, ...]]:
    if columns[0] is None:
        return []
    return list(zip(*cast(Sequence[Sequence[Any]], columns), strict=True))


def tuple_from_row(serde: SerializerProtocol, row: Sequence[Any]) -> CheckpointTuple:
    """Turn one row of a read (select_tuple in _sql/hot_path.sql) into a `CheckpointTuple`."""
    (
        thread_id,
        checkpoint_ns,
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
        s_blobs,
    ) = row
    values = dict(checkpoint.get("channel_values") or {})
    for channel, type_, blob in _zip(b_channels, b_types, b_blobs):
        _refuse_delta_row(type_, channel)
        if type_ != _EMPTY:
            values[channel] = serde.loads_typed((type_, blob))
    if s_types:
        # Format < 4 kept pending sends in the parent's writes; newer LangGraph expects them
        # in the TASKS channel, so they are moved there on read (as the official saver does).
        values[TASKS] = [serde.loads_typed(tb) for tb in zip(s_types, s_blobs, strict=True)]
        versions = checkpoint.setdefault("channel_versions", {})
        versions[TASKS] = max(versions.values()) if versions else next_version(None)
    writes = sorted(
        _zip(w_task_ids, w_paths, w_idxs, w_channels, w_types, w_blobs),
        key=lambda w: writes_sort_key(w[1], w[0], w[2]),
    )
    pending: list[PendingWrite] = [
        (task_id, channel, serde.loads_typed((type_, blob)))
        for task_id, _, _, channel, type_, blob in writes
    ]
    ref = ThreadRef(thread_id, checkpoint_ns, checkpoint_id)
    return CheckpointTuple(
        config=ref.config(),
        checkpoint=cast(Checkpoint, {**checkpoint, "channel_values": values}),
        metadata=cast(CheckpointMetadata, metadata),
        parent_config=ref.config(parent_id) if parent_id else None,
        pending_writes=pending,
    )


def delta_history_from_rows(
    serde: SerializerProtocol, channels: Sequence[str], rows: Sequence[Sequence[Any]]
) -> dict[str, DeltaChannelHistory]:
    """Assemble `get_delta_channel_history`'s result from the rows of its query.

    Writes come oldest checkpoint first and, within one checkpoint, in `writes_sort_key`
    order: the order live execution applied them in.
    """
    writes: list[tuple[int, tuple[str, str, int], PendingWrite]] = []
    seeds: dict[str, Any] = {}
    for kind, depth, channel, type_, blob, task_id, task_path, idx, inline in rows:
        if kind == "w":
            value = serde.loads_typed((type_, blob))
            writes.append(
                (depth, writes_sort_key(task_path, task_id, idx), (task_id, channel, value))
            )
        else:  # the ancestor that stores a value: a blob wins over the inline marker
            if type_ is not None:
                _refuse_delta_row(type_, channel)
            seeds[channel] = serde.loads_typed((type_, blob)) if type_ is not None else inline
    writes.sort(key=lambda w: (-w[0], w[1]))
    result: dict[str, DeltaChannelHistory] = {}
    for channel in channels:
        entry: DeltaChannelHistory = {"writes": [w for _, _, w in writes if w[1] == channel]}
        if channel in seeds:
            entry["seed"] = seeds[channel]
        result[channel] = entry
    return result
