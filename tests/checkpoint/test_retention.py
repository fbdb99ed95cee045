"""Retention: idle threads and keep_latest=N, in batches, with concurrent sweepers and puts."""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timedelta, timezone
from typing import Any

import psycopg
import pytest
from psycopg_pool import ConnectionPool

from checkpoint_pg import (
    AsyncPostgresSaver,
    InvalidRetentionPolicyError,
    PostgresSaver,
    RetentionPolicy,
    RetentionReport,
)
from checkpoint_pg._retention import BatchResult, RetentionRun
from checkpoint_pg._runtime.protocol import Operation, Steps
from checkpoint_pg._sql import retention_statements_for
from tests.checkpoint.helpers import checkpoint, config, count_rows
from tests.checkpoint.plans import explain_nodes, scans
from tests.checkpoint.test_graphs import (
    TURNS,
    Flavour,
    Runner,
    delta_graph,
    expected_log,
    open_runner,
    pipeline,
    root,
    run_delta_turns,
    thread,
)
from tests.checkpoint.test_threads import (  # noqa: F401
    big_db,
    other_schema,
    rows_sorted,
)

OLD = datetime.now(timezone.utc) - timedelta(days=30)
IDLE = RetentionPolicy(idle_for=timedelta(days=1))


def put(
    saver: PostgresSaver,
    thread_id: str,
    *,
    ns: str = "",
    ts: datetime | None = None,
    blob: Any = None,
    new_blob: bool = True,
) -> str:
    """Store one checkpoint after the thread's latest in `ns`; returns its id.

    With `blob`, the checkpoint holds it in channel ``doc`` (a blob row, version "1");
    `new_blob=False` refers to that version without storing it again (as an unchanged channel).
    """
    values: dict[str, Any] = {"n": 1} if blob is None else {"doc": blob}
    cp = checkpoint(values)
    if ts is not None:
        cp["ts"] = ts.isoformat()
    latest = saver.get_tuple(config(thread_id, ns))
    parent_id = latest.config["configurable"]["checkpoint_id"] if latest else None
    new_versions = cp["channel_versions"] if new_blob else {}
    saved = saver.put(config(thread_id, ns, parent_id), cp, {"source": "loop"}, new_versions)
    return str(saved["configurable"]["checkpoint_id"])


def checkpoint_ids(dsn: str, thread_id: str, ns: str = "") -> list[str]:
    with psycopg.connect(dsn) as conn:
        rows = conn.execute(
            "SELECT checkpoint_id FROM checkpoints WHERE thread_id = %s AND checkpoint_ns = %s"
            " ORDER BY checkpoint_id DESC",
            (thread_id, ns),
        ).fetchall()
    return [r[0] for r in rows]


def threads_left(dsn: str) -> set[str]:
    with psycopg.connect(dsn) as conn:
        return {r[0] for r in conn.execute("SELECT DISTINCT thread_id FROM checkpoints")}


# -- idle threads --------------------------------------------------------------------------------


def test_idle_threads_go_whole_and_active_ones_stay(sync_saver: PostgresSaver, dsn: str) -> None:
    put(sync_saver, "old", ts=OLD, blob=["payload"])
    put(sync_saver, "old", ts=OLD, ns="child:1")
    sync_saver.put_writes(config("old", "", checkpoint_ids(dsn, "old")[0]), [("ch", 1)], "t")
    put(sync_saver, "new")
    put(sync_saver, "revived", ts=OLD)
    put(sync_saver, "revived")
    put(sync_saver, "busy-subgraph", ts=OLD)
    put(sync_saver, "busy-subgraph", ns="child:1")
    put(sync_saver, "undated", ts=OLD)
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute(
            'UPDATE checkpoints SET checkpoint = checkpoint || \'{"ts": "?"}\''
            " WHERE thread_id = 'undated'"
        )

    report = sync_saver.apply_retention(IDLE)

    assert threads_left(dsn) == {"new", "revived", "busy-subgraph", "undated"}
    assert report.threads_deleted == 1
    assert report.checkpoints_deleted == 2
    assert report.blobs_deleted == 1
    assert report.writes_deleted == 1
    assert report.threads_examined == 5
    assert count_rows(dsn, "checkpoint_blobs", "old") == 0
    assert count_rows(dsn, "checkpoint_writes", "old") == 0
    assert len(checkpoint_ids(dsn, "revived")) == 2
    # nothing is left to do
    assert sync_saver.apply_retention(IDLE).threads_deleted == 0


def test_batches_cover_every_thread_and_report_progress(
    sync_saver: PostgresSaver, dsn: str
) -> None:
    for i in range(23):
        put(sync_saver, f"t{i:02d}", ts=OLD if i % 2 else None)
    seen: list[int] = []

    report = sync_saver.apply_retention(
        RetentionPolicy(idle_for=timedelta(hours=1), batch_size=5), progress=seen.append
    )

    assert seen == [5, 10, 15, 20, 23]
    assert report.batches == 5
    assert report.threads_examined == 23
    assert report.threads_deleted == 11
    assert threads_left(dsn) == {f"t{i:02d}" for i in range(0, 23, 2)}
    assert report.elapsed_s > 0
    assert report.to_dict()["threads_deleted"] == 11


# -- keep_latest=N -----------------------------------------------------------------------------


def test_keep_latest_keeps_exactly_the_newest_n_of_each_namespace(
    sync_saver: PostgresSaver, dsn: str
) -> None:
    root_ids = [put(sync_saver, "t") for _ in range(10)]
    sub_ids = [put(sync_saver, "t", ns="sub") for _ in range(5)]
    short = [put(sync_saver, "short") for _ in range(2)]

    report = sync_saver.apply_retention(RetentionPolicy(keep_latest=3))

    assert checkpoint_ids(dsn, "t") == root_ids[::-1][:3]
    assert checkpoint_ids(dsn, "t", "sub") == sub_ids[::-1][:3]
    assert checkpoint_ids(dsn, "short") == short[::-1]
    assert report.checkpoints_deleted == 7 + 2
    assert report.threads_pruned == 1
    assert report.threads_deleted == 0
    # the oldest kept checkpoint no longer points at a deleted parent
    oldest = sync_saver.get_tuple(config("t", "", root_ids[-3]))
    assert oldest is not None
    assert oldest.parent_config is None
    again = sync_saver.apply_retention(RetentionPolicy(keep_latest=3))
    assert again.checkpoints_deleted == 0


def test_idle_and_keep_latest_together(sync_saver: PostgresSaver, dsn: str) -> None:
    put(sync_saver, "old", ts=OLD)
    put(sync_saver, "old", ts=OLD)
    for _ in range(4):
        put(sync_saver, "active")

    report = sync_saver.apply_retention(RetentionPolicy(idle_for=timedelta(hours=1), keep_latest=2))

    assert threads_left(dsn) == {"active"}
    assert len(checkpoint_ids(dsn, "active")) == 2
    assert (report.threads_deleted, report.threads_pruned) == (1, 1)
    assert report.checkpoints_deleted == 4


@pytest.fixture(params=["sync", "async"])
async def runner(request: pytest.FixtureRequest, dsn: str) -> Any:
    flavour: Flavour = request.param
    async with open_runner(flavour, dsn) as r:
        yield r


async def apply(runner: Runner, policy: RetentionPolicy) -> RetentionReport:
    if isinstance(runner.saver, PostgresSaver):
        return runner.saver.apply_retention(policy)
    return await runner.saver.aapply_retention(policy)


async def test_a_graph_resumes_and_reads_its_kept_history(runner: Runner) -> None:
    graph = runner.compile(pipeline("a", "b", "c"))
    for turn in range(3):
        await runner.invoke(graph, {"log": [f"in{turn}"]}, thread("g"))
    before = await runner.history(graph, thread("g"))

    await apply(runner, RetentionPolicy(keep_latest=3))

    after = await runner.history(graph, thread("g"))
    assert [s.values for s in after] == [s.values for s in before[:3]]
    result = await runner.invoke(graph, {"log": ["in3"]}, thread("g"))
    assert result["log"][-4:] == ["in3", "a", "b", "c"]
    assert len(result["log"]) == 16


async def test_keep_latest_keeps_every_kept_checkpoints_delta_channel_state(
    runner: Runner,
) -> None:
    graph = runner.compile(delta_graph())
    await run_delta_turns(runner, graph, "delta")
    before = await runner.history(graph, thread("delta"))

    report = await apply(runner, RetentionPolicy(keep_latest=4))

    assert report.checkpoints_deleted > 0
    after = await runner.history(graph, thread("delta"))
    # the four kept checkpoints rebuild the same DeltaChannel state as before
    kept_ids = [
        t.config["configurable"]["checkpoint_id"] for t in await runner.checkpoints(root("delta"))
    ]
    by_id = {s.config["configurable"]["checkpoint_id"]: s.values for s in before}
    newest_four = [s.config["configurable"]["checkpoint_id"] for s in before[:4]]
    assert set(newest_four) <= set(kept_ids)
    assert {s.config["configurable"]["checkpoint_id"]: s.values for s in after[:4]} == {
        i: by_id[i] for i in newest_four
    }
    async with runner.reopen() as restarted:
        g2 = restarted.compile(delta_graph())
        result = await restarted.invoke(g2, {"log": [f"user:{TURNS}"]}, thread("delta"))
    assert result == {"log": expected_log(TURNS + 1)}


# -- concurrency ---------------------------------------------------------------------------------


def test_two_sweepers_delete_each_thread_once(sync_saver: PostgresSaver, dsn: str) -> None:
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute(
            """INSERT INTO checkpoints
                   (thread_id, checkpoint_ns, checkpoint_id, checkpoint, metadata)
               SELECT 't' || lpad(t::text, 4, '0'), '', lpad(i::text, 4, '0'),
                      jsonb_build_object('v', 4, 'ts', '2020-01-01T00:00:00+00:00',
                                         'channel_versions', '{}'::jsonb), '{}'
               FROM generate_series(1, 300) AS t, generate_series(1, 3) AS i"""
        )
    policy = RetentionPolicy(idle_for=timedelta(days=1), batch_size=7)
    start = threading.Barrier(2)

    def sweep(_: int) -> RetentionReport:
        with PostgresSaver.from_conn_string(dsn, pool_size=2) as saver:
            start.wait()
            return saver.apply_retention(policy)

    with ThreadPoolExecutor(2) as pool:
        reports = list(pool.map(sweep, range(2)))

    assert threads_left(dsn) == set()
    assert sum(r.threads_deleted for r in reports) == 300
    assert sum(r.checkpoints_deleted for r in reports) == 900


def test_a_thread_another_sweeper_holds_is_skipped_not_waited_for(
    sync_saver: PostgresSaver, dsn: str
) -> None:
    put(sync_saver, "held", ts=OLD)
    put(sync_saver, "free", ts=OLD)
    with psycopg.connect(dsn) as other:
        other.execute(
            "SELECT pg_advisory_xact_lock(hashtextextended(%s, 0))",
            ("checkpoint_pg.retention::held",),
        )
        report = sync_saver.apply_retention(IDLE)
        other.rollback()

    assert threads_left(dsn) == {"held"}
    assert (report.threads_deleted, report.threads_skipped) == (1, 1)


def interleaved(op: Operation[BatchResult], after_step: int, action: Callable[[], object]) -> Any:
    """`op`, running `action` (on another connection) once step `after_step` was answered."""

    def steps() -> Steps[BatchResult]:
        inner = op.steps
        step = next(inner)
        answered = 0
        while True:
            rows = yield step
            answered += 1
            if answered == after_step:
                action()
            try:
                step = inner.send(rows)
            except StopIteration as done:
                return done.value  # type: ignore[no-any-return]

    return Operation(steps(), transactional=True, writes=True)


def citus_extra_steps(saver: PostgresSaver) -> int:
    """Steps a batch's pick takes beyond one on Citus: the candidates, then the locks."""
    return 2 if saver._citus else 0


@pytest.fixture
def other_saver(dsn: str) -> Iterator[PostgresSaver]:
    with psycopg.connect(dsn, autocommit=True) as conn:
        yield PostgresSaver(conn)


@pytest.mark.parametrize(
    ("after_step", "where"), [(1, "after the pick"), (2, "while the delete is uncommitted")]
)
def test_a_put_racing_the_sweeper_survives_with_what_it_refers_to(
    sync_saver: PostgresSaver, other_saver: PostgresSaver, dsn: str, after_step: int, where: str
) -> None:
    put(sync_saver, "t", ts=OLD, blob=["kept value"])
    put(sync_saver, "idle", ts=OLD)
    run = RetentionRun(None, IDLE, on_citus=sync_saver._on_citus)
    op = run.next_operation()
    assert op is not None
    # a new checkpoint on "t" that refers to the old blob (its channel did not change)
    racing = interleaved(
        op,
        # On Citus the batch takes more steps: the candidates, the pick, the locks, then each
        # idle thread's delete and verify in turn ("idle" first, then "t").
        {1: 3, 2: 6}[after_step] if sync_saver._citus else after_step,
        lambda: put(other_saver, "t", blob=["kept value"], new_blob=False),
    )

    run.record(sync_saver._run(racing))
    report = run.finish()

    assert threads_left(dsn) == {"t"}, where
    assert report.threads_deleted == 1
    # after the delete, only the verifying step can see the put: it undoes the deletion
    assert report.threads_skipped == (1 if after_step == 2 else 0)
    assert len(checkpoint_ids(dsn, "t")) == 2
    latest = sync_saver.get_tuple(config("t"))
    assert latest is not None
    assert latest.checkpoint["channel_values"]["doc"] == ["kept value"]


def test_keep_latest_racing_a_put_keeps_the_new_checkpoint(
    sync_saver: PostgresSaver, other_saver: PostgresSaver, dsn: str
) -> None:
    ids = [put(sync_saver, "t", blob=["v"]) for _ in range(4)]
    run = RetentionRun(None, RetentionPolicy(keep_latest=1), on_citus=sync_saver._on_citus)
    op = run.next_operation()
    assert op is not None
    new: list[str] = []
    racing = interleaved(
        op,
        2 + citus_extra_steps(sync_saver),
        lambda: new.append(put(other_saver, "t", blob=["v"], new_blob=False)),
    )

    run.record(sync_saver._run(racing))

    assert checkpoint_ids(dsn, "t") == [new[0], ids[-1]]
    latest = sync_saver.get_tuple(config("t"))
    assert latest is not None
    assert latest.checkpoint["channel_values"]["doc"] == ["v"]


# -- sweepers ------------------------------------------------------------------------------------


def wait_for(condition: Callable[[], bool], timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.02)


def test_the_sync_sweeper_runs_until_stopped(dsn: str) -> None:
    with PostgresSaver.from_conn_string(dsn) as saver:
        saver.setup()
        put(saver, "old", ts=OLD)
        future = saver.start_retention_sweeper(IDLE, interval=0.05)
        wait_for(lambda: threads_left(dsn) == set())
        put(saver, "old2", ts=OLD)
        wait_for(lambda: threads_left(dsn) == set())
        # a second start while running keeps the running one
        saver.start_retention_sweeper(IDLE, interval=timedelta(seconds=0.05))

        assert saver.stop_retention_sweeper(timeout=5)
        assert future.result(timeout=5) is None
        put(saver, "old3", ts=OLD)
        time.sleep(0.2)
        assert threads_left(dsn) == {"old3"}
        assert saver.stop_retention_sweeper()


def test_cancelling_the_sync_sweepers_future_stops_it(dsn: str) -> None:
    with PostgresSaver.from_conn_string(dsn) as saver:
        saver.setup()
        future = saver.start_retention_sweeper(IDLE, interval=0.05)
        future.cancel()
        assert saver._retention_sweeper is not None
        thread = saver._retention_sweeper.thread
        assert thread is not None
        thread.join(5)
        assert not thread.is_alive()


def test_a_failing_sweep_is_logged_and_the_sweeper_goes_on(
    dsn: str,
    other_schema: str,  # noqa: F811
    caplog: pytest.LogCaptureFixture,
) -> None:
    # no setup() in that schema yet: the sweeps fail
    with PostgresSaver.from_conn_string(dsn, schema=other_schema) as saver:
        saver.start_retention_sweeper(IDLE, interval=0.05)
        wait_for(lambda: "retention sweep failed" in caplog.text)
        saver.setup()
        put(saver, "old", ts=OLD)
        wait_for(lambda: saver.list_threads().threads == [])
        assert saver.stop_retention_sweeper(timeout=5)


async def test_the_async_sweeper_runs_until_stopped(dsn: str) -> None:
    with psycopg.connect(dsn, autocommit=True) as conn:
        sync = PostgresSaver(conn)
        sync.setup()
        put(sync, "old", ts=OLD)
        put(sync, "new")
    async with AsyncPostgresSaver.from_conn_string(dsn) as saver:
        task = await saver.start_retention_sweeper(IDLE, interval=0.05)
        assert await saver.start_retention_sweeper(IDLE, interval=1) is task
        deadline = time.monotonic() + 10
        while await asyncio.to_thread(threads_left, dsn) != {"new"}:
            assert time.monotonic() < deadline
            await asyncio.sleep(0.02)
        assert await saver.stop_retention_sweeper(timeout=5)
        assert task.done()
        assert await saver.stop_retention_sweeper()


async def test_the_async_saver_applies_retention_and_its_blocking_twin_works(dsn: str) -> None:
    with psycopg.connect(dsn, autocommit=True) as conn:
        sync = PostgresSaver(conn)
        sync.setup()
        for _ in range(3):
            put(sync, "a")
        put(sync, "old", ts=OLD)
    async with AsyncPostgresSaver.from_conn_string(dsn) as saver:
        seen: list[int] = []
        report = await saver.aapply_retention(RetentionPolicy(keep_latest=1), seen.append)
        assert (report.checkpoints_deleted, seen) == (2, [2])
        blocking = await asyncio.to_thread(saver.apply_retention, IDLE)
        assert blocking.threads_deleted == 1
    assert threads_left(dsn) == {"a"}


def test_a_saver_with_a_schema_sweeps_its_own_tables(
    dsn: str,
    other_schema: str,  # noqa: F811
) -> None:
    with psycopg.connect(dsn, autocommit=True) as conn:
        plain, other = PostgresSaver(conn), PostgresSaver(conn, schema=other_schema)
        plain.setup()
        other.setup()
        put(plain, "mine", ts=OLD)
        put(other, "theirs", ts=OLD)
        for _ in range(3):
            put(other, "busy")

        report = other.apply_retention(RetentionPolicy(idle_for=timedelta(hours=1), keep_latest=1))

        assert (report.threads_deleted, report.checkpoints_deleted) == (1, 3)
        assert [t.thread_id for t in other.list_threads()] == ["busy"]
        assert [t.thread_id for t in plain.list_threads()] == ["mine"]


def test_the_sweeper_with_a_pool_of_one_connection(dsn: str) -> None:
    with ConnectionPool(dsn, min_size=1, max_size=1, kwargs={"autocommit": True}) as pool:
        saver = PostgresSaver(pool)
        saver.setup()
        put(saver, "old", ts=OLD)
        saver.start_retention_sweeper(IDLE, 0.05)
        wait_for(lambda: threads_left(dsn) == set())
        assert saver.stop_retention_sweeper(5)


# -- bad input -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "kwargs",
    [
        {},
        {"keep_latest": 0},
        {"keep_latest": -3},
        {"keep_latest": "2"},
        {"keep_latest": True},
        {"keep_latest": 1.5},
        {"idle_for": -1},
        {"idle_for": timedelta(0)},
        {"idle_for": "7d"},
        {"idle_for": float("inf")},
        {"keep_latest": 1, "batch_size": 0},
        {"keep_latest": 1, "batch_size": 1001},
        {"keep_latest": 1, "batch_size": "10"},
    ],
)
def test_a_bad_policy_is_refused(kwargs: dict[str, Any]) -> None:
    with pytest.raises(InvalidRetentionPolicyError):
        RetentionPolicy(**kwargs)


def test_a_policy_takes_seconds_for_idle_for() -> None:
    assert RetentionPolicy(idle_for=90).idle_for == timedelta(seconds=90)  # type: ignore[arg-type]
    assert RetentionPolicy(idle_for=90).to_dict() == {  # type: ignore[arg-type]
        "idle_for_s": 90.0,
        "keep_latest": None,
        "batch_size": 100,
    }


@pytest.mark.parametrize("interval", [0, -1, timedelta(0), "5m", None, float("nan")])
def test_a_bad_sweeper_interval_is_refused(sync_saver: PostgresSaver, interval: Any) -> None:
    with pytest.raises(InvalidRetentionPolicyError, match="interval"):
        sync_saver.start_retention_sweeper(IDLE, interval)
    assert sync_saver._retention_sweeper is None


def test_bad_arguments_to_apply_retention_are_refused(sync_saver: PostgresSaver) -> None:
    with pytest.raises(InvalidRetentionPolicyError, match="RetentionPolicy"):
        sync_saver.apply_retention({"keep_latest": 1})  # type: ignore[arg-type]
    with pytest.raises(InvalidRetentionPolicyError, match="progress"):
        sync_saver.apply_retention(IDLE, progress=5)  # type: ignore[arg-type]
    with pytest.raises(InvalidRetentionPolicyError, match="RetentionPolicy"):
        sync_saver.start_retention_sweeper("idle", 5)  # type: ignore[arg-type]


async def test_bad_arguments_to_the_async_sweeper_are_refused(dsn: str) -> None:
    async with AsyncPostgresSaver.from_conn_string(dsn) as saver:
        with pytest.raises(InvalidRetentionPolicyError, match="interval"):
            await saver.start_retention_sweeper(IDLE, 0)
        with pytest.raises(InvalidRetentionPolicyError, match="RetentionPolicy"):
            await saver.aapply_retention(None)  # type: ignore[arg-type]


# -- plan shapes ---------------------------------------------------------------------------------


def test_a_batch_picks_its_threads_by_index_probes(
    big_db: psycopg.Connection[Any],  # noqa: F811
) -> None:
    sql = retention_statements_for(None)
    params = {
        "after": "th0100",
        "scan": 100,
        "idle_for": timedelta(days=1),
        "keep": 10,
        "lock_prefix": "plan-test:",
    }
    with big_db.transaction(force_rollback=True):
        nodes = explain_nodes(big_db, sql.pick_after, params)
    assert not [s for s in scans(nodes) if s[0] == "Seq Scan"]
    # each thread's head: a backward probe of the primary key ("Index Scan Backward" before
    # PostgreSQL 18, which names the direction apart)
    assert {("Index Scan", "checkpoints_pkey"), ("Index Scan Backward", "checkpoints_pkey")} & (
        scans(nodes)
    )
    assert rows_sorted(nodes) <= 100
    # 100 threads, each a handful of index probes (skip scan, head, keep+1 entries, subgraph
    # namespaces): ~21 blocks a thread, whatever the table's size
    assert nodes[0]["Shared Hit Blocks"] + nodes[0].get("Shared Read Blocks", 0) < 3000


def test_deleting_idle_threads_reads_only_their_rows(
    big_db: psycopg.Connection[Any],  # noqa: F811
) -> None:
    sql = retention_statements_for(None)
    params = {"threads": ["th0101", "th0102"], "idle_for": timedelta(days=1)}
    with big_db.transaction(force_rollback=True):
        nodes = explain_nodes(big_db, sql.delete_idle, params)
        verify = explain_nodes(big_db, sql.verify, {"threads": ["th0101", "th0102"]})
    assert not [s for s in scans(nodes) | scans(verify) if s[0] == "Seq Scan"]
    assert sum(n["Actual Rows"] for n in nodes if n["Node Type"] == "ModifyTable") == 300
