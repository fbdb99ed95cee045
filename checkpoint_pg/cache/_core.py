"""The cache logic shared by `PostgresCache` and `AsyncPostgresCache`, as I/O-free operations.

Each public method is one `Operation` built here (a generator of statements, see
`checkpoint_pg._runtime.protocol`); the shells in `aio.py` and `sync.py` only run it, so the
blocking and the async cache cannot behave differently.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping, Sequence
from typing import Any, Generic

from langgraph.cache.base import BaseCache, FullKey, Namespace, ValueT
from langgraph.checkpoint.serde.base import SerializerProtocol
from psycopg import sql

from checkpoint_pg._runtime.limits import over_btree_row
from checkpoint_pg._runtime.protocol import Operation, Query, Steps, one
from checkpoint_pg._runtime.sqlfile import SqlFile, load
from checkpoint_pg.errors import InvalidCacheKeyError, InvalidConfigError

__all__ = ["DEFAULT_SWEEP_BATCH", "TABLE", "CacheCore", "namespace_text"]

logger = logging.getLogger("checkpoint_pg.cache")

TABLE = "checkpoint_cache"
MIGRATIONS_TABLE = "checkpoint_cache_migrations"
DEFAULT_SWEEP_BATCH = 1000
SWEEP_FAILED = "the cache sweeper failed; it will try again at its next interval"
_MIGRATIONS = ("migration_0", "migration_1", "migration_2")


def _sql() -> SqlFile:
    return load("checkpoint_pg.cache", "cache.sql")


def namespace_text(ns: Namespace) -> str:
    """The stored form of a namespace: its labels as compact JSON (a NUL becomes ``\\u0000``)."""
    return json.dumps(list(ns), ensure_ascii=False, separators=(",", ":"))


def _checked_key(full_key: Any) -> tuple[str, str]:
    """(namespace text, key) of a LangGraph cache key, or `InvalidCacheKeyError` saying why."""
    if not (isinstance(full_key, tuple) and len(full_key) == 2):
        raise InvalidCacheKeyError(
            f"a cache key is a (namespace tuple, key string) pair, not {type(full_key).__name__}"
        )
    ns, key = full_key
    if not isinstance(ns, tuple) or not all(isinstance(label, str) for label in ns):
        raise InvalidCacheKeyError("a cache namespace is a tuple of strings")
    if not isinstance(key, str):
        raise InvalidCacheKeyError(f"a cache key is a string, not {type(key).__name__}")
    if "\x00" in key:
        raise InvalidCacheKeyError("a cache key cannot contain a NUL character")
    text = namespace_text(ns)
    if (size := over_btree_row((text, key))) is not None:
        raise InvalidCacheKeyError(
            f"cache key and namespace too long: {size} bytes, over PostgreSQL's index limit"
        )
    return text, key


def _checked_ttl(ttl: Any) -> float | None:
    if ttl is None:
        return None
    if isinstance(ttl, bool) or not isinstance(ttl, int | float) or ttl != ttl:
        raise InvalidCacheKeyError(f"a cache TTL is a number of seconds or None, not {ttl!r}")
    return float(ttl)


def _validate_schema(schema: str | None) -> str | None:
    if schema is not None and (
        not isinstance(schema, str) or not schema or "\x00" in schema or len(schema) > 63
    ):
        raise InvalidConfigError("schema must be a non-empty PostgreSQL identifier of 1-63 bytes")
    return schema


def _validate_unlogged(unlogged: bool | None) -> bool | None:
    if unlogged is not None and not isinstance(unlogged, bool):
        raise InvalidConfigError(f"unlogged must be True, False or None, not {unlogged!r}")
    return unlogged


class CacheCore(BaseCache[ValueT], Generic[ValueT]):
    """State and operations of a cache; the shells add the connection and the I/O."""

    def __init__(
        self,
        *,
        serde: SerializerProtocol | None = None,
        schema: str | None = None,
        unlogged: bool | None = None,
    ) -> None:
        super().__init__(serde=serde)
        self.schema = _validate_schema(schema)
        # None: setup() creates an ordinary (logged) table and never changes an existing one.
        self.unlogged = _validate_unlogged(unlogged)
        self._parts = self._table_parts()
        file = _sql()
        self._statements = {
            name: file[name].render(**self._parts)
            for name in ("get", "set", "clear_namespaces", "clear_all", "sweep")
        }

    def _table_parts(self) -> dict[str, sql.Composable]:
        def name(table: str) -> sql.Identifier:
            return (
                sql.Identifier(table) if self.schema is None else sql.Identifier(self.schema, table)
            )

        return {
            "cache": name(TABLE),
            "migrations": name(MIGRATIONS_TABLE),
            "expiry_index": sql.Identifier(f"{TABLE}_expires_at_idx"),
            "persistence": sql.SQL("UNLOGGED" if self.unlogged else ""),
        }

    # -- operations ---------------------------------------------------------------------------

    def _setup_op(self) -> Operation[None]:
        return Operation(self._setup_steps(), transactional=True, writes=True, name="cache.setup")

    def _setup_steps(self) -> Steps[None]:
        file = _sql()
        schema = self.schema
        yield Query(
            file["xact_lock_setup"].render(), {"lock_key": f"checkpoint_pg.cache:{schema or ''}"}
        )
        if schema is not None:
            yield Query(
                sql.SQL("CREATE SCHEMA IF NOT EXISTS {}")
                .format(sql.Identifier(schema))
                .as_string(None)
            )
        yield Query(file["migration_0"].render(**self._parts))
        rows = yield Query(file["latest_migration"].render(**self._parts), fetch=True)
        current = rows[0][0] if rows and rows[0][0] is not None else 0
        for version in range(current + 1, len(_MIGRATIONS)):
            yield Query(file[_MIGRATIONS[version]].render(**self._parts))
            yield Query(file["record_migration"].render(**self._parts), {"v": version})
        if self.unlogged is not None:
            table = self._parts["cache"].as_string(None)
            rows = yield Query(file["persistence"].render(), {"table": table}, fetch=True)
            is_unlogged = rows[0][0] == "u"
            if is_unlogged != self.unlogged:
                change = "set_unlogged" if self.unlogged else "set_logged"
                yield Query(file[change].render(**self._parts))
                logger.info(
                    "cache table %s is now %s", table, "UNLOGGED" if self.unlogged else "logged"
                )

    def _get_op(self, keys: Sequence[FullKey]) -> Operation[dict[FullKey, ValueT]] | None:
        if not keys:
            return None
        asked: dict[tuple[str, str], FullKey] = {}
        for full_key in keys:
            asked.setdefault(_checked_key(full_key), full_key)
        params = {"ns": [ns for ns, _ in asked], "keys": [key for _, key in asked]}

        def values(rows: list[tuple[Any, ...]]) -> dict[FullKey, ValueT]:
            found: dict[FullKey, ValueT] = {}
            for ns, key, type_, value in rows:
                found[asked[(ns, key)]] = self.serde.loads_typed((type_, bytes(value)))
            return found

        query = Query(self._statements["get"], params, fetch=True)
        return Operation(one(query, values), name="cache.get")

    def _set_op(self, pairs: Mapping[FullKey, tuple[ValueT, int | None]]) -> Operation[None] | None:
        if not pairs:
            return None
        rows: dict[tuple[str, str], tuple[str, bytes, float | None]] = {}
        for full_key, entry in pairs.items():
            if not (isinstance(entry, tuple) and len(entry) == 2):
                raise InvalidCacheKeyError(
                    "each cache entry is a (value, ttl seconds or None) pair"
                )
            value, ttl = entry
            type_, data = self.serde.dumps_typed(value)
            rows[_checked_key(full_key)] = (type_, data, _checked_ttl(ttl))
        ordered = sorted(rows.items())
        params = {
            "ns": [ns for (ns, _), _ in ordered],
            "keys": [key for (_, key), _ in ordered],
            "types": [row[0] for _, row in ordered],
            "values": [row[1] for _, row in ordered],
            "ttls": [row[2] for _, row in ordered],
        }
        query = Query(self._statements["set"], params)
        return Operation(one(query, lambda _: None), writes=True, name="cache.set")

    def _clear_op(self, namespaces: Sequence[Namespace] | None) -> Operation[None] | None:
        if namespaces is None:
            query = Query(self._statements["clear_all"])
        else:
            texts = []
            for ns in namespaces:
                if not isinstance(ns, tuple) or not all(isinstance(label, str) for label in ns):
                    raise InvalidCacheKeyError("a cache namespace is a tuple of strings")
                texts.append(namespace_text(ns))
            if not texts:
                return None
            query = Query(self._statements["clear_namespaces"], {"ns": texts})
        return Operation(one(query, lambda _: None), writes=True, name="cache.clear")

    def _sweep_op(self, batch_size: int) -> Operation[int]:
        if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
            raise InvalidConfigError(f"batch_size must be a positive int, not {batch_size!r}")
        query = Query(self._statements["sweep"], {"limit": batch_size}, fetch=True)
        return Operation(one(query, lambda rows: int(rows[0][0])), writes=True, name="cache.sweep")

    @staticmethod
    def _sweep_seconds(interval: float) -> float:
        if isinstance(interval, bool) or not isinstance(interval, int | float) or not interval > 0:
            raise InvalidConfigError(
                f"the sweep interval must be positive seconds, not {interval!r}"
            )
        return float(interval)
