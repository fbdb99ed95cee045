"""The saver logic shared by `PostgresSaver` and `AsyncPostgresSaver`, as I/O-free operations.

Every public saver method is one `Operation` built here; the shells execute it. Nothing in
this module touches a connection.
"""

from __future__ import annotations

import copy
from collections.abc import Collection, Mapping, Sequence
from typing import Any

from langchain_core.runnables import RunnableConfig
from langgraph.checkpoint.base import (
    BaseCheckpointSaver,
    ChannelVersions,
    Checkpoint,
    CheckpointMetadata,
    CheckpointTuple,
    DeltaChannelHistory,
    get_checkpoint_id,
)
from langgraph.checkpoint.serde.base import SerializerProtocol
from langgraph.checkpoint.serde.encrypted import EncryptedSerializer
from psycopg.types.json import Jsonb

from checkpoint_pg import _delta, _prune, _rows, _schema, _sealed_rows
from checkpoint_pg._runtime.aead import RowBoundEncryption
from checkpoint_pg._runtime.citus import citus_installed
from checkpoint_pg._runtime.limits import BTREE_MAX_ROW_BYTES, over_btree_row
from checkpoint_pg._runtime.protocol import Operation, Query, Rows, Steps, one
from checkpoint_pg._sql import (
    BLOB_ARRAYS,
    MAX_VALUES_ROWS,
    TASKS_CHANNEL,
    WRITE_ARRAYS,
    delta_history_statement,
    list_statement,
    put_delta_statement,
    put_statement,
    select_statement,
    spread,
    statements_for,
    writes_statement,
)
from checkpoint_pg.errors import InvalidConfigError
from checkpoint_pg.serde import CompressingSerializer

__all__ = ["PRUNE_STRATEGIES", "SaverCore"]

PRUNE_STRATEGIES = ("keep_latest", "delete")
LIST_PAGE_SIZE = 100


def _validate_schema(schema: str | None) -> str | None:
    if schema is None:
        return None
    if not isinstance(schema, str) or not schema or "\x00" in schema or len(schema) > 63:
        raise InvalidConfigError(
            "schema must be a non-empty PostgreSQL identifier of at most 63 bytes"
        )
    return schema


MAX_PARTITIONS = 1024


def _validate_partitions(partitions: int | None) -> int | None:
    if partitions is None:
        return None
    if (
        not isinstance(partitions, int)
        or isinstance(partitions, bool)
        or not 1 <= partitions <= MAX_PARTITIONS
    ):
        raise InvalidConfigError(
            f"partitions must be None or an int from 1 to {MAX_PARTITIONS}, got {partitions!r}"
        )
    return partitions


COMPRESSION_METHODS = ("pglz", "lz4")
STORAGE_MODES = ("official", "delta")


def _validate_storage(storage: str, encryption: RowBoundEncryption | None) -> str:
    if storage not in STORAGE_MODES:
        raise InvalidConfigError(f"storage must be 'official' or 'delta', got {storage!r}")
    if storage == "delta" and encryption is not None:
        raise InvalidConfigError(
            "storage='delta' does not combine with encryption=RowBoundEncryption(...); an "
            "EncryptedSerializer (serde=) does"
        )
    return storage


def _validate_compression(compression: str | None) -> str | None:
    if compression is not None and compression not in COMPRESSION_METHODS:
        raise InvalidConfigError(f"compression must be None, 'pglz' or 'lz4', got {compression!r}")
    return compression


def _check_key_row(table: str, parts: Mapping[str, str]) -> None:
    """Refuse a primary key whose index entry would exceed PostgreSQL's btree row limit."""
    size = over_btree_row(parts.values())
    if size is not None:
        raise InvalidConfigError(
            f"the {table} key ({', '.join(parts)}) takes about {size} bytes; PostgreSQL's btree "
            f"index rows hold at most {BTREE_MAX_ROW_BYTES} bytes"
        )


def _check_put_keys(params: Mapping[str, Any]) -> None:
    key = {"thread_id": params["thread_id"], "checkpoint_ns": params["checkpoint_ns"]}
    _check_key_row("checkpoints", {**key, "checkpoint_id": params["checkpoint_id"]})
    for channel, version in zip(params["channels"], params["versions"], strict=True):
        _check_key_row("checkpoint_blobs", {**key, "channel": channel, "version": version})


def _check_writes_key(params: Mapping[str, Any]) -> None:
    names = ("thread_id", "checkpoint_ns", "checkpoint_id", "task_id")
    # idx is an 8-byte int: counted as 8 characters.
    _check_key_row("checkpoint_writes", {**{n: params[n] for n in names}, "idx": "0" * 8})


class ListPager:
    """Keyset pagination state of one `list` call."""

    def __init__(
        self,
        core: SaverCore,
        config: RunnableConfig | None,
        *,
        filter: dict[str, Any] | None,
        before: RunnableConfig | None,
        limit: int | None,
        page_size: int = LIST_PAGE_SIZE,
    ) -> None:
        if limit is not None and (not isinstance(limit, int) or isinstance(limit, bool)):
            raise InvalidConfigError(f"limit must be an int or None, not {type(limit).__name__}")
        if filter is not None and not isinstance(filter, Mapping):
            raise InvalidConfigError(f"filter must be a dict, not {type(filter).__name__}")
        self._core = core
        self._remaining = limit
        self._page_size = page_size
        self._done = limit is not None and limit <= 0
        predicates: set[str] = set()
        params: dict[str, Any] = {}
        if config is not None:
            ref = _rows.thread_ref(config)
            predicates.add("thread_id")
            params["thread_id"] = ref.thread_id
            if config["configurable"].get("checkpoint_ns") is not None:
                predicates.add("checkpoint_ns")
                params["checkpoint_ns"] = ref.checkpoint_ns
            if ref.checkpoint_id:
                predicates.add("checkpoint_id")
                params["checkpoint_id"] = ref.checkpoint_id
        if filter:
            predicates.add("metadata")
            params["metadata"] = _rows.metadata_filter(filter)
        if before is not None and (before_id := get_checkpoint_id(before)):
            predicates.add("before")
            params["before"] = _rows.before_id(before_id)
        params["tasks"] = TASKS_CHANNEL
        self._predicates = frozenset(predicates)
        self._params = params

    def next_operation(self) -> Operation[list[CheckpointTuple]] | None:
        """The next page's operation, or None when the listing is complete."""
        if self._done:
            return None
        size = self._page_size
        if self._remaining is not None:
            size = min(size, self._remaining)
        return Operation(self._page(size), name="checkpoint_pg.list")

    def _page(self, size: int) -> Steps[list[CheckpointTuple]]:
        # Over many threads, Citus needs another form of the blob lookup (hot_path.sql).
        citus = "thread_id" not in self._predicates and (yield from self._core._on_citus())
        delta = self._core.storage == "delta"
        sql = list_statement(self._core.schema, self._predicates, citus=citus, delta=delta)
        rows = yield Query(sql, {**self._params, "limit": size}, fetch=True)
        return self._consume(rows, size)

    def _consume(self, rows: Rows, size: int) -> list[CheckpointTuple]:
        if len(rows) < size:
            self._done = True
        if self._remaining is not None:
            self._remaining -= len(rows)
            self._done = self._done or self._remaining <= 0
        if rows:
            last = rows[-1]
            self._predicates = self._predicates | {"after"}
            self._params.update(after_id=last[2], after_thread=last[0], after_ns=last[1])
        return [self._core._load_row(row) for row in rows]


class SaverCore(BaseCheckpointSaver[str]):
    """State and operation builders common to the sync and async savers."""

    def __init__(
        self,
        *,
        serde: SerializerProtocol | None = None,
        schema: str | None = None,
        inline_primitives: bool | None = None,
        partitions: int | None = None,
        encryption: RowBoundEncryption | None = None,
        compression: str | None = None,
        storage: str = "official",
    ):
        super().__init__(serde=serde)
        if encryption is not None and not isinstance(encryption, RowBoundEncryption):
            raise InvalidConfigError(
                f"encryption must be a RowBoundEncryption, not {type(encryption).__name__}"
            )
        # Opt-in: every value sealed to its row (_sealed_rows.py); None keeps the official format.
        self.encryption = encryption
        self.schema = _validate_schema(schema)
        # Opt-in: setup() creates the checkpoint tables hash-partitioned by thread_id.
        self.partitions = _validate_partitions(partitions)
        # Opt-in: setup() sets the value columns to this TOAST compression method (None: the
        # server's default, pglz, as the official tables have).
        self.compression = _validate_compression(compression)
        # Opt-in: list values that extend a known version are stored as deltas (_delta.py).
        self.storage = _validate_storage(storage, encryption)
        self._delta_cache = _delta.DeltaCache()
        self._sql = statements_for(self.schema)
        # Whether the database has Citus: asked once, by the first statement with a Citus form.
        self._citus: bool | None = None
        # Primitive channel values are stored inline in the checkpoint's JSONB, in plain text,
        # as the official saver does; an encrypting serializer would be bypassed, so by default
        # they go through it when it encrypts.
        if inline_primitives is None:
            inline_primitives = not isinstance(self.serde, EncryptedSerializer)
        self.inline_primitives = inline_primitives

    def with_allowlist(self, extra_allowlist: Collection[tuple[str, ...]]) -> SaverCore:
        """LangGraph's strict-msgpack allowlist, reaching inside a `CompressingSerializer` too."""
        serde = self.serde
        if isinstance(serde, EncryptedSerializer) and isinstance(
            serde.serde, CompressingSerializer
        ):
            updated = serde.serde.with_msgpack_allowlist(extra_allowlist)
            new_serde: SerializerProtocol = EncryptedSerializer(serde.cipher, updated)
        elif isinstance(serde, CompressingSerializer):
            new_serde = serde.with_msgpack_allowlist(extra_allowlist)
        else:
            return super().with_allowlist(extra_allowlist)  # type: ignore[return-value]
        clone = copy.copy(self)
        clone.serde = new_serde
        return clone

    # -- versions ------------------------------------------------------------------------------

    def get_next_version(self, current: str | None, channel: None = None) -> str:
        """Next channel version in the official format (zero-padded counter + random suffix)."""
        return _rows.next_version(current)

    # -- operations ----------------------------------------------------------------------------

    def _on_citus(self) -> Steps[bool]:
        """Whether the tables live on Citus (one catalog query, the first time only)."""
        if self._citus is None:
            self._citus = yield from citus_installed()
        return self._citus

    def _setup_op(self, distributed: bool = False) -> Operation[tuple[int, int]]:
        if not isinstance(distributed, bool):
            raise InvalidConfigError(f"distributed must be True or False, not {distributed!r}")
        return Operation(
            self._setup_steps(distributed),
            transactional=True,
            writes=True,
            name="checkpoint_pg.setup",
        )

    def _setup_steps(self, distributed: bool) -> Steps[tuple[int, int]]:
        versions = yield from _schema.migrate(
            self._sql,
            self.schema,
            partitions=self.partitions,
            compression=self.compression,
            distributed=distributed,
        )
        self._citus = yield from citus_installed()  # and whether the tables live on Citus
        return versions

    def _get_tuple_op(self, config: RunnableConfig) -> Operation[CheckpointTuple | None]:
        ref = _rows.thread_ref(config)
        params = {
            "thread_id": ref.thread_id,
            "checkpoint_ns": ref.checkpoint_ns,
            "checkpoint_id": ref.checkpoint_id,
            "tasks": TASKS_CHANNEL,
        }
        sql = self._sql.select_by_id if ref.checkpoint_id else self._sql.select_latest
        if self.storage == "delta":
            name = "select_by_id" if ref.checkpoint_id else "select_latest"
            sql = select_statement(self.schema, name, delta=True)

        def result(rows: Rows) -> CheckpointTuple | None:
            return self._load_row(rows[0], seed=True) if rows else None

        return Operation(
            one(Query(sql, params, fetch=True), result), name="checkpoint_pg.get_tuple"
        )

    def _load_row(self, row: Sequence[Any], *, seed: bool = False) -> CheckpointTuple:
        if self.storage == "delta":
            cache = self._delta_cache if seed else None
            return _delta.tuple_from_row(self.serde, row, cache)
        if self.encryption is None:
            return _rows.tuple_from_row(self.serde, row)
        return _sealed_rows.tuple_from_row(self.encryption, self.serde, row)

    def _list_pager(
        self,
        config: RunnableConfig | None,
        *,
        filter: dict[str, Any] | None,
        before: RunnableConfig | None,
        limit: int | None,
    ) -> ListPager:
        return ListPager(self, config, filter=filter, before=before, limit=limit)

    def _put_op(
        self,
        config: RunnableConfig,
        checkpoint: Checkpoint,
        metadata: CheckpointMetadata,
        new_versions: ChannelVersions,
    ) -> Operation[RunnableConfig]:
        if self.encryption is None:
            params, next_config = _rows.put_params(
                self.serde,
                config,
                checkpoint,
                metadata,
                new_versions,
                inline_primitives=self.inline_primitives,
            )
        else:
            params, next_config = _sealed_rows.put_params(
                self.encryption, self.serde, config, checkpoint, metadata, new_versions
            )
        _check_put_keys(params)
        sql = put_statement(self.schema, len(params["channels"]))
        query = Query(sql, spread(params, BLOB_ARRAYS))
        if self.storage == "delta":
            values = checkpoint["channel_values"]
            plan = _delta.put_plan(self.serde, self._delta_cache, values, params)
            steps = self._delta_put_steps(query, plan, next_config)
            return Operation(steps, writes=True, name="checkpoint_pg.put")
        return Operation(one(query, lambda _: next_config), writes=True, name="checkpoint_pg.put")

    def _delta_put_steps(
        self,
        full: Query,
        plan: tuple[dict[str, Any] | None, dict[tuple[str, str, str], _delta.Known]],
        next_config: RunnableConfig,
    ) -> Steps[RunnableConfig]:
        """put in delta storage: the deltas if every base is there, else the values whole."""
        params, learnt = plan
        if params is None:
            yield full
        elif not (yield Query(put_delta_statement(self.schema), params, fetch=True)):
            learnt = _delta.whole(learnt)
            yield full
        for key, known in learnt.items():
            self._delta_cache.set(key, known)
        return next_config

    def _put_writes_op(
        self,
        config: RunnableConfig,
        writes: Sequence[tuple[str, Any]],
        task_id: str,
        task_path: str,
    ) -> Operation[None] | None:
        if not writes:
            return None
        upsert, params = _rows.writes_params(self.serde, config, writes, task_id, task_path)
        _check_writes_key(params)
        if self.encryption is not None:
            params = _sealed_rows.seal_writes(self.encryption, params)
        return Operation(
            self._put_writes_steps(params, upsert), writes=True, name="checkpoint_pg.put_writes"
        )

    def _put_writes_steps(self, params: dict[str, Any], upsert: bool) -> Steps[None]:
        count = len(params["channels"])
        # Many writes go as arrays, except where setup() found Citus: see writes_statement.
        # (Never asked here: the hot path sends one statement.)
        rows = count > MAX_VALUES_ROWS and self._citus is True
        sql = writes_statement(self.schema, count, upsert, rows)
        yield Query(sql, spread(params, WRITE_ARRAYS, rows))

    def _delta_history_op(
        self, config: RunnableConfig, channels: Sequence[str]
    ) -> Operation[dict[str, DeltaChannelHistory]]:
        ref = _rows.thread_ref(config)
        wanted = list(dict.fromkeys(_rows.text_field(c, "a channel name") for c in channels))
        params = {
            "thread_id": ref.thread_id,
            "checkpoint_ns": ref.checkpoint_ns,
            "checkpoint_id": ref.checkpoint_id,
            "channels": wanted,
        }
        query = Query(delta_history_statement(self.schema), params, fetch=True)
        return Operation(
            one(query, lambda rows: _rows.delta_history_from_rows(self.serde, wanted, rows)),
            name="checkpoint_pg.get_delta_channel_history",
        )

    def _delete_thread_op(self, thread_id: str) -> Operation[None]:
        params = {"thread_id": _rows.thread_id_of(thread_id)}
        return Operation(
            one(Query(self._sql.delete_thread, params), lambda _: None),
            writes=True,
            name="checkpoint_pg.delete_thread",
        )

    def _delete_for_runs_op(self, run_ids: Sequence[str]) -> Operation[None] | None:
        if isinstance(run_ids, str):
            raise InvalidConfigError("run_ids must be a list of run ids, not one string")
        ids = [_rows.text_field(r, "a run id", allow_empty=False) for r in run_ids]
        if not ids:
            return None
        params = {"run_ids": ids, "run_filters": [Jsonb({"run_id": r}) for r in ids]}
        return Operation(
            self._delete_for_runs_steps(params), writes=True, name="checkpoint_pg.delete_for_runs"
        )

    def _delete_for_runs_steps(self, params: dict[str, Any]) -> Steps[None]:
        if not (yield from self._on_citus()):
            yield Query(self._sql.delete_for_runs, params, prepare=False)
            return
        # Citus: find the runs' threads on every shard, then delete thread by thread, each
        # statement routed to one shard (threads.sql, delete_for_runs).
        threads = yield Query(self._sql.run_threads, params, fetch=True, prepare=False)
        for (thread_id,) in threads:
            scoped = {**params, "thread_ids": [thread_id]}
            yield Query(self._sql.delete_for_runs_in_threads, scoped, prepare=False)

    def _copy_thread_op(self, source_thread_id: str, target_thread_id: str) -> Operation[None]:
        params = {
            "source": _rows.thread_id_of(source_thread_id),
            "target": _rows.thread_id_of(target_thread_id),
        }
        if self.encryption is not None:
            return Operation(
                self._sealed_copy_steps(params["source"], params["target"]),
                transactional=True,
                writes=True,
                name="checkpoint_pg.copy_thread",
            )
        return Operation(
            one(Query(self._sql.copy_thread, params), lambda _: None),
            writes=True,
            name="checkpoint_pg.copy_thread",
        )

    def _sealed_copy_steps(self, source: str, target: str) -> Steps[None]:
        """copy_thread with encryption: read the source's rows, seal every value again for the
        target (a value is bound to its thread), write them in one statement. Checkpoints are
        read first, so every blob and write they need is read too."""
        assert self.encryption is not None
        keys = {"source": source}
        checkpoints, blobs, writes = yield [
            Query(self._sql.sealed_thread_checkpoints, keys, fetch=True),
            Query(self._sql.sealed_thread_blobs, keys, fetch=True),
            Query(self._sql.sealed_thread_writes, keys, fetch=True),
        ]
        if not checkpoints:
            return
        params = _sealed_rows.copy_thread_params(
            self.encryption, source, target, checkpoints, blobs, writes
        )
        yield Query(self._sql.copy_sealed_thread, params, prepare=False)

    def _prune_op(self, thread_ids: Sequence[str], strategy: str) -> Operation[Any] | None:
        if strategy not in PRUNE_STRATEGIES:
            raise InvalidConfigError(
                f"unknown prune strategy {strategy!r}: use one of {', '.join(PRUNE_STRATEGIES)}"
            )
        if isinstance(thread_ids, str):
            raise InvalidConfigError("thread_ids must be a list of thread ids, not one string")
        ids = [_rows.thread_id_of(t) for t in thread_ids]
        if not ids:
            return None
        return Operation(self._prune_steps(ids, strategy), writes=True, name="checkpoint_pg.prune")

    def _prune_steps(self, ids: list[str], strategy: str) -> Steps[None]:
        citus = yield from self._on_citus()
        for group in _prune.thread_groups(ids, one_at_a_time=citus):
            if strategy == "delete":
                yield Query(self._sql.prune_delete, {"thread_ids": group}, prepare=False)
            else:
                yield from _prune.keep_latest(self.schema, group)
