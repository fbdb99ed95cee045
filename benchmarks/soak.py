"""A bounded soak: many agent runs at once for minutes while their server connections are killed.

``python -m benchmarks.soak --minutes 5 --runs 64 [--dsn ...] [--json PATH]``

`--runs` coroutines each run the benchmark agent (`benchmarks.agent`, 25 super-steps) on a new
thread, again and again, through one `AsyncPostgresSaver` on a pool, until the time is up.
Meanwhile a killer terminates a random share of the saver's backends (``pg_terminate_backend``)
every few seconds. A run that fails resumes from its last checkpoint, as a production worker
would: it looks at the thread's state and calls ``ainvoke(None, config)`` (or starts over when
nothing was checkpointed yet). Whether the saver retries internally (``checkpoint_pg.retry``)
or not, the loop gets every run to its end; the report says how many failures reached it.

Checked, per finished run: every checkpoint the saver acknowledged is read back (zero lost);
the thread holds exactly the checkpoints and messages of an undisturbed run. A run that does
not finish within `--run-timeout` seconds is stuck. Client RSS is sampled every few seconds;
memory is flat when the last sample is within 10% + 8 MiB of the one taken after warm-up.

Without ``--dsn`` an embedded PostgreSQL 18 is started (and deleted); with it, a throwaway
database is created on that server. Not part of the test run: ``tests/benchmarks`` runs a
10-second smoke of it.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import random
import sys
import time
import uuid
from collections import Counter
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import psycopg
from langchain_core.runnables import RunnableConfig
from langgraph.checkpoint.base import ChannelVersions, Checkpoint, CheckpointMetadata
from langgraph.checkpoint.memory import InMemorySaver
from psycopg.conninfo import make_conninfo

from benchmarks.agent import agent_config, agent_input, build_agent
from checkpoint_pg import AsyncPostgresSaver
from checkpoint_pg._runtime.dsn import mask_dsn
from checkpoint_pg._runtime.retry import RetryPolicy

__all__ = ["SoakResult", "main", "soak"]

T = TypeVar("T")
_MIB = 1024


def rss_kib() -> int:
    """This process's resident set size in KiB (0 where /proc is missing)."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    except (OSError, ValueError, IndexError):
        pass
    return 0


@dataclass
class SoakResult:
    """What a soak saw. Counts are totals over the whole soak."""

    seconds: float
    runs: int
    pool_size: int
    server: str
    runs_finished: int = 0
    runs_stuck: int = 0
    runs_wrong: int = 0  # finished, but not with an undisturbed run's checkpoints and messages
    checkpoints_acknowledged: int = 0
    checkpoints_lost: int = 0
    checkpoint_rows: int = 0  # rows in `checkpoints` for the soak's threads at the end
    kill_events: int = 0
    backends_killed: int = 0
    failures_seen: dict[str, int] = field(default_factory=dict)  # reached the run loop, by type
    resumes: int = 0
    restarts: int = 0  # resumed with nothing checkpointed yet: started over
    saver_operations: int = 0
    saver_operations_failed: dict[str, int] = field(default_factory=dict)  # by method
    retry: bool = True  # whether the saver's own retry policy was on
    retries_logged: int = 0  # warnings from checkpoint_pg.retry (0 without a retry policy)
    pool_discards_logged: int = 0  # broken connections the pool threw away (psycopg.pool)
    rss_kib: list[tuple[float, int]] = field(default_factory=list)  # (seconds, KiB)
    elapsed: float = 0.0

    @property
    def rss_start_kib(self) -> int:
        """The first sample after warm-up (a fifth of the soak, at least one sample in)."""
        warm = [kib for t, kib in self.rss_kib if t >= self.seconds / 5]
        return warm[0] if warm else (self.rss_kib[-1][1] if self.rss_kib else 0)

    @property
    def rss_end_kib(self) -> int:
        return self.rss_kib[-1][1] if self.rss_kib else 0

    @property
    def rss_flat(self) -> bool:
        return self.rss_end_kib <= self.rss_start_kib * 1.10 + 8 * _MIB

    @property
    def passed(self) -> bool:
        return (
            self.checkpoints_lost == 0
            and self.runs_stuck == 0
            and self.runs_wrong == 0
            and self.runs_finished > 0
            and self.rss_flat
        )

    def as_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data.update(
            rss_start_kib=self.rss_start_kib,
            rss_end_kib=self.rss_end_kib,
            rss_flat=self.rss_flat,
            passed=self.passed,
        )
        return data

    def report(self) -> str:
        failures = sum(self.failures_seen.values())
        by_type = ", ".join(f"{k} {v}" for k, v in sorted(self.failures_seen.items())) or "-"
        by_op = ", ".join(f"{k} {v}" for k, v in sorted(self.saver_operations_failed.items()))
        rate = self.runs_finished / self.elapsed if self.elapsed else 0.0
        growth = self.rss_end_kib - self.rss_start_kib
        lines = [
            f"soak: {self.seconds:.0f} s, {self.runs} concurrent agent runs, pool of "
            f"{self.pool_size}, {self.server}",
            f"  runs finished      {self.runs_finished} ({rate:.1f}/s over {self.elapsed:.0f} s)"
            f"; stuck {self.runs_stuck}; wrong state {self.runs_wrong}",
            f"  checkpoints        {self.checkpoints_acknowledged} acknowledged, "
            f"{self.checkpoints_lost} lost; {self.checkpoint_rows} rows stored",
            f"  kills              {self.kill_events} events, {self.backends_killed} backends",
            f"  failures seen      {failures} by the run loop ({by_type})",
            f"  resumes            {self.resumes} (of which {self.restarts} started over)",
            f"  saver operations   {self.saver_operations}, failed visibly "
            f"{sum(self.saver_operations_failed.values())} ({by_op or '-'})",
            f"  retries logged     {self.retries_logged} (checkpoint_pg.retry; policy "
            f"{'on' if self.retry else 'off'}); pool discarded {self.pool_discards_logged} "
            "broken connections",
            f"  client RSS         {self.rss_start_kib / _MIB:.1f} MiB after warm-up -> "
            f"{self.rss_end_kib / _MIB:.1f} MiB at the end ({growth / _MIB:+.1f} MiB, "
            f"{'flat' if self.rss_flat else 'GROWING'}); max "
            f"{max((k for _, k in self.rss_kib), default=0) / _MIB:.1f} MiB",
            f"  verdict            {'PASS' if self.passed else 'FAIL'}",
        ]
        return "\n".join(lines)


class _CountingSaver(AsyncPostgresSaver):
    """The saver under test, counting its operations and the checkpoints it acknowledged."""

    operations: int
    failed: Counter[str]
    acked: dict[str, set[str]]  # thread -> acknowledged checkpoint ids (runs in flight only)

    def start_counting(self) -> None:
        self.operations = 0
        self.failed = Counter()
        self.acked = {}

    async def _count(self, name: str, call: Awaitable[T]) -> T:
        self.operations += 1
        try:
            return await call
        except Exception:
            self.failed[name] += 1
            raise

    async def aput(
        self,
        config: RunnableConfig,
        checkpoint: Checkpoint,
        metadata: CheckpointMetadata,
        new_versions: ChannelVersions,
    ) -> RunnableConfig:
        done = await self._count("aput", super().aput(config, checkpoint, metadata, new_versions))
        acked = self.acked.get(str(done["configurable"]["thread_id"]))
        if acked is not None:
            acked.add(str(done["configurable"]["checkpoint_id"]))
        return done

    async def aput_writes(
        self,
        config: RunnableConfig,
        writes: Sequence[tuple[str, Any]],
        task_id: str,
        task_path: str = "",
    ) -> None:
        await self._count("aput_writes", super().aput_writes(config, writes, task_id, task_path))

    async def aget_tuple(self, config: RunnableConfig) -> Any:
        return await self._count("aget_tuple", super().aget_tuple(config))


class _LogCounter(logging.Handler):
    """Counts the warnings of the loggers it is attached to, by logger, printing none."""

    def __init__(self) -> None:
        super().__init__(logging.WARNING)
        self.counts: Counter[str] = Counter()

    def emit(self, record: logging.LogRecord) -> None:
        self.counts[record.name] += 1


@dataclass
class _Reference:
    """What an undisturbed run leaves: its checkpoint count and its message count."""

    checkpoints: int
    messages: int


async def _reference() -> _Reference:
    saver = InMemorySaver()
    graph = build_agent(saver, asynchronous=True)
    config = agent_config("reference")
    final = await graph.ainvoke(agent_input(), config)
    history = [s async for s in graph.aget_state_history(config)]
    return _Reference(checkpoints=len(history), messages=len(final["messages"]))


def _messages(checkpoint: Checkpoint) -> int:
    return len(checkpoint["channel_values"].get("messages", []))


class _Soak:
    def __init__(
        self,
        dsn: str,
        *,
        seconds: float,
        runs: int,
        pool_size: int,
        kill_every: tuple[float, float],
        run_timeout: float,
        sample_every: float,
        seed: int | None,
        retry: bool,
    ) -> None:
        self.retry = retry
        self.tag = f"soak-{uuid.uuid4().hex[:8]}"
        self.dsn = make_conninfo(dsn, application_name=self.tag)
        self.admin_dsn = dsn
        self.seconds = seconds
        self.runs = runs
        self.pool_size = pool_size
        self.kill_every = kill_every
        self.run_timeout = run_timeout
        self.sample_every = sample_every
        self.random = random.Random(seed)
        self.failures: Counter[str] = Counter()
        self.result = SoakResult(
            seconds=seconds, runs=runs, pool_size=pool_size, server="", retry=retry
        )
        self.start = 0.0
        self.deadline = 0.0

    # -- the run loop ------------------------------------------------------------------------

    async def worker(self, saver: _CountingSaver, graph: Any, ref: _Reference, w: int) -> None:
        n = 0
        while time.monotonic() < self.deadline:
            await self.run_one(saver, graph, ref, f"{self.tag}-{w}-{n}")
            n += 1

    async def run_one(
        self, saver: _CountingSaver, graph: Any, ref: _Reference, thread: str
    ) -> None:
        config = agent_config(thread)
        saver.acked[thread] = set()
        started = time.monotonic()
        payload: dict[str, Any] | None = agent_input()
        check_first = False
        try:
            while True:
                left = self.run_timeout - (time.monotonic() - started)
                if left <= 0:
                    self.result.runs_stuck += 1
                    return
                try:
                    if check_first:
                        # The thread's latest checkpoint itself (the graph's state would
                        # include pending writes, and look finished one checkpoint early).
                        latest = await asyncio.wait_for(saver.aget_tuple(config), left)
                        if latest is None:  # nothing checkpointed yet
                            payload = agent_input()
                            self.result.restarts += 1
                        elif _messages(latest.checkpoint) == ref.messages:
                            break  # the fault came after the last checkpoint
                        else:
                            payload = None
                        check_first = False
                    await asyncio.wait_for(graph.ainvoke(payload, config), left)
                    break
                except Exception as exc:  # anything that reaches a production worker's loop
                    self.failures[type(exc).__name__] += 1
                    self.result.resumes += 1
                    check_first = True
                    await asyncio.sleep(self.random.uniform(0.01, 0.1))
            await self.verify(graph, ref, config, saver.acked[thread])
        finally:
            saver.acked.pop(thread, None)

    async def verify(
        self, graph: Any, ref: _Reference, config: RunnableConfig, acked: set[str]
    ) -> None:
        """Read the finished thread back (retrying reads the killer interrupts)."""

        async def read() -> tuple[int, set[str]]:
            state = await graph.aget_state(config)
            ids = {
                s.config["configurable"]["checkpoint_id"]
                async for s in graph.aget_state_history(config)
            }
            return len(state.values.get("messages", [])), ids

        messages, stored = await self.retrying(read)
        self.result.runs_finished += 1
        self.result.checkpoints_acknowledged += len(acked)
        self.result.checkpoints_lost += len(acked - stored)
        if len(stored) != ref.checkpoints or messages != ref.messages:
            self.result.runs_wrong += 1

    async def retrying(self, call: Callable[[], Awaitable[T]]) -> T:
        for _ in range(100):
            try:
                return await call()
            except Exception as exc:
                self.failures[type(exc).__name__] += 1
                await asyncio.sleep(self.random.uniform(0.01, 0.1))
        return await call()

    # -- the killer and the sampler --------------------------------------------------------

    async def killer(self) -> None:
        async with await psycopg.AsyncConnection.connect(self.admin_dsn, autocommit=True) as conn:
            while True:
                await asyncio.sleep(self.random.uniform(*self.kill_every))
                if time.monotonic() >= self.deadline:
                    return
                cur = await conn.execute(
                    "SELECT pid FROM pg_stat_activity WHERE application_name = %s", (self.tag,)
                )
                pids = [int(r[0]) for r in await cur.fetchall()]
                self.result.kill_events += 1
                if not pids:
                    continue
                victims = self.random.sample(pids, self.random.randint(1, len(pids)))
                cur = await conn.execute(
                    "SELECT count(*) FILTER (WHERE pg_terminate_backend(pid))"
                    " FROM unnest(%s::int[]) AS pid",
                    (victims,),
                )
                row = await cur.fetchone()
                self.result.backends_killed += int(row[0]) if row else 0

    async def sampler(self) -> None:
        while True:
            self.result.rss_kib.append((round(time.monotonic() - self.start, 1), rss_kib()))
            await asyncio.sleep(self.sample_every)

    # -- the whole soak ------------------------------------------------------------------------

    async def run(self) -> SoakResult:
        ref = await _reference()
        async with await psycopg.AsyncConnection.connect(self.admin_dsn) as conn:
            cur = await conn.execute("SHOW server_version")
            row = await cur.fetchone()
            self.result.server = f"PostgreSQL {row[0] if row else '?'} ({mask_dsn(self.admin_dsn)})"
        counter = _LogCounter()
        loggers = [logging.getLogger(name) for name in ("checkpoint_pg", "psycopg.pool")]
        propagate = [log.propagate for log in loggers]
        for log in loggers:  # counted, not printed many times a second
            log.addHandler(counter)
            log.propagate = False
        policy = None if self.retry else RetryPolicy.never()
        try:
            async with _CountingSaver.from_conn_string(
                self.dsn, pool_size=self.pool_size, retry=policy
            ) as saver:
                assert isinstance(saver, _CountingSaver)
                saver.start_counting()
                await saver.setup()
                graph = build_agent(saver, asynchronous=True)
                self.start = time.monotonic()
                self.deadline = self.start + self.seconds
                helpers = [asyncio.ensure_future(self.sampler())]
                killer = asyncio.ensure_future(self.killer())
                try:
                    await asyncio.gather(
                        *(self.worker(saver, graph, ref, w) for w in range(self.runs)), killer
                    )
                finally:
                    for task in (*helpers, killer):
                        task.cancel()
                    await asyncio.gather(*helpers, killer, return_exceptions=True)
                self.result.rss_kib.append((round(time.monotonic() - self.start, 1), rss_kib()))
                self.result.elapsed = time.monotonic() - self.start
                self.result.saver_operations = saver.operations
                self.result.saver_operations_failed = dict(saver.failed)
        finally:
            for log, was in zip(loggers, propagate, strict=True):
                log.removeHandler(counter)
                log.propagate = was
        async with await psycopg.AsyncConnection.connect(self.admin_dsn) as conn:
            cur = await conn.execute(
                "SELECT count(*) FROM checkpoints WHERE thread_id LIKE %s", (f"{self.tag}-%",)
            )
            row = await cur.fetchone()
            self.result.checkpoint_rows = int(row[0]) if row else 0
        self.result.failures_seen = dict(self.failures)
        counts = counter.counts
        self.result.retries_logged = sum(
            v for k, v in counts.items() if k.startswith("checkpoint_pg.retry")
        )
        self.result.pool_discards_logged = sum(
            v for k, v in counts.items() if k.startswith("psycopg.pool")
        )
        return self.result


async def soak(
    dsn: str,
    *,
    seconds: float,
    runs: int = 64,
    pool_size: int = 16,
    kill_every: tuple[float, float] = (1.0, 5.0),
    run_timeout: float = 120.0,
    sample_every: float = 5.0,
    seed: int | None = None,
    retry: bool = True,
) -> SoakResult:
    """Soak the database `dsn` (tables are created there); see the module's docstring."""
    return await _Soak(
        dsn,
        seconds=seconds,
        runs=runs,
        pool_size=pool_size,
        kill_every=kill_every,
        run_timeout=run_timeout,
        sample_every=sample_every,
        seed=seed,
        retry=retry,
    ).run()


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.soak", description=__doc__)
    parser.add_argument("--minutes", type=float, default=5.0)
    parser.add_argument("--runs", type=int, default=64, help="concurrent agent runs")
    parser.add_argument("--pool-size", type=int, default=16)
    parser.add_argument("--dsn", help="a server to soak on (default: an embedded PostgreSQL 18)")
    parser.add_argument(
        "--kill-every",
        type=float,
        nargs=2,
        default=(1.0, 5.0),
        metavar=("MIN", "MAX"),
        help="seconds between kills, drawn uniformly (default 1 5)",
    )
    parser.add_argument("--run-timeout", type=float, default=120.0)
    parser.add_argument("--sample-every", type=float, default=5.0, help="RSS sampling period")
    parser.add_argument("--seed", type=int)
    parser.add_argument(
        "--no-retry",
        action="store_true",
        help="turn the saver's retry policy off: every fault reaches the run loop",
    )
    parser.add_argument(
        "--json", metavar="PATH", help="also write the result as JSON (- for stdout)"
    )
    args = parser.parse_args(argv)

    from benchmarks.runner import server_databases

    with server_databases(args.dsn) as (databases, _admin):
        dsn = databases.create()
        try:
            result = asyncio.run(
                soak(
                    dsn,
                    seconds=args.minutes * 60,
                    runs=args.runs,
                    pool_size=args.pool_size,
                    kill_every=(args.kill_every[0], args.kill_every[1]),
                    run_timeout=args.run_timeout,
                    sample_every=args.sample_every,
                    seed=args.seed,
                    retry=not args.no_retry,
                )
            )
        finally:
            databases.drop(dsn)
    print(result.report())
    if args.json:
        text = json.dumps(result.as_dict(), indent=2)
        if args.json == "-":
            print(text)
        else:
            Path(args.json).write_text(text + "\n")
    return 0 if result.passed else 1


if __name__ == "__main__":
    sys.exit(main())
