"""The agent loop: time per 25-super-step run, and bytes on disk per thread.

A blocking saver on one connection checkpoints a real LangGraph graph (`benchmarks.agent`);
each run is a new thread. Bytes on disk are what the three checkpoint tables (with their
TOAST tables and indexes, this package's extra index included) grew by, divided by the
number of threads written since the tables were created.
"""

from __future__ import annotations

import time
from typing import Any

import psycopg
from psycopg.rows import DictRow

from benchmarks.agent import agent_config, agent_input, build_agent
from benchmarks.participants import connect, setup_schema, sync_saver
from benchmarks.workloads.base import Row, Workload

__all__ = ["AgentLoopWorkload", "checkpoint_tables_bytes"]

_TABLES = ["checkpoints", "checkpoint_blobs", "checkpoint_writes"]


def checkpoint_tables_bytes(conn: psycopg.Connection[Any]) -> int:
    """On-disk size of the checkpoint tables (heap, TOAST, indexes) in `conn`'s schema."""
    row = conn.execute(
        "SELECT coalesce(sum(pg_total_relation_size(c.oid)), 0)::bigint AS size"
        " FROM pg_class AS c JOIN pg_namespace AS n ON n.oid = c.relnamespace"
        " WHERE c.relkind = 'r' AND n.nspname = current_schema() AND c.relname = ANY(%s)",
        (_TABLES,),
    ).fetchone()
    assert row is not None
    return int(row["size"] if isinstance(row, dict) else row[0])


class AgentLoopWorkload(Workload):
    name = "agent"
    title = "LangGraph agent loop, 25 super-steps"

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.conns: dict[str, psycopg.Connection[DictRow]] = {}
        self.graphs: dict[str, Any] = {}
        self.baseline: dict[str, int] = {}
        self.threads: dict[str, int] = {}

    def setup(self, participant: str, dsn: str) -> None:
        conn = self.conns[participant] = connect(dsn)
        setup_schema(participant, dsn)
        self.baseline[participant] = checkpoint_tables_bytes(conn)
        self.graphs[participant] = build_agent(sync_saver(participant, conn))
        self.threads[participant] = 0
        self._runs(participant, "warmup", 1)
        saver = self.graphs[participant].checkpointer
        history = list(saver.list(agent_config(f"{participant}-warmup-0")))
        if len(history) != 27:
            raise RuntimeError(f"the agent thread has {len(history)} checkpoints, expected 27")

    def _runs(self, participant: str, label: str, count: int) -> list[float]:
        graph = self.graphs[participant]
        seconds: list[float] = []
        for i in range(count):
            config = agent_config(f"{participant}-{label}-{i}")
            start = time.perf_counter()
            graph.invoke(agent_input(), config)
            seconds.append(time.perf_counter() - start)
            self.threads[participant] += 1
        return seconds

    def run(self, participant: str, unit: str, round_no: int) -> None:
        seconds = self._runs(participant, f"r{round_no}", self.profile.agent_runs)
        self.samples.latency("agent run", participant, seconds)

    def teardown(self, participant: str) -> None:
        conn = self.conns.pop(participant, None)
        if conn is None:
            return
        try:
            # Enough threads that page-sized steps in the tables' growth average out.
            missing = self.profile.agent_disk_threads - self.threads[participant]
            if missing > 0:
                self._runs(participant, "disk", missing)
            grown = checkpoint_tables_bytes(conn) - self.baseline[participant]
            threads = max(1, self.threads[participant])
            self.samples.value("bytes per thread", participant, grown / threads / 1024)
            self._compressed_bytes(participant, conn)
        finally:
            conn.close()

    def _compressed_bytes(self, participant: str, conn: psycopg.Connection[DictRow]) -> None:
        """The same threads with the opt-in CompressingSerializer, for both savers (it is a
        serializer: the official saver reads and writes it too), in a schema of their own."""
        from checkpoint_pg.serde import CompressingSerializer

        conn.execute("CREATE SCHEMA IF NOT EXISTS bench_compressed")
        conn.execute("SET search_path = bench_compressed, public")
        saver = sync_saver(participant, conn, CompressingSerializer())
        saver.setup()  # type: ignore[attr-defined]
        baseline = checkpoint_tables_bytes(conn)
        graph = build_agent(saver)
        count = max(1, self.profile.agent_disk_threads)
        for i in range(count):
            graph.invoke(agent_input(), agent_config(f"{participant}-compressed-{i}"))
        grown = checkpoint_tables_bytes(conn) - baseline
        self.samples.value("bytes per thread, compressed", participant, grown / count / 1024)

    def rows(self) -> list[Row]:
        return [
            self.latency_row("agent.run.p50", "time per 25-step run", "agent run", q="p50"),
            self.latency_row("agent.run.p99", "time per 25-step run", "agent run", q="p99"),
            self.median_row(
                "agent.disk",
                "bytes on disk per 25-step thread",
                "bytes per thread",
                "KiB",
                note="checkpoint tables with TOAST and indexes",
            ),
            self.median_row(
                "agent.disk.compressed",
                "bytes on disk per 25-step thread, both with CompressingSerializer",
                "bytes per thread, compressed",
                "KiB",
                note="opt-in checkpoint_pg.CompressingSerializer given to each saver",
            ),
        ]
