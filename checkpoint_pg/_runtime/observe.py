"""Logs and traces of database operations: standard `logging`, optional OpenTelemetry.

Loggers (standard library; configure them like any other):

- ``checkpoint_pg``: the saver package. Setup decisions (partitioned tables created, a
  partition count that differs from the one asked for) at INFO/WARNING.
- ``checkpoint_pg.sql``: one DEBUG line per saver operation the driver runs
  (``checkpoint_pg.put``, ``checkpoint_pg.get_tuple``, …).
- ``store`` / ``store.sql``: the same for the store (``store.batch``, ``store.setup``,
  ``store.sweep_ttl``); the TTL sweeper logs on ``store``.

Each DEBUG line says the operation, its duration in milliseconds and how many rows it
returned (see `_rows`), and carries them as structured fields on the record (``record.operation``,
``record.duration_ms``, ``record.rows``, and ``record.error`` on failure) for JSON formatters.
Nothing else: never a parameter, a value, a thread id, a statement's text or a DSN.

Spans (when ``opentelemetry-api`` is importable, ``pip install checkpoint-pg[otel]``): one
CLIENT span per operation, named like the operation (``checkpoint_pg.put``, ``store.batch``),
with the attributes ``db.system`` = ``postgresql``, ``db.system.name`` = ``postgresql``,
``db.operation`` / ``db.operation.name`` (``put``, ``batch``…) and, when it ends,
``checkpoint_pg.rows``. Thread ids, namespaces and keys are deliberately left out: they often
hold user identifiers. A failed operation's span has status ERROR and ``error.type`` (the
exception's class name) but no message text, which may quote stored values. With no tracer
provider installed (OpenTelemetry's default), no span is started at all.

Both are checked per call (``Logger.isEnabledFor`` is cached by `logging`), so turning DEBUG
on or installing a tracer provider at run time takes effect at once; with neither, an
operation pays those two checks and nothing else (no observation object is made).
"""

from __future__ import annotations

import functools
import logging
import time
from contextlib import AbstractContextManager
from typing import Any

from checkpoint_pg._runtime.protocol import Operation

__all__ = ["Observation", "begin", "pool_stats"]


_DEBUG = logging.DEBUG

try:  # OpenTelemetry is optional: without it, spans cost nothing at all.
    from opentelemetry import trace as _trace
    from opentelemetry.trace import SpanKind as _SpanKind
    from opentelemetry.trace import Status as _Status
    from opentelemetry.trace import StatusCode as _StatusCode

    _NOT_TRACING: tuple[type, ...] = (_trace.ProxyTracerProvider, _trace.NoOpTracerProvider)
except ImportError:  # pragma: no cover - exercised when the extra is not installed
    _trace = None  # type: ignore[assignment]

# (provider, its tracer): the tracer of the provider seen last, got again when it changes.
_cached: tuple[Any, Any] = (None, None)


def _current_tracer() -> Any:
    """The tracer of the application's tracer provider; None while it has none (or no API).

    Starting a span on OpenTelemetry's default proxy costs time for a span nobody records,
    so operations start none until a real provider is installed (checked on every call).
    """
    global _cached
    if _trace is None:
        return None
    provider = _trace.get_tracer_provider()
    if isinstance(provider, _NOT_TRACING):
        return None
    if provider is not _cached[0]:
        _cached = (provider, provider.get_tracer("checkpoint_pg"))
    return _cached[1]


@functools.lru_cache(maxsize=64)
def _sql_logger(name: str) -> logging.Logger:
    """The DEBUG logger of an operation: ``<its package>.sql`` (``checkpoint_pg.put`` logs on
    ``checkpoint_pg.sql``, ``store.batch`` on ``store.sql``)."""
    return logging.getLogger(name.partition(".")[0] + ".sql")


@functools.lru_cache(maxsize=256)
def _attributes(name: str) -> dict[str, str]:
    operation = name.rpartition(".")[2]
    return {
        "db.system": "postgresql",
        "db.system.name": "postgresql",
        "db.operation": operation,
        "db.operation.name": operation,
    }


def _rows(result: Any) -> int:
    """What logs and spans call rows: the items an operation returned. A list (a page of
    `list`, a store batch's results) counts its length, a record (a named tuple, such as a
    checkpoint tuple) one, a count (TTL sweeps) itself; anything else (a write's new config,
    nothing) zero."""
    if isinstance(result, list):
        return len(result)
    if isinstance(result, tuple) and hasattr(result, "_fields"):
        return 1
    if isinstance(result, int) and not isinstance(result, bool):
        return result
    return 0


class Observation:
    """One operation being timed, logged and (maybe) traced."""

    __slots__ = ("log", "name", "scope", "span", "started")

    def __init__(self, name: str, log: logging.Logger | None, tracer: Any) -> None:
        self.name = name
        self.log = log
        self.span: Any = None
        self.scope: AbstractContextManager[Any] | None = None
        if tracer is not None:
            self.scope = tracer.start_as_current_span(
                name,
                kind=_SpanKind.CLIENT,
                attributes=_attributes(name),
                record_exception=False,
                set_status_on_exception=False,
            )
            self.span = self.scope.__enter__()
        self.started = time.perf_counter()

    def done(self, result: Any) -> None:
        elapsed = (time.perf_counter() - self.started) * 1000.0
        rows = _rows(result)
        if self.log is not None:
            self.log.debug(
                "%s %.3f ms, %d rows",
                self.name,
                elapsed,
                rows,
                extra={"operation": self.name, "duration_ms": elapsed, "rows": rows},
            )
        if self.scope is not None:
            if self.span.is_recording():
                self.span.set_attribute("checkpoint_pg.rows", rows)
            self.scope.__exit__(None, None, None)

    def failed(self, exc: BaseException) -> None:
        elapsed = (time.perf_counter() - self.started) * 1000.0
        kind = type(exc).__name__
        if self.log is not None:
            self.log.debug(
                "%s failed after %.3f ms: %s",
                self.name,
                elapsed,
                kind,
                extra={"operation": self.name, "duration_ms": elapsed, "error": kind},
            )
        if self.scope is not None:
            if self.span.is_recording():
                self.span.set_attribute("error.type", kind)
                self.span.set_status(_Status(_StatusCode.ERROR, kind))
            self.scope.__exit__(None, None, None)


def begin(op: Operation[Any]) -> Observation | None:
    """An observation of `op`, or None when no logger or tracer would see it."""
    name = op.name
    log = _sql_logger(name)
    enabled = log.isEnabledFor(_DEBUG)
    tracer = _current_tracer()
    if not enabled and tracer is None:
        return None
    return Observation(name, log if enabled else None, tracer)


# -- pool statistics ----------------------------------------------------------------------------

# psycopg_pool's `get_stats()` keys. The first five are measures of the moment; the rest are
# counters since the pool opened, which psycopg_pool leaves out while they are zero: here every
# key is always present.
POOL_STAT_KEYS: tuple[str, ...] = (
    "pool_min",  # connections the pool keeps open at least
    "pool_max",  # connections it may open at most
    "pool_size",  # connections open now (in use, idle, or being opened)
    "pool_available",  # idle connections ready to hand out now
    "requests_waiting",  # callers waiting for a connection now
    "requests_num",  # connections asked for
    "requests_queued",  # requests that had to wait
    "requests_wait_ms",  # total time requests waited
    "requests_errors",  # requests that failed (pool timeout, too many waiting)
    "usage_ms",  # total time connections were out of the pool
    "returns_bad",  # connections returned broken or in a bad state
    "connections_num",  # connection attempts made
    "connections_ms",  # total time spent connecting
    "connections_errors",  # failed connection attempts
    "connections_lost",  # connections found broken by a check
)


def pool_stats(conn: Any) -> dict[str, int] | None:
    """`conn`'s pool statistics with every key of `POOL_STAT_KEYS`; None for one connection."""
    get_stats = getattr(conn, "get_stats", None)
    if get_stats is None:
        return None
    stats = dict.fromkeys(POOL_STAT_KEYS, 0)
    stats.update(get_stats())
    return stats
