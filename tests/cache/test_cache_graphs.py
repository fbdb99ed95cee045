"""The cache under real graphs: nodes with a `CachePolicy` run once per input, across runs,
threads and processes' worth of connections, until their entry expires or is cleared."""

from __future__ import annotations

import asyncio
import operator
import threading
import time
from collections.abc import Iterator
from typing import Annotated, Any, TypedDict

import pytest
from langgraph.graph import START, StateGraph
from langgraph.types import CachePolicy

from checkpoint_pg import PostgresSaver
from checkpoint_pg.cache import AsyncPostgresCache, PostgresCache


class State(TypedDict):
    n: int
    trail: Annotated[list[str], operator.add]


class Counter:
    """How many times the cached node really ran (thread-safe)."""

    def __init__(self) -> None:
        self.runs = 0
        self._lock = threading.Lock()

    def node(self, state: State) -> dict[str, Any]:
        with self._lock:
            self.runs += 1
        return {"n": state["n"] * 2, "trail": [f"doubled {state['n']}"]}


def _graph(counter: Counter, cache: Any, ttl: int | None = None, checkpointer: Any = None) -> Any:
    builder = StateGraph(State)
    builder.add_node("double", counter.node, cache_policy=CachePolicy(ttl=ttl))
    builder.add_edge(START, "double")
    return builder.compile(cache=cache, checkpointer=checkpointer)


@pytest.fixture
def cache(dsn: str) -> Iterator[PostgresCache[Any]]:
    with PostgresCache.from_conn_string(dsn, pool_size=4) as opened:
        opened.setup()
        yield opened


def test_a_second_run_with_the_same_input_is_served_from_the_cache(
    cache: PostgresCache[Any],
) -> None:
    counter = Counter()
    graph = _graph(counter, cache)
    first = graph.invoke({"n": 3, "trail": []})
    second = graph.invoke({"n": 3, "trail": []})
    assert first == second == {"n": 6, "trail": ["doubled 3"]}
    assert counter.runs == 1


def test_another_input_misses_the_cache(cache: PostgresCache[Any]) -> None:
    counter = Counter()
    graph = _graph(counter, cache)
    graph.invoke({"n": 3, "trail": []})
    assert graph.invoke({"n": 4, "trail": []}) == {"n": 8, "trail": ["doubled 4"]}
    assert counter.runs == 2


def test_an_entry_is_reused_by_a_graph_on_another_connection(dsn: str) -> None:
    counter = Counter()
    with PostgresCache.from_conn_string(dsn) as one:
        one.setup()
        _graph(counter, one).invoke({"n": 5, "trail": []})
    with PostgresCache.from_conn_string(dsn) as other:
        assert _graph(counter, other).invoke({"n": 5, "trail": []})["n"] == 10
    assert counter.runs == 1


def test_an_expired_entry_makes_the_node_run_again(cache: PostgresCache[Any]) -> None:
    counter = Counter()
    graph = _graph(counter, cache, ttl=1)
    graph.invoke({"n": 3, "trail": []})
    time.sleep(1.2)
    graph.invoke({"n": 3, "trail": []})
    assert counter.runs == 2


def test_clear_cache_makes_the_node_run_again(cache: PostgresCache[Any]) -> None:
    counter = Counter()
    graph = _graph(counter, cache)
    graph.invoke({"n": 3, "trail": []})
    graph.clear_cache()
    graph.invoke({"n": 3, "trail": []})
    assert counter.runs == 2


def test_clearing_one_node_keeps_the_other_nodes_entries(cache: PostgresCache[Any]) -> None:
    counter, other = Counter(), Counter()
    builder = StateGraph(State)
    builder.add_node("double", counter.node, cache_policy=CachePolicy())
    builder.add_node("again", other.node, cache_policy=CachePolicy())
    builder.add_edge(START, "double")
    builder.add_edge("double", "again")
    graph = builder.compile(cache=cache)
    graph.invoke({"n": 1, "trail": []})
    graph.clear_cache(nodes=["double"])
    graph.invoke({"n": 1, "trail": []})
    assert (counter.runs, other.runs) == (2, 1)


def test_a_cached_run_with_a_checkpointer_keeps_the_same_history(
    cache: PostgresCache[Any], dsn: str
) -> None:
    counter = Counter()
    with PostgresSaver.from_conn_string(dsn) as saver:
        saver.setup()
        graph = _graph(counter, cache, checkpointer=saver)
        runs = [
            graph.invoke({"n": 2, "trail": []}, {"configurable": {"thread_id": f"t{i}"}})
            for i in range(2)
        ]
        states = [graph.get_state({"configurable": {"thread_id": f"t{i}"}}) for i in range(2)]
    assert runs[0] == runs[1] == {"n": 4, "trail": ["doubled 2"]}
    assert states[0].values == states[1].values
    assert counter.runs == 1


def test_concurrent_writers_of_the_same_entries_neither_fail_nor_deadlock(
    cache: PostgresCache[Any],
) -> None:
    counter = Counter()
    graph = _graph(counter, cache)
    errors: list[BaseException] = []
    barrier = threading.Barrier(8)

    def run(offset: int) -> None:
        barrier.wait()
        try:
            for i in range(10):
                n = (i + offset) % 10  # every thread writes the same ten keys, in another order
                assert graph.invoke({"n": n, "trail": []})["n"] == 2 * n
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=run, args=(t,)) for t in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    assert 10 <= counter.runs <= 80
    before = counter.runs
    for n in range(10):
        graph.invoke({"n": n, "trail": []})
    assert counter.runs == before


async def test_an_async_graph_uses_the_async_cache(dsn: str) -> None:
    counter = Counter()
    async with AsyncPostgresCache.from_conn_string(dsn) as cache:
        await cache.setup()
        graph = _graph(counter, cache)
        results = await asyncio.gather(*(graph.ainvoke({"n": 7, "trail": []}) for _ in range(3)))
        await graph.ainvoke({"n": 7, "trail": []})
    assert all(r == {"n": 14, "trail": ["doubled 7"]} for r in results)
    assert 1 <= counter.runs <= 3
