"""Backends terminated with ``pg_terminate_backend`` before, during and after a write.

On what `from_conn_string` opens (by default one connection, which the saver or store replaces
when it is lost; or a pool, with ``pool_size=`` / ``pool_config=``) every operation must
succeed after recovery, nothing committed may be lost, and a graph resumes from its last
checkpoint. On a single connection handed over by the user, a lost connection cannot be
replaced: the error is `ConnectionLostError`, and the data committed before it is intact.
"""

from __future__ import annotations

import asyncio
import logging
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal

import psycopg
import pytest
from langchain_core.runnables import RunnableConfig
from langgraph.store.base import GetOp, PutOp

from checkpoint_pg import AsyncPostgresSaver, PostgresSaver
from checkpoint_pg._runtime.retry import RetryPolicy
from checkpoint_pg.errors import ConnectionLostError, ConnectionUnusableError
from store import AsyncPostgresStore, PostgresStore
from tests.support.faults import (
    CHECKPOINTS_BEFORE_D,
    FAST,
    Admin,
    TableLock,
    checkpoint,
    graph_builder,
    in_thread,
    named,
    new_app,
    thread_config,
)

Moment = Literal["before", "during", "after"]
MOMENTS: list[Moment] = ["before", "during", "after"]


@dataclass
class Subject:
    """One kind of write: how to do it (sync/async), check it, and which table it waits on."""

    name: str
    table: str
    prepare: Callable[[Any], Any]  # (saver/store) -> context, sync, done before the fault
    write: Callable[[Any, Any], Any]
    check: Callable[[Any, Any], None]


def _put_prepare(saver: Any) -> Any:
    return thread_config()


def _put_write(saver: Any, config: Any) -> Any:
    cp, versions = checkpoint(saver, [1, 2, 3])
    return saver.put(config, cp, {"source": "loop", "step": 1}, versions)


def _put_check(saver: Any, config: Any) -> None:
    got = saver.get_tuple(config)
    assert got is not None
    assert got.checkpoint["channel_values"] == {"x": [1, 2, 3]}


def _writes_prepare(saver: Any) -> Any:
    cp, versions = checkpoint(saver, "v")
    return saver.put(thread_config(), cp, {"source": "loop", "step": 1}, versions)


def _writes_write(saver: Any, config: Any) -> Any:
    return saver.put_writes(config, [("x", 1), ("y", "two")], task_id="task-1")


def _writes_check(saver: Any, config: Any) -> None:
    got = saver.get_tuple(config)
    assert got is not None
    assert [(w[1], w[2]) for w in got.pending_writes] == [("x", 1), ("y", "two")]


def _store_prepare(store: Any) -> Any:
    return ("faults", uuid.uuid4().hex)


def _store_write(store: Any, ns: Any) -> Any:
    return store.batch([PutOp(ns, f"k{i}", {"n": i}) for i in range(3)])


def _store_check(store: Any, ns: Any) -> None:
    got = store.batch([GetOp(ns, f"k{i}") for i in range(3)])
    assert [item.value for item in got] == [{"n": i} for i in range(3)]


SUBJECTS = {
    "put": Subject("put", "checkpoints", _put_prepare, _put_write, _put_check),
    "put_writes": Subject(
        "put_writes", "checkpoint_writes", _writes_prepare, _writes_write, _writes_check
    ),
    "store_batch": Subject("store_batch", "store", _store_prepare, _store_write, _store_check),
}


# What `from_conn_string` opens: its default single connection, or a pool.
KINDS = ["connection", "pool"]


def _pool_option(subject: str, kind: str) -> dict[str, Any]:
    if kind == "connection":
        return {}
    return {"pool_config": {"max_size": 2}} if subject == "store_batch" else {"pool_size": 2}


def _open_sync(subject: str, dsn: str, kind: str) -> Any:
    cls = PostgresStore if subject == "store_batch" else PostgresSaver
    return cls.from_conn_string(dsn, retry=RetryPolicy(**FAST), **_pool_option(subject, kind))


def _open_async(subject: str, dsn: str, kind: str) -> Any:
    cls = AsyncPostgresStore if subject == "store_batch" else AsyncPostgresSaver
    return cls.from_conn_string(dsn, retry=RetryPolicy(**FAST), **_pool_option(subject, kind))


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("moment", MOMENTS)
@pytest.mark.parametrize("subject", list(SUBJECTS))
def test_from_conn_string_recovers_sync(
    subject: str,
    moment: Moment,
    kind: str,
    dsn: str,
    admin: Admin,
    caplog: pytest.LogCaptureFixture,
) -> None:
    s = SUBJECTS[subject]
    app = new_app()
    caplog.set_level(logging.WARNING, "checkpoint_pg.retry")
    with _open_sync(subject, named(dsn, app), kind) as target:
        target.setup()
        ctx = s.prepare(target)
        if moment == "before":
            assert admin.terminate(app) >= 1
            s.write(target, ctx)
        elif moment == "during":
            lock = TableLock(dsn, s.table)
            try:
                join = in_thread(lambda: s.write(target, ctx))
                admin.kill(admin.wait_for_lock_wait(app))
                # The retry waits on the same lock until it goes.
                admin.wait_for_lock_wait(app)
            finally:
                lock.release()
            join(20)
        else:
            s.write(target, ctx)
            assert admin.terminate(app) >= 1
        s.check(target, ctx)
    retries = [r for r in caplog.records if r.name == "checkpoint_pg.retry"]
    # Killed before or during: one retry; killed after: the next operation retries once.
    assert len(retries) == 1, [r.getMessage() for r in retries]
    message = retries[0].getMessage()
    assert "SQLSTATE" in message
    assert "retry 1 of" in message
    assert "password" not in message


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("moment", MOMENTS)
@pytest.mark.parametrize("subject", ["put", "store_batch"])
async def test_from_conn_string_recovers_async(
    subject: str, moment: Moment, kind: str, dsn: str, admin: Admin
) -> None:
    s = SUBJECTS[subject]
    app = new_app()

    async def write(target: Any, ctx: Any) -> Any:
        if subject == "store_batch":
            return await target.abatch([PutOp(ctx, f"k{i}", {"n": i}) for i in range(3)])
        cp, versions = checkpoint(target, [1, 2, 3])
        return await target.aput(ctx, cp, {"source": "loop", "step": 1}, versions)

    async with _open_async(subject, named(dsn, app), kind) as target:
        await target.setup()
        ctx = thread_config() if subject == "put" else ("faults", uuid.uuid4().hex)
        if moment == "before":
            assert admin.terminate(app) >= 1
            await write(target, ctx)
        elif moment == "during":
            lock = TableLock(dsn, s.table)
            try:
                task = asyncio.create_task(write(target, ctx))
                admin.kill(await asyncio.to_thread(admin.wait_for_lock_wait, app))
                await asyncio.to_thread(admin.wait_for_lock_wait, app)
            finally:
                lock.release()
            await asyncio.wait_for(task, 20)
        else:
            await write(target, ctx)
            assert admin.terminate(app) >= 1
        if subject == "store_batch":
            got = await target.abatch([GetOp(ctx, f"k{i}") for i in range(3)])
            assert [item.value for item in got] == [{"n": i} for i in range(3)]
        else:
            got = await target.aget_tuple(ctx)
            assert got is not None
            assert got.checkpoint["channel_values"] == {"x": [1, 2, 3]}


def test_single_connection_loss_is_a_typed_error_and_nothing_committed_is_lost(
    dsn: str, admin: Admin
) -> None:
    app = new_app()
    config = thread_config()
    with psycopg.connect(named(dsn, app), autocommit=True) as conn:
        saver = PostgresSaver(conn)
        saver.setup()
        cp, versions = checkpoint(saver, "kept")
        stored = saver.put(config, cp, {"source": "loop", "step": 1}, versions)
        admin.terminate(app)
        cp2, versions2 = checkpoint(saver, "lost")
        with pytest.raises(ConnectionLostError) as info:
            saver.put(config, cp2, {"source": "loop", "step": 2}, versions2)
        message = str(info.value)
        assert "was lost" in message
        assert "pool" in message  # says what to do
        assert isinstance(info.value, psycopg.OperationalError)  # old except clauses still work
    with psycopg.connect(dsn, autocommit=True) as conn:
        got = PostgresSaver(conn).get_tuple(stored)
        assert got is not None
        assert got.checkpoint["channel_values"] == {"x": "kept"}


def _kill_in_node(admin: Admin, app: str, at: str) -> Callable[[str], None]:
    def hook(node: str) -> None:
        if node == at:
            assert admin.terminate(app) >= 1

    return hook


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("at", ["a", "c"])
def test_graph_run_survives_killed_backends_and_resumes(
    dsn: str, admin: Admin, at: str, kind: str
) -> None:
    """The saver's connections die inside a node; the run goes on and every checkpoint stays."""
    app = new_app()
    config: RunnableConfig = {"configurable": {"thread_id": uuid.uuid4().hex}}
    with _open_sync("put", named(dsn, app), kind) as saver:
        saver.setup()
        graph = graph_builder(_kill_in_node(admin, app, at)).compile(
            checkpointer=saver, interrupt_before=["d"]
        )
        graph.invoke({"steps": []}, config)
        assert len(list(saver.list(config))) == CHECKPOINTS_BEFORE_D
        assert graph.get_state(config).next == ("d",)
    # A new process resumes from the last checkpoint.
    with PostgresSaver.from_conn_string(dsn) as saver:
        graph = graph_builder().compile(checkpointer=saver, interrupt_before=["d"])
        assert graph.invoke(None, config) == {"steps": ["a", "b", "c", "d"]}
        assert len(list(saver.list(config))) == CHECKPOINTS_BEFORE_D + 1


def test_graph_on_single_connection_fails_typed_and_resumes_elsewhere(
    dsn: str, admin: Admin
) -> None:
    app = new_app()
    config: RunnableConfig = {"configurable": {"thread_id": uuid.uuid4().hex}}
    with psycopg.connect(named(dsn, app), autocommit=True) as conn:
        saver = PostgresSaver(conn)
        saver.setup()
        graph = graph_builder(_kill_in_node(admin, app, "c")).compile(
            checkpointer=saver, interrupt_before=["d"]
        )
        # durability="sync": each checkpoint is saved before the next step starts, so exactly
        # the input, start, a and b checkpoints were acknowledged when c kills the connection.
        # The first save to meet the dead connection raises ConnectionLostError; LangGraph may
        # surface a later call's refusal of the closed connection instead: the same family.
        with pytest.raises(ConnectionUnusableError):
            graph.invoke({"steps": []}, config, durability="sync")
    with PostgresSaver.from_conn_string(dsn) as saver:
        # The checkpoints committed before the loss (input, a, b) are all there …
        assert len(list(saver.list(config))) == CHECKPOINTS_BEFORE_D - 1
        graph = graph_builder().compile(checkpointer=saver, interrupt_before=["d"])
        assert graph.get_state(config).next == ("c",)
        # … and the run resumes from the last one: c runs again, then stops before d.
        graph.invoke(None, config)
        assert graph.get_state(config).next == ("d",)
        assert graph.invoke(None, config) == {"steps": ["a", "b", "c", "d"]}
