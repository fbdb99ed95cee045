"""State and operations shared by `PostgresStore` and `AsyncPostgresStore` (no I/O here)."""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping
from typing import Any, cast

from langgraph.store.base import BaseStore, Op, Result, SearchItem, SearchOp, TTLConfig

from checkpoint_pg._runtime.aead import RowBoundEncryption
from checkpoint_pg._runtime.protocol import Operation, Query, Steps
from store import _schema
from store._batch import Database, Plan
from store._index import VectorIndex, vector_index
from store._plan import plan_batch
from store._sql import names_for, query
from store._text import Fusion, SearchChoice, TextIndex, fusion, text_index
from store.errors import InvalidIndexConfigError, InvalidValueError

DEFAULT_SWEEP_BATCH = 1000
SWEEP_FAILED = "store TTL sweep failed; retrying at the next interval"
logger = logging.getLogger("store")


def log_sweep(deleted: int) -> None:
    if deleted:
        logger.info("store TTL sweep deleted %d expired items", deleted)


class StoreCore(BaseStore):
    """Configuration and operation builders common to the sync and async stores."""

    supports_ttl: bool = True

    def __init__(
        self,
        *,
        index: Mapping[str, Any] | None = None,
        ttl: TTLConfig | None = None,
        schema: str | None = None,
        range_index_fields: Iterable[str] = (),
        encryption: RowBoundEncryption | None = None,
    ) -> None:
        if encryption is not None:
            if not isinstance(encryption, RowBoundEncryption):
                raise InvalidValueError(
                    f"encryption must be a RowBoundEncryption, not {type(encryption).__name__}"
                )
            if index or range_index_fields:
                raise InvalidIndexConfigError(
                    "index= and range_index_fields= read item values in SQL (embeddings, "
                    "expression indexes), and encryption= keeps them sealed: use one or the other"
                )
        self.encryption = encryption
        if schema is not None and (not isinstance(schema, str) or not schema or "\x00" in schema):
            raise InvalidValueError("schema must be a non-empty PostgreSQL identifier")
        self.schema = schema
        self.names = names_for(schema)
        self.vector_index: VectorIndex | None = vector_index(index)
        self.text_index: TextIndex | None = text_index(index)
        self.fusion: Fusion = fusion(index)
        self.index_config = dict(index) if index else None
        self.embeddings = self.vector_index.embeddings if self.vector_index else None
        self.range_index_fields = tuple(range_index_fields)
        self._broad_prefixes: set[str] = set()  # see store._reads.BOUNDED_PREFIX_ITEMS
        self._database = Database()  # Citus or not: learnt by the first batch, sweep or setup
        for field in self.range_index_fields:
            _schema.range_index_ddl(schema, field)  # validates now, not at setup
        self.ttl_config = ttl
        if ttl is not None:
            default = ttl.get("default_ttl")
            if default is not None and (
                not isinstance(default, (int, float)) or isinstance(default, bool) or default <= 0
            ):
                raise InvalidValueError(
                    f"ttl['default_ttl'] must be a positive number of minutes, got {default!r}"
                )

    def _sweep_seconds(self, sweep_interval_minutes: float | None) -> float:
        """The sweeper's interval: the argument, else the TTL config's, else 5 minutes."""
        minutes = sweep_interval_minutes or (self.ttl_config or {}).get("sweep_interval_minutes")
        return float(minutes or 5) * 60

    def _setup_op(self, distributed: bool = False) -> Operation[None]:
        if not isinstance(distributed, bool):
            raise InvalidValueError(f"distributed must be True or False, not {distributed!r}")
        return Operation(
            self._setup_steps(distributed),
            transactional=True,
            writes=True,
            name="store.setup",
        )

    def _setup_steps(self, distributed: bool) -> Steps[None]:
        fields = self.range_index_fields
        yield from _schema.migrate(
            self.schema, self.vector_index, fields, distributed=distributed, text=self.text_index
        )
        yield from self._database.learn()

    def _plan(self, ops: Iterable[Op], choices: Mapping[int, SearchChoice] | None = None) -> Plan:
        return plan_batch(
            ops,
            self.names,
            self.vector_index,
            self._broad_prefixes,
            self.encryption,
            self._database,
            text=self.text_index,
            fusion=self.fusion,
            choices=choices,
        )

    def _search_op(
        self,
        namespace_prefix: tuple[str, ...],
        query: str | None,
        filter: dict[str, Any] | None,
        limit: int,
        offset: int,
        refresh_ttl: bool | None,
    ) -> SearchOp:
        """The op `BaseStore.search` builds, for the stores' `search` with a mode."""
        if refresh_ttl is None:
            refresh_ttl = (self.ttl_config or {}).get("refresh_on_read", True)
        return SearchOp(namespace_prefix, filter, limit, offset, query, refresh_ttl)

    @staticmethod
    def _searched(results: list[Result]) -> list[SearchItem]:
        return cast("list[SearchItem]", results[0])

    def _sweep_op(self, batch_size: int) -> Operation[int]:
        if not isinstance(batch_size, int) or isinstance(batch_size, bool) or batch_size <= 0:
            raise InvalidValueError(f"batch_size must be a positive int, got {batch_size!r}")
        return Operation(self._sweep_steps(batch_size), writes=True, name="store.sweep_ttl")

    def _sweep_steps(self, batch_size: int) -> Steps[int]:
        # Bounded batches, each its own statement (and, on an autocommit connection, its own
        # transaction).
        citus = yield from self._database.learn()
        sql = query("sweep_expired_citus" if citus else "sweep_expired").render(
            store=self.names.store
        )
        total = 0
        while True:
            rows = yield Query(sql, {"batch_size": batch_size}, fetch=True)
            total += int(rows[0][0])
            if int(rows[0][-1]) < batch_size:  # picked (Citus) or deleted: the last batch
                return total
