"""Logs, traces and pool statistics: what they say, what they never say, and what they cost.

Spans go to an OpenTelemetry SDK tracer provider with an in-memory exporter, handed to the
package directly (no global provider is installed, so the rest of the session is untouched).
"""

from __future__ import annotations

import logging
from collections.abc import Iterator

import psycopg
import pytest
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind, StatusCode
from psycopg_pool import AsyncConnectionPool, ConnectionPool

from checkpoint_pg import AsyncPostgresSaver, PostgresSaver, SchemaNotReadyError
from checkpoint_pg._runtime import observe as _observe
from checkpoint_pg._runtime.protocol import Operation
from store import PostgresStore
from tests.checkpoint.helpers import checkpoint, config

SECRET_THREAD = "thread-of-user-alice@example-com"
SECRET_VALUE = "the launch code is 0000"
SPAN_ATTRIBUTES = {"db.system", "db.system.name", "db.operation", "db.operation.name"}


@pytest.fixture
def spans(monkeypatch: pytest.MonkeyPatch) -> Iterator[InMemorySpanExporter]:
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    tracer = provider.get_tracer("checkpoint_pg")
    monkeypatch.setattr(_observe, "_current_tracer", lambda: tracer)
    yield exporter
    provider.shutdown()


def _everything_said(records: list[logging.LogRecord]) -> str:
    return "\n".join(f"{r.getMessage()} {r.__dict__}" for r in records)


# -- logging -------------------------------------------------------------------------------------


def test_each_saver_operation_logs_one_debug_line_with_name_duration_and_rows(
    dsn: str, caplog: pytest.LogCaptureFixture
) -> None:
    with psycopg.connect(dsn, autocommit=True) as conn:
        saver = PostgresSaver(conn)
        saver.setup()
        with caplog.at_level(logging.DEBUG, logger="checkpoint_pg.sql"):
            cfg = saver.put(
                config(SECRET_THREAD), checkpoint({"doc": [SECRET_VALUE]}), {"step": 1}, {}
            )
            saver.put_writes(cfg, [("doc", SECRET_VALUE)], "task")
            assert saver.get_tuple(cfg) is not None
            assert len(list(saver.list(None))) == 1
    records = [r for r in caplog.records if r.name == "checkpoint_pg.sql"]
    assert [r.operation for r in records] == [  # type: ignore[attr-defined]
        "checkpoint_pg.put",
        "checkpoint_pg.put_writes",
        "checkpoint_pg.get_tuple",
        "checkpoint_pg.list",
    ]
    assert all(r.levelno == logging.DEBUG for r in records)
    assert all(isinstance(r.duration_ms, float) for r in records)  # type: ignore[attr-defined]
    assert [r.rows for r in records] == [0, 0, 1, 1]  # type: ignore[attr-defined]
    said = _everything_said(records)
    assert SECRET_THREAD not in said
    assert SECRET_VALUE not in said


def test_a_failed_operation_logs_its_error_class_only(
    dsn: str, caplog: pytest.LogCaptureFixture
) -> None:
    with (
        psycopg.connect(dsn, autocommit=True) as conn,
        caplog.at_level(logging.DEBUG, logger="checkpoint_pg.sql"),
        pytest.raises(SchemaNotReadyError),
    ):
        PostgresSaver(conn, schema="never_set_up").get_tuple(config(SECRET_THREAD))
    (record,) = [r for r in caplog.records if r.name == "checkpoint_pg.sql"]
    assert record.error == "SchemaNotReadyError"  # type: ignore[attr-defined]
    assert SECRET_THREAD not in _everything_said([record])


def test_store_operations_log_on_the_store_logger_without_values(
    dsn: str, caplog: pytest.LogCaptureFixture
) -> None:
    password_dsn = dsn  # the DSN itself is never logged, with or without a password
    with psycopg.connect(password_dsn, autocommit=True) as conn:
        store = PostgresStore(conn)
        store.setup()
        with caplog.at_level(logging.DEBUG, logger="store.sql"):
            store.put(("users", SECRET_THREAD), "k", {"text": SECRET_VALUE})
            assert store.get(("users", SECRET_THREAD), "k") is not None
            store.search(("users",))
    records = [r for r in caplog.records if r.name == "store.sql"]
    assert [r.operation for r in records] == ["store.batch"] * 3  # type: ignore[attr-defined]
    said = _everything_said(records)
    assert SECRET_THREAD not in said
    assert SECRET_VALUE not in said
    assert password_dsn not in said


def test_nothing_is_logged_when_debug_is_off(dsn: str, caplog: pytest.LogCaptureFixture) -> None:
    with psycopg.connect(dsn, autocommit=True) as conn:
        saver = PostgresSaver(conn)
        with caplog.at_level(logging.INFO, logger="checkpoint_pg"):
            saver.setup()
            saver.put(config("t"), checkpoint({"a": 1}), {}, {})
    assert not [r for r in caplog.records if r.name == "checkpoint_pg.sql"]


# -- spans ---------------------------------------------------------------------------------------


def test_each_operation_is_one_client_span_with_minimal_attributes(
    dsn: str, spans: InMemorySpanExporter
) -> None:
    with psycopg.connect(dsn, autocommit=True) as conn:
        saver = PostgresSaver(conn)
        saver.setup()
        cfg = saver.put(config(SECRET_THREAD), checkpoint({"doc": [SECRET_VALUE]}), {}, {})
        saver.get_tuple(cfg)
    finished = spans.get_finished_spans()
    assert [s.name for s in finished] == [
        "checkpoint_pg.setup",
        "checkpoint_pg.put",
        "checkpoint_pg.get_tuple",
    ]
    for span in finished:
        attributes = dict(span.attributes or {})
        assert span.kind == SpanKind.CLIENT
        assert span.status.status_code == StatusCode.UNSET
        assert set(attributes) == SPAN_ATTRIBUTES | {"checkpoint_pg.rows"}
        assert attributes["db.system"] == "postgresql"
        assert attributes["db.operation"] == span.name.rsplit(".", 1)[1]
        assert SECRET_THREAD not in str(attributes)
        assert SECRET_VALUE not in str(attributes)
    assert dict(finished[2].attributes or {})["checkpoint_pg.rows"] == 1


def test_a_failed_operation_has_an_error_span_without_the_message(
    dsn: str, spans: InMemorySpanExporter
) -> None:
    with psycopg.connect(dsn, autocommit=True) as conn, pytest.raises(SchemaNotReadyError):
        PostgresSaver(conn, schema="never_set_up").get_tuple(config(SECRET_THREAD))
    (span,) = spans.get_finished_spans()
    assert span.status.status_code == StatusCode.ERROR
    assert span.status.description == "SchemaNotReadyError"
    assert dict(span.attributes or {})["error.type"] == "SchemaNotReadyError"
    assert not span.events  # no recorded exception: its message may quote values


async def test_async_operations_are_spans_inside_the_callers_span(
    dsn: str, spans: InMemorySpanExporter
) -> None:
    tracer = _observe._current_tracer()
    async with await psycopg.AsyncConnection.connect(dsn, autocommit=True) as conn:
        saver = AsyncPostgresSaver(conn)
        await saver.setup()
        with tracer.start_as_current_span("graph step") as parent:
            await saver.aput(config("t"), checkpoint({"a": 1}), {}, {})
    by_name = {s.name: s for s in spans.get_finished_spans()}
    put = by_name["checkpoint_pg.put"]
    assert put.parent is not None
    assert put.parent.span_id == parent.get_span_context().span_id


def test_store_batches_are_store_spans(dsn: str, spans: InMemorySpanExporter) -> None:
    with psycopg.connect(dsn, autocommit=True) as conn:
        store = PostgresStore(conn)
        store.setup()
        store.put(("a",), "k", {"v": 1})
    assert [s.name for s in spans.get_finished_spans()] == ["store.setup", "store.batch"]


def test_no_span_is_started_without_a_tracer_provider() -> None:
    # OpenTelemetry's default (proxy) provider: nothing would record the span.
    assert _observe._current_tracer() is None


def test_without_opentelemetry_installed_there_is_no_tracer(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(_observe, "_trace", None)
    assert _observe._current_tracer() is None


# -- pool statistics -----------------------------------------------------------------------------


def test_pool_stats_of_a_pooled_saver_has_every_documented_key(dsn: str) -> None:
    with ConnectionPool(dsn, min_size=1, max_size=3, open=False) as pool:
        saver = PostgresSaver(pool)
        saver.setup()
        saver.put(config("t"), checkpoint({"a": 1}), {}, {})
        stats = saver.pool_stats()
    assert stats is not None
    assert set(stats) == set(_observe.POOL_STAT_KEYS)
    assert all(isinstance(v, int) for v in stats.values())
    assert stats["pool_max"] == 3
    assert stats["requests_num"] >= 2


async def test_pool_stats_of_an_async_pooled_saver(dsn: str) -> None:
    async with AsyncConnectionPool(dsn, min_size=1, max_size=2, open=False) as pool:
        saver = AsyncPostgresSaver(pool)
        await saver.setup()
        stats = saver.pool_stats()
    assert stats is not None
    assert stats["pool_max"] == 2
    assert stats["requests_num"] >= 1


def test_pool_stats_is_none_on_a_single_connection(dsn: str) -> None:
    with psycopg.connect(dsn, autocommit=True) as conn:
        assert PostgresSaver(conn).pool_stats() is None
        assert PostgresStore(conn).pool_stats() is None


def test_the_store_reports_its_pool_too(dsn: str) -> None:
    with PostgresStore.from_conn_string(dsn, pool_config={}) as store:
        store.setup()
        stats = store.pool_stats()
    assert stats is not None
    assert stats["pool_max"] == 10  # pool_config without max_size: 10 connections at most


def test_pool_stats_is_none_on_from_conn_string_default_connection(dsn: str) -> None:
    with PostgresSaver.from_conn_string(dsn) as saver, PostgresStore.from_conn_string(dsn) as store:
        assert saver.pool_stats() is None
        assert store.pool_stats() is None


# -- cost ----------------------------------------------------------------------------------------


def test_with_no_logger_and_no_tracer_an_operation_is_not_observed(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """The success path then pays one level check and one tracer lookup, nothing more."""
    caplog.set_level(logging.INFO, logger="checkpoint_pg.sql")
    monkeypatch.setattr(_observe, "_current_tracer", lambda: None)
    assert _observe.begin(Operation(iter(()), name="checkpoint_pg.put")) is None


def test_with_debug_logging_an_operation_is_observed(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG, logger="checkpoint_pg.sql")
    monkeypatch.setattr(_observe, "_current_tracer", lambda: None)
    assert _observe.begin(Operation(iter(()), name="checkpoint_pg.put")) is not None
