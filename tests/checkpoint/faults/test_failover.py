"""The primary dies mid-run and the standby takes over: nothing acknowledged is lost.

Each test builds its own primary and streaming standby (`tests.support.failover`), connects
the savers and the store through one multi-host DSN (both nodes,
``target_session_attrs=read-write``), starts 16 agent runs at once, and fails over in the
middle of them: ``pg_ctl stop`` on the primary (``fast`` or ``immediate``), then
``pg_ctl promote`` on the standby. A ledger records what the clients were told was written
(the config `put` returned, each `put_writes` that returned, each store put that returned);
afterwards the new primary must hold every entry of it, and every run must finish, by
itself or re-invoked on its thread (``graph.invoke(None, config)``: resume from the last
checkpoint).

With synchronous replication that is a guarantee. With asynchronous replication it is not:
the last tests measure the window instead.

Each test prints one ``FAILOVER`` line with its numbers (``pytest -s`` shows them); the
README and benchmarks/RESULTS.md quote them.
"""

from __future__ import annotations

import asyncio
import threading
import time
import uuid
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Annotated, Any, TypedDict

import psycopg
import pytest
from langchain_core.runnables import RunnableConfig
from langgraph.graph import END, START, StateGraph

from checkpoint_pg import AsyncPostgresSaver, PostgresSaver
from checkpoint_pg._runtime.retry import RetryPolicy
from store import AsyncPostgresStore, PostgresStore
from tests.support.failover import Pair

pytestmark = [pytest.mark.timeout(120), pytest.mark.failover]

RUNS = 16
TOOL_CALLS = 3  # per run: agent → tool three times, then the agent answers
THINK = 0.03  # seconds each node "thinks", so that the failover lands mid-run
KILL_AFTER = RUNS * 3  # acknowledged checkpoints before the primary dies: every run under way
RUN_DEADLINE = 60.0  # no run may take longer, failover and resumes included

# Long enough to ride out a failover (the primary stops, the standby is promoted): up to
# 30 s, retries at most 0.5 s apart. The default policy allows 6 attempts (about 3 s of
# backoff), which a failover on this machine also fits in; a slower promotion needs this.
RIDE_THROUGH = RetryPolicy(max_attempts=60, base_delay=0.05, max_delay=0.5, total_budget=30.0)
# No retries at all: every run under way fails at the failover and must be resumed.
NO_RETRY = RetryPolicy.never()


# -- what the clients were told --------------------------------------------------------------


@dataclass
class Ledger:
    """Every write a client got an acknowledgement for, and when."""

    checkpoints: set[tuple[str, str, str]] = field(default_factory=set)
    writes: set[tuple[str, str, str, str, str]] = field(default_factory=set)
    items: set[tuple[str, str]] = field(default_factory=set)
    acked_at: dict[tuple[str, ...], float] = field(default_factory=dict)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def _note(self, into: set[Any], *entries: Any) -> None:
        now = time.monotonic()
        with self.lock:
            into.update(entries)
            self.acked_at.update(dict.fromkeys(entries, now))

    def checkpoint(self, saved: RunnableConfig) -> None:
        c = saved["configurable"]
        self._note(self.checkpoints, (c["thread_id"], c["checkpoint_ns"], c["checkpoint_id"]))

    def put_writes(self, config: RunnableConfig, writes: Any, task_id: str) -> None:
        c = config["configurable"]
        key = (c["thread_id"], c.get("checkpoint_ns", ""), c["checkpoint_id"], task_id)
        self._note(self.writes, *((*key, channel) for channel, _ in writes))

    def item(self, namespace: tuple[str, ...], key: str) -> None:
        self._note(self.items, (".".join(namespace), key))

    def first_ack_after(self, moment: float) -> float | None:
        with self.lock:
            later = [t for t in self.acked_at.values() if t > moment]
        return min(later) - moment if later else None

    def size(self) -> int:
        with self.lock:
            return len(self.checkpoints) + len(self.writes) + len(self.items)


class LedgerSaver(PostgresSaver):
    ledger: Ledger

    def put(self, config: Any, checkpoint: Any, metadata: Any, new_versions: Any) -> Any:
        saved = super().put(config, checkpoint, metadata, new_versions)
        self.ledger.checkpoint(saved)
        return saved

    def put_writes(self, config: Any, writes: Any, task_id: str, task_path: str = "") -> None:
        super().put_writes(config, writes, task_id, task_path)
        self.ledger.put_writes(config, writes, task_id)


class AsyncLedgerSaver(AsyncPostgresSaver):
    ledger: Ledger

    async def aput(self, config: Any, checkpoint: Any, metadata: Any, new_versions: Any) -> Any:
        saved = await super().aput(config, checkpoint, metadata, new_versions)
        self.ledger.checkpoint(saved)
        return saved

    async def aput_writes(
        self, config: Any, writes: Any, task_id: str, task_path: str = ""
    ) -> None:
        await super().aput_writes(config, writes, task_id, task_path)
        self.ledger.put_writes(config, writes, task_id)


def lost(ledger: Ledger, node_dsn: str) -> dict[str, set[Any]]:
    """The acknowledged entries that the server at `node_dsn` does not hold."""
    with psycopg.connect(node_dsn) as conn:
        checkpoints = set(
            conn.execute("SELECT thread_id, checkpoint_ns, checkpoint_id FROM checkpoints")
        )
        writes = set(
            conn.execute(
                "SELECT thread_id, checkpoint_ns, checkpoint_id, task_id, channel "
                "FROM checkpoint_writes"
            )
        )
        items = set(conn.execute("SELECT prefix, key FROM store"))
    return {
        "checkpoints": ledger.checkpoints - checkpoints,
        "writes": ledger.writes - writes,
        "items": ledger.items - items,
    }


# -- the agent ---------------------------------------------------------------------------------


class AgentState(TypedDict):
    messages: Annotated[list[dict[str, Any]], lambda a, b: a + b]
    calls: int


def thread_of(config: RunnableConfig) -> str:
    return str(config["configurable"]["thread_id"])


def agent_turn(state: AgentState) -> dict[str, Any]:
    """The "model": asks for a tool while it has calls left, then answers."""
    if state["calls"] < TOOL_CALLS:
        call = {"role": "ai", "tool_call": {"name": "remember", "n": state["calls"]}}
        return {"messages": [call]}
    return {"messages": [{"role": "ai", "content": "done"}]}


def route(state: AgentState) -> str:
    return "tools" if "tool_call" in state["messages"][-1] else END


def tool_result(state: AgentState) -> tuple[int, dict[str, Any]]:
    n = state["messages"][-1]["tool_call"]["n"]
    return n, {"messages": [{"role": "tool", "content": f"noted {n}"}], "calls": n + 1}


def sync_agent(store: PostgresStore, ledger: Ledger) -> StateGraph[Any, Any, Any, Any]:
    def agent(state: AgentState) -> dict[str, Any]:
        time.sleep(THINK)
        return agent_turn(state)

    def tools(state: AgentState, config: RunnableConfig) -> dict[str, Any]:
        time.sleep(THINK)
        n, update = tool_result(state)
        namespace = ("runs", thread_of(config))
        store.put(namespace, f"note-{n}", {"n": n})
        ledger.item(namespace, f"note-{n}")
        return update

    return build(agent, tools)


def async_agent(store: AsyncPostgresStore, ledger: Ledger) -> StateGraph[Any, Any, Any, Any]:
    async def agent(state: AgentState) -> dict[str, Any]:
        await asyncio.sleep(THINK)
        return agent_turn(state)

    async def tools(state: AgentState, config: RunnableConfig) -> dict[str, Any]:
        await asyncio.sleep(THINK)
        n, update = tool_result(state)
        namespace = ("runs", thread_of(config))
        await store.aput(namespace, f"note-{n}", {"n": n})
        ledger.item(namespace, f"note-{n}")
        return update

    return build(agent, tools)


def build(agent: Callable[..., Any], tools: Callable[..., Any]) -> StateGraph[Any, Any, Any, Any]:
    builder: StateGraph[Any, Any, Any, Any] = StateGraph(AgentState)
    builder.add_node("agent", agent)
    builder.add_node("tools", tools)
    builder.add_edge(START, "agent")
    builder.add_conditional_edges("agent", route, ["tools", END])
    builder.add_edge("tools", "agent")
    return builder


START_INPUT: dict[str, Any] = {"messages": [{"role": "user", "content": "go"}], "calls": 0}


def finished(values: dict[str, Any]) -> bool:
    return values.get("calls") == TOOL_CALLS and values["messages"][-1].get("content") == "done"


# -- the scenario --------------------------------------------------------------------------------


@dataclass
class Outcome:
    resumed: int = 0  # runs that failed at the failover and finished when re-invoked
    recovery: float | None = None  # seconds from the stop command to the new primary's first ack
    lost: dict[str, set[Any]] = field(default_factory=dict)
    acknowledged: int = 0
    down: float = 0.0  # seconds `pg_ctl stop` took
    promotion: float = 0.0  # seconds from the stop's end to a writable standby


class Failover:
    """Kills the primary once the ledger shows every run under way, then promotes."""

    def __init__(self, pair: Pair, ledger: Ledger, mode: str, stall: float = 0.0) -> None:
        self.pair, self.ledger, self.mode = pair, ledger, mode
        self.stall = stall
        self.killed_at = self.down_at = self.promoted_at = self.stalled_at = 0.0
        self.lag_bytes: int | None = None
        self.promoted = threading.Event()

    def run(self) -> None:
        deadline = time.monotonic() + 30
        while len(self.ledger.checkpoints) < KILL_AFTER:
            assert time.monotonic() < deadline, "the runs never got under way"
            time.sleep(0.005)
        if self.stall:
            with self.pair.replication_paused():
                self.stalled_at = time.monotonic()
                time.sleep(self.stall)
                self.kill()
        else:
            self.kill()
        self.pair.promote()
        self.promoted_at = time.monotonic()
        self.promoted.set()

    def kill(self) -> None:
        self.lag_bytes = self.pair.replication_lag()
        self.killed_at = time.monotonic()
        self.pair.kill_primary(self.mode)
        self.down_at = time.monotonic()

    def timings(self) -> tuple[float, float]:
        """(seconds the stop took, seconds from then to a writable standby)"""
        return self.down_at - self.killed_at, self.promoted_at - self.down_at

    def recovery(self) -> float | None:
        """Seconds from the stop command to the first write acknowledged by the new primary.

        Counted from the moment the standby was seen promoted (polled every 5 ms): an ack
        noted between the stop and that moment is a reply of the old primary that its client
        got round to noting late, not a write on the new one.
        """
        after = self.ledger.first_ack_after(self.promoted_at)
        return None if after is None else after + self.promoted_at - self.killed_at


def report(name: str, outcome: Outcome) -> None:
    recovery = "n/a" if outcome.recovery is None else f"{outcome.recovery:.3f}s"
    lost = {kind: len(entries) for kind, entries in outcome.lost.items()}
    print(
        f"\nFAILOVER {name}: runs={RUNS} resumed={outcome.resumed} "
        f"acknowledged={outcome.acknowledged} lost={lost} recovery={recovery} "
        f"(stop {outcome.down:.3f}s, promote {outcome.promotion:.3f}s)"
    )


def run_sync_scenario(
    pair: Pair, mode: str, retry: RetryPolicy, stall: float = 0.0, *, pooled: bool = True
) -> tuple[Outcome, Failover]:
    """`RUNS` concurrent runs through a failover, on pools of `RUNS` connections (or, not
    `pooled`, on the one connection each of `from_conn_string`'s saver and store)."""
    ledger, outcome = Ledger(), Outcome()
    failover = Failover(pair, ledger, mode, stall)
    with (
        LedgerSaver.from_conn_string(
            pair.dsn, retry=retry, pool_size=RUNS if pooled else None
        ) as saver,
        PostgresStore.from_conn_string(
            pair.dsn, retry=retry, pool_config={"max_size": RUNS} if pooled else None
        ) as store,
    ):
        saver.ledger = ledger
        saver.setup()
        store.setup()
        graph = sync_agent(store, ledger).compile(checkpointer=saver)

        def one_run(thread_id: str) -> bool:
            """True if the run had to be re-invoked after the failover."""
            config: RunnableConfig = {"configurable": {"thread_id": thread_id}}
            deadline = time.monotonic() + RUN_DEADLINE
            try:
                graph.invoke(START_INPUT, config)
                if finished(graph.get_state(config).values):
                    return False
                # Finished, but the server that holds the thread now lost its last steps
                # (asynchronous replication): resume it from what is there.
            except psycopg.Error:
                pass
            assert failover.promoted.wait(RUN_DEADLINE), "the standby was never promoted"
            while True:
                try:
                    started = saver.get_tuple(config) is not None
                    graph.invoke(None if started else START_INPUT, config)
                    if finished(graph.get_state(config).values):
                        return True
                except psycopg.Error:
                    # A pooled connection to the dead primary; the pool drops it.
                    assert time.monotonic() < deadline, f"run {thread_id} never finished"

        killer = threading.Thread(target=failover.run, daemon=True)
        killer.start()
        with ThreadPoolExecutor(RUNS) as pool:
            futures = [pool.submit(one_run, uuid.uuid4().hex) for _ in range(RUNS)]
            outcome.resumed = sum(f.result(timeout=RUN_DEADLINE) for f in futures)
        killer.join(30)
        assert failover.promoted.is_set()
    outcome.recovery = failover.recovery()
    outcome.down, outcome.promotion = failover.timings()
    outcome.lost = lost(ledger, pair.standby.dsn(pair.dbname))
    outcome.acknowledged = ledger.size()
    return outcome, failover


async def run_async_scenario(pair: Pair, mode: str, retry: RetryPolicy) -> Outcome:
    ledger, outcome = Ledger(), Outcome()
    failover = Failover(pair, ledger, mode)
    async with (
        AsyncLedgerSaver.from_conn_string(pair.dsn, retry=retry, pool_size=RUNS) as saver,
        AsyncPostgresStore.from_conn_string(
            pair.dsn, retry=retry, pool_config={"max_size": RUNS}
        ) as store,
    ):
        saver.ledger = ledger
        await saver.setup()
        await store.setup()
        graph = async_agent(store, ledger).compile(checkpointer=saver)

        async def one_run(thread_id: str) -> bool:
            config: RunnableConfig = {"configurable": {"thread_id": thread_id}}
            deadline = time.monotonic() + RUN_DEADLINE
            try:
                await graph.ainvoke(START_INPUT, config)
                if finished((await graph.aget_state(config)).values):
                    return False
            except psycopg.Error:
                pass
            assert await asyncio.to_thread(failover.promoted.wait, RUN_DEADLINE)
            while True:
                try:
                    started = await saver.aget_tuple(config) is not None
                    await graph.ainvoke(None if started else START_INPUT, config)
                    if finished((await graph.aget_state(config)).values):
                        return True
                except psycopg.Error:
                    assert time.monotonic() < deadline, f"run {thread_id} never finished"

        killer = threading.Thread(target=failover.run, daemon=True)
        killer.start()
        runs = [one_run(uuid.uuid4().hex) for _ in range(RUNS)]
        results = await asyncio.wait_for(asyncio.gather(*runs), RUN_DEADLINE)
        outcome.resumed = sum(results)
        await asyncio.to_thread(killer.join, 30)
        assert failover.promoted.is_set()
    outcome.recovery = failover.recovery()
    outcome.down, outcome.promotion = failover.timings()
    outcome.lost = lost(ledger, pair.standby.dsn(pair.dbname))
    outcome.acknowledged = ledger.size()
    return outcome


NOTHING_LOST = {"checkpoints": set(), "writes": set(), "items": set()}


# -- synchronous replication: nothing acknowledged is lost ----------------------------------


@pytest.mark.parametrize("mode", ["fast", "immediate"])
def test_runs_ride_through_a_failover_and_nothing_acknowledged_is_lost(
    sync_pair: Pair, mode: str
) -> None:
    outcome, _ = run_sync_scenario(sync_pair, mode, RIDE_THROUGH)
    report(f"sync saver+store, stop -m {mode}, retries ride through", outcome)
    assert outcome.lost == NOTHING_LOST
    assert outcome.resumed == 0  # the retries carried every run across
    assert outcome.recovery is not None


def test_runs_on_the_default_connection_ride_through_a_failover(sync_pair: Pair) -> None:
    """The one connection `from_conn_string` opened is replaced by one to the new primary."""
    outcome, _ = run_sync_scenario(sync_pair, "immediate", RIDE_THROUGH, pooled=False)
    report("sync saver+store on one connection each, stop -m immediate", outcome)
    assert outcome.lost == NOTHING_LOST
    assert outcome.resumed == 0
    assert outcome.recovery is not None


@pytest.mark.parametrize("mode", ["fast", "immediate"])
def test_runs_cut_by_a_failover_resume_from_their_last_checkpoint(
    sync_pair: Pair, mode: str
) -> None:
    outcome, _ = run_sync_scenario(sync_pair, mode, NO_RETRY)
    report(f"sync saver+store, stop -m {mode}, no retries, runs re-invoked", outcome)
    assert outcome.lost == NOTHING_LOST
    assert outcome.resumed > 0  # the failover did cut runs short, and they resumed


@pytest.mark.parametrize("mode", ["fast", "immediate"])
async def test_async_runs_survive_a_failover_and_nothing_acknowledged_is_lost(
    sync_pair: Pair, mode: str
) -> None:
    outcome = await run_async_scenario(sync_pair, mode, RIDE_THROUGH)
    report(f"async saver+store, stop -m {mode}, retries ride through", outcome)
    assert outcome.lost == NOTHING_LOST
    assert outcome.recovery is not None


async def test_async_runs_cut_by_a_failover_resume(sync_pair: Pair) -> None:
    outcome = await run_async_scenario(sync_pair, "immediate", NO_RETRY)
    report("async saver+store, stop -m immediate, no retries, runs re-invoked", outcome)
    assert outcome.lost == NOTHING_LOST
    assert outcome.resumed > 0


# -- asynchronous replication: what can be lost ------------------------------------------------


def test_async_replication_loses_what_a_lagging_standby_had_not_received(
    async_pair: Pair,
) -> None:
    """The window, made visible: the primary's WAL sender is frozen for `stall` seconds, the
    primary keeps acknowledging (nobody waits for the standby), then the machine dies
    (SIGKILL to every process). What the clients were told during the stall is gone from the
    new primary, and nothing older is. With synchronous replication the same stall would have
    held the commits, not lost them."""
    stall = 0.1
    outcome, failover = run_sync_scenario(async_pair, "crash", RIDE_THROUGH, stall=stall)
    report(f"ASYNC replication, standby {stall}s behind, primary SIGKILLed", outcome)
    gone = [entry for entries in outcome.lost.values() for entry in entries]
    assert gone, "the primary acknowledged writes the standby never received: they are lost"
    # The WAL sender trails the commits it sends by a moment: what was acknowledged just
    # before it froze may still have been unsent. Nothing older than that moment is lost.
    in_flight = 0.05
    acked_at = failover.ledger.acked_at
    assert all(acked_at[entry] >= failover.stalled_at - in_flight for entry in gone)
    print(f"FAILOVER window: lost {len(gone)} writes acknowledged in the last {stall}s")


@pytest.mark.parametrize("mode", ["fast", "immediate"])
def test_async_replication_window_when_the_standby_keeps_up(async_pair: Pair, mode: str) -> None:
    """Measures, does not assert: an idle, local standby is milliseconds behind; what the
    primary acknowledged in that lag is what a crash loses. ``fast`` sends the standby all
    WAL before the primary exits, so only a crash (``immediate``) can lose anything."""
    outcome, failover = run_sync_scenario(async_pair, mode, RIDE_THROUGH)
    report(f"ASYNC replication, stop -m {mode}, lag {failover.lag_bytes} bytes", outcome)
    if mode == "fast":
        assert outcome.lost == NOTHING_LOST
