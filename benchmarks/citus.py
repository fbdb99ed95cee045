"""The savers on a Citus cluster beside a single server: latency of one stream, throughput of
32 concurrent agent runs.

    python -m benchmarks.citus --single DSN --citus DSN [--rounds 7] [--seconds 10]

Both sides get a fresh schema and `setup()` (`setup(distributed=True)` on the cluster). Single
stream: p50 of `put` (a 1 KB message list), `get_tuple` (latest) and `list(limit=10)` of one
thread, the two sides interleaved round by round so that drift hits both. Throughput: 32
threads, each running the benchmark agent (benchmarks/agent.py) on threads of its own, through
a pool of 32 connections for `--seconds`, counting finished runs. Prints a Markdown table (the
figures in RESULTS.md, "Citus", come from it). On one machine a cluster adds a hop from the
coordinator to a worker to every statement: what this shows is the price of that hop and
that every hot-path statement is routed, not what a real cluster of machines gains.
"""

from __future__ import annotations

import argparse
import statistics
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from typing import Any

import psycopg
from langgraph.checkpoint.base import ChannelVersions, empty_checkpoint
from psycopg import sql
from psycopg.conninfo import make_conninfo
from psycopg_pool import ConnectionPool

from benchmarks.agent import agent_config, agent_input, build_agent
from checkpoint_pg import PostgresSaver

STREAM_OPS = ("put", "get_tuple", "list")


@contextmanager
def _schema(dsn: str) -> Iterator[str]:
    name = f"bench_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute(sql.SQL("CREATE SCHEMA {}").format(sql.Identifier(name)))
    try:
        yield make_conninfo(dsn, options=f"-c search_path={name},public")
    finally:
        with psycopg.connect(dsn, autocommit=True) as conn:
            conn.execute(sql.SQL("DROP SCHEMA {} CASCADE").format(sql.Identifier(name)))


def _setup(dsn: str, distributed: bool) -> None:
    with psycopg.connect(dsn, autocommit=True) as conn:
        PostgresSaver(conn).setup(distributed=distributed)


def _message_list() -> dict[str, Any]:
    text = "The agent read the file, kept a note and answered the question. " * 16
    return {"messages": [{"role": "assistant", "content": text}]}  # ~1 KB


def _stream_round(saver: PostgresSaver, samples: int) -> dict[str, list[float]]:
    """`samples` timed calls of each operation on one thread, in order."""
    config: Any = {
        "configurable": {"thread_id": f"stream-{uuid.uuid4().hex[:6]}", "checkpoint_ns": ""}
    }
    times: dict[str, list[float]] = {op: [] for op in STREAM_OPS}
    for _ in range(samples):
        checkpoint = empty_checkpoint()
        checkpoint["channel_values"] = _message_list()
        versions: ChannelVersions = {"messages": saver.get_next_version(None, None)}
        checkpoint["channel_versions"] = versions
        start = time.perf_counter()
        config = saver.put(config, checkpoint, {"source": "loop", "step": 1}, versions)
        times["put"].append(time.perf_counter() - start)
        start = time.perf_counter()
        saver.get_tuple({"configurable": {**config["configurable"], "checkpoint_id": None}})
        times["get_tuple"].append(time.perf_counter() - start)
        start = time.perf_counter()
        list(saver.list(config, limit=10))
        times["list"].append(time.perf_counter() - start)
    return times


def single_stream(dsns: dict[str, str], rounds: int, samples: int) -> dict[str, dict[str, float]]:
    """p50 per operation and side (µs), the sides interleaved round by round."""
    collected: dict[str, dict[str, list[float]]] = {
        side: {op: [] for op in STREAM_OPS} for side in dsns
    }
    with ExitStack() as stack:
        savers = {
            side: PostgresSaver(stack.enter_context(psycopg.connect(dsn, autocommit=True)))
            for side, dsn in dsns.items()
        }
        for _ in range(rounds):
            for side, saver in savers.items():
                for op, values in _stream_round(saver, samples).items():
                    collected[side][op].extend(values)
    return {
        side: {op: statistics.median(v) * 1e6 for op, v in ops.items()}
        for side, ops in collected.items()
    }


def throughput(dsn: str, seconds: float, workers: int = 32) -> float:
    """Agent runs (benchmarks/agent.py: 25 super-steps each) finished per second, with
    `workers` concurrent runs over a pool of as many connections."""
    with ConnectionPool(
        dsn, min_size=workers, max_size=workers, kwargs={"autocommit": True}, open=True
    ) as pool:
        app = build_agent(PostgresSaver(pool))
        done = [0] * workers
        stop = threading.Event()

        def run(index: int) -> None:
            n = 0
            while not stop.is_set():
                app.invoke(agent_input(), agent_config(f"run-{index}-{n}"))
                n += 1
                done[index] = n

        threads = [threading.Thread(target=run, args=(i,)) for i in range(workers)]
        for t in threads:
            t.start()
        time.sleep(seconds)
        stop.set()
        for t in threads:
            t.join()
    return sum(done) / seconds


def _table(stream: dict[str, dict[str, float]], rates: dict[str, float]) -> str:
    single, cluster = stream["single"], stream["citus"]
    lines = [
        "| measure | single server | Citus (coordinator + 2 workers) | ratio |",
        "|---|---|---|---|",
    ]
    for op in STREAM_OPS:
        lines.append(
            f"| {op} p50 | {single[op]:.0f} µs | {cluster[op]:.0f} µs | "
            f"{cluster[op] / single[op]:.2f}x |"
        )
    lines.append(
        f"| 32 concurrent runs | {rates['single']:.0f} runs/s | {rates['citus']:.0f} runs/s | "
        f"{rates['citus'] / rates['single']:.2f}x |"
    )
    return "\n".join(lines)


def main(argv: list[str] | None = None, out: Callable[[str], object] = print) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.citus", description=__doc__)
    parser.add_argument("--single", required=True, help="DSN of a single PostgreSQL server")
    parser.add_argument("--citus", required=True, help="DSN of a Citus coordinator")
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--samples", type=int, default=50, help="calls per operation a round")
    parser.add_argument("--seconds", type=float, default=10.0)
    args = parser.parse_args(argv)
    with _schema(args.single) as single, _schema(args.citus) as cluster:
        _setup(single, distributed=False)
        _setup(cluster, distributed=True)
        dsns = {"single": single, "citus": cluster}
        stream = single_stream(dsns, args.rounds, args.samples)
        # Throughput, interleaved too: three alternating windows a side, the median kept.
        windows: dict[str, list[float]] = {side: [] for side in dsns}
        for _ in range(3):
            for side, dsn in dsns.items():
                windows[side].append(throughput(dsn, args.seconds / 3))
        rates = {side: statistics.median(values) for side, values in windows.items()}
    out(_table(stream, rates))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
