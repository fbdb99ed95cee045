"""LangGraph's node cache: `PostgresCache` (logged and UNLOGGED) against `InMemoryCache`.

Measured, interleaved round by round (the order rotates), on one cache table holding
`--entries` entries (so lookups go through a real index, not an empty table):

- ``get`` of 1 and of 10 keys (hits), ``set`` of 1 and of 10 entries (60 s TTL), each call's
  latency, median and p99 over all rounds, in µs;
- a graph of one cached node, ``invoke`` on a hit (the node is skipped) and on a miss (the
  node runs and its writes are stored), in µs.

    python -m benchmarks.node_cache --dsn postgresql://postgres@127.0.0.1:5432/test
    python -m benchmarks.node_cache    # on a throwaway embedded PostgreSQL 18

Nothing here is asserted by a test; the figures go to benchmarks/RESULTS.md ("Node cache").
"""

from __future__ import annotations

import argparse
import operator
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from functools import partial
from typing import Annotated, Any, TypedDict

import psycopg
from langgraph.cache.memory import InMemoryCache
from langgraph.graph import START, StateGraph
from langgraph.types import CachePolicy
from psycopg import sql

from benchmarks.stats import percentile
from checkpoint_pg.cache import PostgresCache

MEMORY, LOGGED, UNLOGGED = "InMemoryCache", "PostgresCache", "PostgresCache, unlogged"
PARTICIPANTS = (MEMORY, LOGGED, UNLOGGED)
NS = ("__pregel_ns_writes", "bench", "node")
# A node's writes as LangGraph caches them: a list of (channel, value) pairs, ~1 KB.
VALUE = [("messages", {"role": "ai", "content": "word " * 200}), ("step", 3)]


class State(TypedDict):
    n: int
    trail: Annotated[list[str], operator.add]


def _node(state: State) -> dict[str, Any]:
    return {"n": state["n"] + 1, "trail": ["ran"]}


def _graph(cache: Any) -> Any:
    builder = StateGraph(State)
    builder.add_node("work", _node, cache_policy=CachePolicy(ttl=600))
    builder.add_edge(START, "work")
    return builder.compile(cache=cache)


@contextmanager
def _participant(name: str, dsn: str, entries: int) -> Iterator[Any]:
    if name == MEMORY:
        memory: InMemoryCache[Any] = InMemoryCache()
        memory.set({(NS, f"fill-{i}"): (VALUE, 3600) for i in range(entries)})
        yield memory
        return
    schema = f"bench_cache_{uuid.uuid4().hex[:8]}"
    with PostgresCache.from_conn_string(dsn, schema=schema, unlogged=name == UNLOGGED) as cache:
        cache.setup()
        for start in range(0, entries, 5000):
            stop = min(entries, start + 5000)
            cache.set({(NS, f"fill-{i}"): (VALUE, 3600) for i in range(start, stop)})
        with psycopg.connect(dsn, autocommit=True) as conn:
            conn.execute(sql.SQL("ANALYZE {}.checkpoint_cache").format(sql.Identifier(schema)))
        try:
            yield cache
        finally:
            with psycopg.connect(dsn, autocommit=True) as conn:
                conn.execute(sql.SQL("DROP SCHEMA {} CASCADE").format(sql.Identifier(schema)))


def _timed(call: Callable[[], object]) -> float:
    started = time.perf_counter_ns()
    call()
    return (time.perf_counter_ns() - started) / 1000


def _round(cache: Any, graph: Any, samples: dict[str, list[float]], n: int, tag: str) -> None:
    one = [(NS, "fill-7")]
    ten = [(NS, f"fill-{i}") for i in range(100, 110)]
    for i in range(n):
        single = {(NS, f"{tag}-{i}"): (VALUE, 60)}
        batch = {(NS, f"{tag}-{i}-{j}"): (VALUE, 60) for j in range(10)}
        fresh = {"n": i, "trail": [tag]}
        samples["get 1 key"].append(_timed(partial(cache.get, one)))
        samples["get 10 keys"].append(_timed(partial(cache.get, ten)))
        samples["set 1 entry"].append(_timed(partial(cache.set, single)))
        samples["set 10 entries"].append(_timed(partial(cache.set, batch)))
        samples["graph: miss (node runs)"].append(_timed(partial(graph.invoke, fresh)))
        samples["graph: hit (node skipped)"].append(_timed(partial(graph.invoke, fresh)))


def main(argv: list[str] | None = None, out: Callable[[str], object] = print) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dsn", help="a PostgreSQL to measure on (default: embedded PG18)")
    parser.add_argument("--entries", type=int, default=100_000)
    parser.add_argument("--rounds", type=int, default=6)
    parser.add_argument("--samples", type=int, default=200, help="calls per measure per round")
    args = parser.parse_args(argv)
    with ExitStack() as stack:
        dsn = args.dsn
        if dsn is None:
            from tests.harness import provision_server

            server = provision_server()
            stack.callback(server.close)
            dsn = server.admin_dsn
        opened = {p: stack.enter_context(_participant(p, dsn, args.entries)) for p in PARTICIPANTS}
        graphs = {p: _graph(c) for p, c in opened.items()}
        results: dict[str, dict[str, list[float]]] = {p: {} for p in PARTICIPANTS}
        for r in range(args.rounds):
            order = PARTICIPANTS[r % 3 :] + PARTICIPANTS[: r % 3]
            for p in order:
                samples = results[p]
                for key in (
                    "get 1 key",
                    "get 10 keys",
                    "set 1 entry",
                    "set 10 entries",
                    "graph: miss (node runs)",
                    "graph: hit (node skipped)",
                ):
                    samples.setdefault(key, [])
                _round(opened[p], graphs[p], samples, args.samples, f"r{r}")
    out(f"node cache, {args.entries:,} entries, {args.rounds} rounds x {args.samples} calls")
    out(f"{'measure':28} " + " ".join(f"{p:>26}" for p in PARTICIPANTS))
    for key in results[MEMORY]:
        cells = []
        for p in PARTICIPANTS:
            values = results[p][key]
            cells.append(f"{percentile(values, 50):>10,.0f} / {percentile(values, 99):>9,.0f} µs")
        out(f"{key:28} " + " ".join(f"{c:>26}" for c in cells))
    out("(each cell: p50 / p99)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
