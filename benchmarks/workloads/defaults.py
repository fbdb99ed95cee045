"""What a user gets from each package's own `from_conn_string(dsn)`, with no other argument.

The other workloads hand both savers identical connections and pools, to compare saver code
alone; this one compares the packages as configured out of the box (the official: one
connection; this package too, since `from_conn_string` stopped defaulting to a pool), over
loopback and through the ~1 ms proxy.
"""

from __future__ import annotations

import random
import time
from contextlib import ExitStack
from typing import Any

from langchain_core.runnables import RunnableConfig
from langgraph.checkpoint.base import BaseCheckpointSaver

from benchmarks.data import CheckpointStream
from benchmarks.participants import default_saver, setup_schema
from benchmarks.proxy import ProxyProcess, upstream_of
from benchmarks.workloads.base import Row, Workload

__all__ = ["DefaultsWorkload"]

_ROUTES = ("loopback", "proxy")
_OPS = ("put", "get_tuple")


class DefaultsWorkload(Workload):
    name = "defaults"
    title = "each package's from_conn_string defaults"

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.stack = ExitStack()
        self.proxy: ProxyProcess | None = None
        self.savers: dict[tuple[str, str], BaseCheckpointSaver[str]] = {}

    def units(self) -> tuple[str, ...]:
        return tuple(f"{op}@{route}" for route in _ROUTES for op in _OPS)

    def rounds(self) -> int:
        return self.profile.concurrency_rounds

    def setup(self, participant: str, dsn: str) -> None:
        setup_schema(participant, dsn)
        if self.proxy is None:
            self.proxy = self.stack.enter_context(
                ProxyProcess(upstream_of(dsn), delay=self.profile.proxy_delay)
            )
        for route, route_dsn in (("loopback", dsn), ("proxy", self.proxy.dsn_for(dsn))):
            saver = self.stack.enter_context(default_saver(participant, route_dsn))
            self.savers[participant, route] = saver
            for unit in (f"{op}@{route}" for op in _OPS):
                self.run(participant, unit, -1, ops=self.profile.warmup_ops)

    def finish(self) -> None:
        self.stack.close()

    def run(self, participant: str, unit: str, round_no: int, ops: int | None = None) -> None:
        op, _, route = unit.partition("@")
        saver = self.savers[participant, route]
        count = self.profile.defaults_ops if ops is None else ops
        thread = f"defaults-{route}"
        stream = CheckpointStream(f"{thread}-{round_no}", random.Random(f"{unit}-{round_no}"))
        seconds: list[float] = []
        if op == "put":
            for _ in range(count):
                args = stream.next()
                start = time.perf_counter()
                saver.put(args.config, args.checkpoint, args.metadata, args.new_versions)
                seconds.append(time.perf_counter() - start)
        else:
            args = stream.next()
            saver.put(args.config, args.checkpoint, args.metadata, args.new_versions)
            latest: RunnableConfig = {"configurable": {"thread_id": stream.thread_id}}
            for _ in range(count):
                start = time.perf_counter()
                saver.get_tuple(latest)
                seconds.append(time.perf_counter() - start)
        if round_no >= 0:
            self.samples.latency(unit, participant, seconds)

    def rows(self) -> list[Row]:
        rows: list[Row] = []
        for route in _ROUTES:
            where = "loopback" if route == "loopback" else "through the ~1 ms proxy"
            for op in _OPS:
                label = f"{op} 1 KB via from_conn_string(dsn), {where},"
                rows.append(self.latency_row(f"defaults.{route}.{op}.p50", label, f"{op}@{route}"))
        return rows
