"""Agent-level concurrency: N agent runs at once (`ainvoke`), each on its own thread, through an
async saver on a pool of 10, over loopback and through a proxy that adds ~1 ms per round trip.

Each measurement runs `agent_waves * N` runs with at most N in flight; throughput is runs
per second of wall time, latency is per run.
"""

from __future__ import annotations

import asyncio
import statistics
import time
from typing import Any

import psycopg
from psycopg.rows import DictRow
from psycopg_pool import AsyncConnectionPool

from benchmarks.agent import agent_config, agent_input, build_agent
from benchmarks.participants import apool, connect, make_async_saver, setup_schema
from benchmarks.proxy import ProxyProcess, upstream_of
from benchmarks.workloads.base import AsyncLoop, Row, Workload

__all__ = ["AgentConcurrencyWorkload", "round_trip"]

_ROUTES = ("loopback", "proxy")
_ROUTE_LABELS = {"loopback": "loopback", "proxy": "through the ~1 ms proxy"}


def round_trip(dsn: str, count: int = 50) -> float:
    """Median seconds of a ``SELECT 1`` round trip to `dsn`."""
    with connect(dsn) as conn:
        cur = conn.cursor(binary=True)
        seconds: list[float] = []
        for _ in range(count):
            start = time.perf_counter()
            cur.execute("SELECT 1")
            cur.fetchone()
            seconds.append(time.perf_counter() - start)
    return statistics.median(seconds[count // 5 :])


class AgentConcurrencyWorkload(Workload):
    name = "agent_concurrency"
    title = "concurrent agent runs, loopback and through a ~1 ms proxy"

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.loop = AsyncLoop()
        self.proxy: ProxyProcess | None = None
        self.pools: dict[tuple[str, str], AsyncConnectionPool[psycopg.AsyncConnection[DictRow]]]
        self.pools = {}
        self.graphs: dict[tuple[str, str], Any] = {}

    def units(self) -> tuple[str, ...]:
        return tuple(f"{route}@{n}" for route in _ROUTES for n in self.profile.concurrency)

    def rounds(self) -> int:
        return self.profile.concurrency_rounds

    def setup(self, participant: str, dsn: str) -> None:
        setup_schema(participant, dsn)
        if self.proxy is None:
            self.proxy = ProxyProcess(upstream_of(dsn), delay=self.profile.proxy_delay).start()
        proxied = self.proxy.dsn_for(dsn)
        added = round_trip(proxied) - round_trip(dsn)
        self.samples.value("proxy added round trip", participant, added * 1000)
        for route, route_dsn in (("loopback", dsn), ("proxy", proxied)):
            pool = self.loop.run(apool(route_dsn, self.profile.pool_size))
            self.pools[participant, route] = pool
            saver = self.loop.run(make_async_saver(participant, pool))
            self.graphs[participant, route] = build_agent(saver, asynchronous=True)
            self.loop.run(self._runs(participant, route, "warmup", 2, 2))

    def teardown(self, participant: str) -> None:
        for route in _ROUTES:
            if pool := self.pools.pop((participant, route), None):
                self.loop.run(pool.close())

    def finish(self) -> None:
        self.loop.close()
        if self.proxy is not None:
            self.proxy.stop()
            self.proxy = None

    def run(self, participant: str, unit: str, round_no: int) -> None:
        route, _, level = unit.partition("@")
        n = int(level)
        start = time.perf_counter()
        seconds = self.loop.run(
            self._runs(participant, route, f"{unit}-r{round_no}", n * self.profile.agent_waves, n)
        )
        elapsed = time.perf_counter() - start
        self.samples.rate(unit, participant, len(seconds) / elapsed)
        self.samples.latency(unit, participant, seconds)

    async def _runs(
        self, participant: str, route: str, label: str, count: int, concurrency: int
    ) -> list[float]:
        graph = self.graphs[participant, route]
        gate = asyncio.Semaphore(concurrency)

        async def one(i: int) -> float:
            async with gate:
                start = time.perf_counter()
                await graph.ainvoke(agent_input(), agent_config(f"{label}-{i}"))
                return time.perf_counter() - start

        return list(await asyncio.gather(*(one(i) for i in range(count))))

    def rows(self) -> list[Row]:
        rows: list[Row] = []
        for route in _ROUTES:
            for n in self.profile.concurrency:
                unit = f"{route}@{n}"
                label = f"{n} concurrent runs, {_ROUTE_LABELS[route]}"
                rows.append(
                    self.median_row(
                        f"agents.{route}.{n}.runs",
                        f"{label}: runs/s",
                        unit,
                        "runs/s",
                        rates=True,
                        higher_is_better=True,
                    )
                )
                rows.append(self.latency_row(f"agents.{route}.{n}.p50", f"{label}: run", unit))
                rows.append(
                    self.latency_row(f"agents.{route}.{n}.p99", f"{label}: run", unit, q="p99")
                )
        rows.append(
            self.median_row(
                "agents.proxy_rtt",
                "round trip added by the proxy (SELECT 1)",
                "proxy added round trip",
                "ms",
                note="measured, not a comparison",
            )
        )
        return rows
