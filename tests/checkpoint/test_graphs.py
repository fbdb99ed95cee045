"""Real LangGraph graphs, end to end, on both savers and a real database.

Every test runs twice: a sync `PostgresSaver` driven by `graph.invoke`, and an
`AsyncPostgresSaver` driven by `await graph.ainvoke`. Nodes are plain Python (no LLM), so
each test asserts exact outcomes: final state, history, what is stored.
"""

from __future__ import annotations

import operator
from collections.abc import AsyncIterator, Mapping, Sequence
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from dataclasses import dataclass
from typing import Annotated, Any, Literal, TypedDict

import psycopg
import pytest
from langchain_core.messages import AIMessage, AnyMessage, HumanMessage
from langchain_core.runnables import RunnableConfig
from langgraph.channels.delta import DeltaChannel
from langgraph.checkpoint.base import BaseCheckpointSaver, CheckpointTuple, DeltaChannelHistory
from langgraph.checkpoint.serde.base import SerializerProtocol
from langgraph.checkpoint.serde.encrypted import EncryptedSerializer
from langgraph.graph import END, START, StateGraph
from langgraph.graph.message import add_messages
from langgraph.graph.state import CompiledStateGraph
from langgraph.types import Command, Durability, Send, StateSnapshot, interrupt

from checkpoint_pg import AsyncPostgresSaver, PostgresSaver
from checkpoint_pg._delta import decode_delta, is_delta
from tests.checkpoint.conftest import test_storage

Builder = StateGraph[Any, Any, Any, Any]
Graph = CompiledStateGraph[Any, Any, Any, Any]
Flavour = Literal["sync", "async"]

# --------------------------------------------------------------------------------------------
# Runner: one object per flavour, so each test is written once and runs both ways.
# --------------------------------------------------------------------------------------------


@dataclass
class Runner:
    """Drive graphs the way one kind of user does: sync saver + invoke, or async + ainvoke."""

    flavour: Flavour
    saver: PostgresSaver | AsyncPostgresSaver
    dsn: str
    serde: SerializerProtocol | None = None

    @property
    def is_sync(self) -> bool:
        return self.flavour == "sync"

    def compile(self, builder: Builder, **kwargs: Any) -> Graph:
        return builder.compile(checkpointer=self.saver, **kwargs)

    def reopen(self) -> AbstractAsyncContextManager[Runner]:
        """A runner of the same flavour on a new saver and connection, as after a restart."""
        return open_runner(self.flavour, self.dsn, serde=self.serde)

    async def invoke(self, graph: Graph, input: Any, config: RunnableConfig, **kw: Any) -> Any:
        if self.is_sync:
            return graph.invoke(input, config, **kw)
        return await graph.ainvoke(input, config, **kw)

    async def get_state(
        self, graph: Graph, config: RunnableConfig, *, subgraphs: bool = False
    ) -> StateSnapshot:
        if self.is_sync:
            return graph.get_state(config, subgraphs=subgraphs)
        return await graph.aget_state(config, subgraphs=subgraphs)

    async def history(self, graph: Graph, config: RunnableConfig) -> list[StateSnapshot]:
        if self.is_sync:
            return list(graph.get_state_history(config))
        return [s async for s in graph.aget_state_history(config)]

    async def update_state(
        self, graph: Graph, config: RunnableConfig, values: Any, as_node: str | None = None
    ) -> RunnableConfig:
        if self.is_sync:
            return graph.update_state(config, values, as_node=as_node)
        return await graph.aupdate_state(config, values, as_node=as_node)

    async def checkpoints(self, config: RunnableConfig) -> list[CheckpointTuple]:
        """The saver's own listing, newest first."""
        if isinstance(self.saver, PostgresSaver):
            return list(self.saver.list(config))
        return [t async for t in self.saver.alist(config)]

    async def prune(self, thread_ids: Sequence[str], strategy: str) -> None:
        if isinstance(self.saver, PostgresSaver):
            self.saver.prune(thread_ids, strategy=strategy)
        else:
            await self.saver.aprune(thread_ids, strategy=strategy)

    async def delta_history(
        self, config: RunnableConfig, channels: Sequence[str]
    ) -> Mapping[str, DeltaChannelHistory]:
        if isinstance(self.saver, PostgresSaver):
            return self.saver.get_delta_channel_history(config=config, channels=channels)
        return await self.saver.aget_delta_channel_history(config=config, channels=channels)

    async def generic_delta_history(
        self, config: RunnableConfig, channels: Sequence[str]
    ) -> Mapping[str, DeltaChannelHistory]:
        """LangGraph's reference implementation: a walk of `get_tuple` along parents."""
        if isinstance(self.saver, PostgresSaver):
            return BaseCheckpointSaver.get_delta_channel_history(
                self.saver, config=config, channels=channels
            )
        return await BaseCheckpointSaver.aget_delta_channel_history(
            self.saver, config=config, channels=channels
        )


@asynccontextmanager
async def open_runner(
    flavour: Flavour, dsn: str, *, serde: SerializerProtocol | None = None
) -> AsyncIterator[Runner]:
    if flavour == "sync":
        with PostgresSaver.from_conn_string(dsn, serde=serde, storage=test_storage()) as saver:
            saver.setup()
            yield Runner(flavour, saver, dsn, serde)
    else:
        async with AsyncPostgresSaver.from_conn_string(
            dsn, serde=serde, storage=test_storage()
        ) as asaver:
            await asaver.setup()
            yield Runner(flavour, asaver, dsn, serde)


@pytest.fixture(params=["sync", "async"])
def flavour(request: pytest.FixtureRequest) -> Flavour:
    return request.param  # type: ignore[no-any-return]


@pytest.fixture
async def runner(flavour: Flavour, dsn: str) -> AsyncIterator[Runner]:
    async with open_runner(flavour, dsn) as r:
        yield r


def thread(thread_id: str, **configurable: Any) -> RunnableConfig:
    return {"configurable": {"thread_id": thread_id, **configurable}}


def root(thread_id: str) -> RunnableConfig:
    """The thread's root namespace only (listing without a namespace returns every one)."""
    return thread(thread_id, checkpoint_ns="")


# --------------------------------------------------------------------------------------------
# Graphs
# --------------------------------------------------------------------------------------------


class ChatState(TypedDict):
    messages: Annotated[list[AnyMessage], add_messages]


def echo_bot() -> Builder:
    def respond(state: ChatState) -> dict[str, Any]:
        return {"messages": [AIMessage(content=f"echo: {state['messages'][-1].content}")]}

    builder = StateGraph(ChatState)
    builder.add_node("respond", respond)
    builder.add_edge(START, "respond")
    builder.add_edge("respond", END)
    return builder


def contents(state: Mapping[str, Any]) -> list[str]:
    return [str(m.content) for m in state["messages"]]


class LogState(TypedDict):
    log: Annotated[list[str], operator.add]


def pipeline(*names: str) -> Builder:
    """START -> names[0] -> ... -> END, each node appending its name to `log`."""
    builder = StateGraph(LogState)
    previous = START
    for name in names:
        builder.add_node(name, lambda _state, name=name: {"log": [name]})
        builder.add_edge(previous, name)
        previous = name
    builder.add_edge(previous, END)
    return builder


def approval_graph() -> Builder:
    """draft -> ask (interrupts for an answer) -> END."""

    def ask(state: LogState) -> dict[str, Any]:
        answer = interrupt({"question": "publish?", "draft": state["log"][-1]})
        return {"log": [f"answer:{answer}"]}

    builder = StateGraph(LogState)
    builder.add_node("draft", lambda _s: {"log": ["draft"]})
    builder.add_node("ask", ask)
    builder.add_edge(START, "draft")
    builder.add_edge("draft", "ask")
    builder.add_edge("ask", END)
    return builder


def parent_with_subgraph() -> Builder:
    """before -> sub (child: step -> ask, which interrupts) -> after."""

    def ask(state: LogState) -> dict[str, Any]:
        return {"log": [f"child-answer:{interrupt('child question')}"]}

    child = StateGraph(LogState)
    child.add_node("step", lambda _s: {"log": ["child-step"]})
    child.add_node("ask", ask)
    child.add_edge(START, "step")
    child.add_edge("step", "ask")
    child.add_edge("ask", END)

    parent = StateGraph(LogState)
    parent.add_node("before", lambda _s: {"log": ["before"]})
    parent.add_node("sub", child.compile())
    parent.add_node("after", lambda _s: {"log": ["after"]})
    parent.add_edge(START, "before")
    parent.add_edge("before", "sub")
    parent.add_edge("sub", "after")
    parent.add_edge("after", END)
    return parent


class MapState(TypedDict):
    topics: list[str]
    results: Annotated[list[str], operator.add]
    summary: str


class TopicState(TypedDict):
    topic: str


def map_reduce(calls: dict[str, int] | None = None, ask_on: str | None = None) -> Builder:
    """START =Send per topic=> work -> summarize. `ask_on` names a topic whose branch interrupts."""

    def fan_out(state: MapState) -> list[Send]:
        return [Send("work", {"topic": t}) for t in state["topics"]]

    def work(state: TopicState) -> dict[str, Any]:
        topic = state["topic"]
        if calls is not None:
            calls[topic] = calls.get(topic, 0) + 1
        suffix = f"({interrupt(f'check {topic}')})" if topic == ask_on else ""
        return {"results": [topic.upper() + suffix]}

    def summarize(state: MapState) -> dict[str, Any]:
        return {"summary": ",".join(sorted(state["results"]))}

    builder = StateGraph(MapState)
    builder.add_node("work", work)
    builder.add_node("summarize", summarize)
    builder.add_conditional_edges(START, fan_out, ["work"])
    builder.add_edge("work", "summarize")
    builder.add_edge("summarize", END)
    return builder


# --------------------------------------------------------------------------------------------
# 1. Multi-turn threads
# --------------------------------------------------------------------------------------------


async def test_second_turn_on_a_thread_sees_the_first_turns_messages(runner: Runner) -> None:
    graph = runner.compile(echo_bot())
    config = thread("chat")

    await runner.invoke(graph, {"messages": [HumanMessage("hi")]}, config)
    result = await runner.invoke(graph, {"messages": [HumanMessage("again")]}, config)

    expected = ["hi", "echo: hi", "again", "echo: again"]
    assert contents(result) == expected
    assert contents((await runner.get_state(graph, config)).values) == expected


async def test_threads_do_not_share_state(runner: Runner) -> None:
    graph = runner.compile(echo_bot())

    await runner.invoke(graph, {"messages": [HumanMessage("one")]}, thread("a"))
    result = await runner.invoke(graph, {"messages": [HumanMessage("two")]}, thread("b"))

    assert contents(result) == ["two", "echo: two"]
    assert contents((await runner.get_state(graph, thread("a"))).values) == ["one", "echo: one"]


# --------------------------------------------------------------------------------------------
# 2. interrupt() and Command(resume=...)
# --------------------------------------------------------------------------------------------


async def test_interrupt_is_pending_in_state_until_resumed(runner: Runner) -> None:
    graph = runner.compile(approval_graph())
    config = thread("approval")

    result = await runner.invoke(graph, {"log": []}, config)

    assert [i.value for i in result["__interrupt__"]] == [
        {"question": "publish?", "draft": "draft"}
    ]
    state = await runner.get_state(graph, config)
    assert state.values == {"log": ["draft"]}
    assert state.next == ("ask",)
    assert [i.value for i in state.interrupts] == [{"question": "publish?", "draft": "draft"}]
    assert [i.id for i in state.interrupts] == [i.id for i in result["__interrupt__"]]


async def test_interrupted_run_resumes_with_command_resume(runner: Runner) -> None:
    graph = runner.compile(approval_graph())
    config = thread("approval")
    await runner.invoke(graph, {"log": []}, config)

    result = await runner.invoke(graph, Command(resume="yes"), config)

    assert result == {"log": ["draft", "answer:yes"]}
    state = await runner.get_state(graph, config)
    assert state.values == {"log": ["draft", "answer:yes"]}
    assert state.next == ()
    assert state.interrupts == ()


async def test_interrupted_run_resumes_on_a_new_saver_after_a_restart(runner: Runner) -> None:
    await runner.invoke(runner.compile(approval_graph()), {"log": []}, thread("approval"))

    async with runner.reopen() as restarted:
        graph = restarted.compile(approval_graph())
        result = await restarted.invoke(graph, Command(resume="later"), thread("approval"))

    assert result == {"log": ["draft", "answer:later"]}


# --------------------------------------------------------------------------------------------
# 3. Subgraphs
# --------------------------------------------------------------------------------------------


async def test_interrupted_subgraph_state_is_visible_with_subgraphs_true(runner: Runner) -> None:
    graph = runner.compile(parent_with_subgraph())
    config = thread("nested")
    await runner.invoke(graph, {"log": []}, config)

    state = await runner.get_state(graph, config, subgraphs=True)

    assert state.next == ("sub",)
    assert state.values == {"log": ["before"]}
    [task] = state.tasks
    assert task.name == "sub"
    assert isinstance(task.state, StateSnapshot)
    assert task.state.values == {"log": ["before", "child-step"]}
    assert task.state.next == ("ask",)
    assert [i.value for i in task.state.interrupts] == ["child question"]
    assert task.state.config["configurable"]["checkpoint_ns"].startswith("sub:")


async def test_subgraph_checkpoints_are_saved_under_their_own_namespace(runner: Runner) -> None:
    graph = runner.compile(parent_with_subgraph())
    await runner.invoke(graph, {"log": []}, thread("nested"))
    sub_state = (await runner.get_state(graph, thread("nested"), subgraphs=True)).tasks[0].state
    assert isinstance(sub_state, StateSnapshot)
    ns = sub_state.config["configurable"]["checkpoint_ns"]

    every_ns = {
        t.config["configurable"]["checkpoint_ns"]
        for t in await runner.checkpoints(thread("nested"))
    }
    in_sub = await runner.checkpoints(thread("nested", checkpoint_ns=ns))

    assert every_ns == {"", ns}
    assert in_sub
    assert {t.config["configurable"]["checkpoint_ns"] for t in in_sub} == {ns}
    assert in_sub[0].checkpoint["channel_values"]["log"] == ["before", "child-step"]


async def test_resumed_subgraph_finishes_and_the_parent_continues(runner: Runner) -> None:
    graph = runner.compile(parent_with_subgraph())
    config = thread("nested")
    await runner.invoke(graph, {"log": []}, config)

    result = await runner.invoke(graph, Command(resume="ok"), config)

    expected = ["before", "before", "child-step", "child-answer:ok", "after"]
    assert result == {"log": expected}
    state = await runner.get_state(graph, config, subgraphs=True)
    assert state.values == {"log": expected}
    assert state.next == ()
    assert state.tasks == ()


# --------------------------------------------------------------------------------------------
# 4. Send fan-out
# --------------------------------------------------------------------------------------------


async def test_send_fan_out_reduces_every_branch(runner: Runner) -> None:
    graph = runner.compile(map_reduce())
    config = thread("map")

    result = await runner.invoke(graph, {"topics": ["cats", "dogs", "owls"]}, config)

    assert sorted(result["results"]) == ["CATS", "DOGS", "OWLS"]
    assert result["summary"] == "CATS,DOGS,OWLS"
    assert (await runner.get_state(graph, config)).values == result


async def test_resuming_a_fan_out_reruns_only_the_interrupted_branch(runner: Runner) -> None:
    calls: dict[str, int] = {}
    graph = runner.compile(map_reduce(calls, ask_on="dogs"))
    config = thread("map")
    await runner.invoke(graph, {"topics": ["cats", "dogs", "owls"]}, config)

    result = await runner.invoke(graph, Command(resume="fine"), config)

    assert result["summary"] == "CATS,DOGS(fine),OWLS"
    assert calls == {"cats": 1, "dogs": 2, "owls": 1}


# --------------------------------------------------------------------------------------------
# 5. update_state
# --------------------------------------------------------------------------------------------


async def test_run_continues_from_state_edited_with_update_state(runner: Runner) -> None:
    builder = StateGraph(LogState)
    builder.add_node("draft", lambda _s: {"log": ["draft"]})
    builder.add_node("publish", lambda s: {"log": [f"published:{s['log'][-1]}"]})
    builder.add_edge(START, "draft")
    builder.add_edge("draft", "publish")
    builder.add_edge("publish", END)
    graph = runner.compile(builder, interrupt_before=["publish"])
    config = thread("edit")
    await runner.invoke(graph, {"log": []}, config)
    assert (await runner.get_state(graph, config)).next == ("publish",)

    await runner.update_state(graph, config, {"log": ["edited"]}, as_node="draft")
    result = await runner.invoke(graph, None, config)

    assert result == {"log": ["draft", "edited", "published:edited"]}
    sources = [s.metadata["source"] for s in await runner.history(graph, config) if s.metadata]
    assert sources == ["loop", "update", "loop", "loop", "input"]


# --------------------------------------------------------------------------------------------
# 6. Time travel
# --------------------------------------------------------------------------------------------


async def test_invoking_from_a_past_checkpoint_forks_the_thread(runner: Runner) -> None:
    graph = runner.compile(echo_bot())
    config = thread("travel")
    await runner.invoke(graph, {"messages": [HumanMessage("one")]}, config)
    await runner.invoke(graph, {"messages": [HumanMessage("two")]}, config)
    original = await runner.history(graph, config)
    [after_turn_one] = [
        s for s in original if s.next == () and contents(s.values) == ["one", "echo: one"]
    ]

    forked = await runner.invoke(
        graph, {"messages": [HumanMessage("three")]}, after_turn_one.config
    )

    assert contents(forked) == ["one", "echo: one", "three", "echo: three"]
    latest = await runner.get_state(graph, config)
    assert contents(latest.values) == ["one", "echo: one", "three", "echo: three"]
    fork_chain = await runner.history(graph, config)
    fork_ids = [s.config["configurable"]["checkpoint_id"] for s in fork_chain]
    assert after_turn_one.config["configurable"]["checkpoint_id"] in fork_ids


async def test_forking_leaves_the_original_history_unchanged(runner: Runner) -> None:
    graph = runner.compile(echo_bot())
    config = thread("travel")
    await runner.invoke(graph, {"messages": [HumanMessage("one")]}, config)
    await runner.invoke(graph, {"messages": [HumanMessage("two")]}, config)
    original = await runner.history(graph, config)
    [after_turn_one] = [
        s for s in original if s.next == () and contents(s.values) == ["one", "echo: one"]
    ]

    await runner.invoke(graph, {"messages": [HumanMessage("three")]}, after_turn_one.config)

    every = {
        s.config["configurable"]["checkpoint_id"]: s for s in await runner.history(graph, config)
    }
    for past in original:
        kept = every[past.config["configurable"]["checkpoint_id"]]
        assert kept.values == past.values
        assert kept.next == past.next
        assert kept.parent_config == past.parent_config
    assert len(every) == len(original) + 3  # the fork's input, __start__ and respond steps
    old_tip = await runner.get_state(graph, original[0].config)
    assert contents(old_tip.values) == ["one", "echo: one", "two", "echo: two"]


async def test_replaying_a_past_checkpoint_reruns_the_following_nodes(runner: Runner) -> None:
    graph = runner.compile(pipeline("a", "b", "c"))
    config = thread("replay")
    await runner.invoke(graph, {"log": []}, config)
    [before_b] = [s for s in await runner.history(graph, config) if s.next == ("b",)]

    result = await runner.invoke(graph, None, before_b.config)

    assert result == {"log": ["a", "b", "c"]}
    latest = await runner.get_state(graph, config)
    assert latest.values == {"log": ["a", "b", "c"]}
    assert (
        latest.config["configurable"]["checkpoint_id"]
        != (before_b.config["configurable"]["checkpoint_id"])
    )


# --------------------------------------------------------------------------------------------
# 7. Durability modes
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize("durability", ["sync", "async", "exit"])
async def test_final_state_is_persisted_in_every_durability_mode(
    runner: Runner, durability: Durability
) -> None:
    graph = runner.compile(pipeline("a", "b", "c"))

    result = await runner.invoke(graph, {"log": []}, thread("d"), durability=durability)

    assert result == {"log": ["a", "b", "c"]}
    async with runner.reopen() as reader:
        state = await reader.get_state(reader.compile(pipeline("a", "b", "c")), thread("d"))
    assert state.values == {"log": ["a", "b", "c"]}
    assert state.next == ()


@pytest.mark.parametrize("durability", ["sync", "async", "exit"])
async def test_thread_continues_after_a_run_in_every_durability_mode(
    runner: Runner, durability: Durability
) -> None:
    graph = runner.compile(echo_bot())
    config = thread("d")

    await runner.invoke(graph, {"messages": [HumanMessage("one")]}, config, durability=durability)
    result = await runner.invoke(
        graph, {"messages": [HumanMessage("two")]}, config, durability=durability
    )

    assert contents(result) == ["one", "echo: one", "two", "echo: two"]


async def test_exit_durability_saves_fewer_checkpoints_than_sync(runner: Runner) -> None:
    graph = runner.compile(pipeline("a", "b", "c"))

    await runner.invoke(graph, {"log": []}, thread("sync"), durability="sync")
    await runner.invoke(graph, {"log": []}, thread("exit"), durability="exit")

    saved_sync = await runner.checkpoints(root("sync"))
    saved_exit = await runner.checkpoints(root("exit"))
    assert len(saved_sync) == 5  # input, __start__, then one per node
    assert 1 <= len(saved_exit) < len(saved_sync)
    assert saved_exit[0].checkpoint["channel_values"]["log"] == ["a", "b", "c"]


# --------------------------------------------------------------------------------------------
# 8. EncryptedSerializer
# --------------------------------------------------------------------------------------------

SECRET = "launch-code-0451-do-not-store-in-clear"
AES_KEY = b"0123456789abcdef"


def stored_bytes(dsn: str) -> list[bytes]:
    """Every serialized value the savers wrote: channel blobs and pending writes."""
    with psycopg.connect(dsn) as conn:
        blobs = conn.execute("SELECT blob FROM checkpoint_blobs WHERE blob IS NOT NULL").fetchall()
        writes = conn.execute("SELECT blob FROM checkpoint_writes").fetchall()
    return [bytes(b) for (b,) in blobs + writes]


def secret_graph() -> Builder:
    """The secret lives in a list so the saver stores it as a blob, not inline JSON."""

    def keep(state: LogState) -> dict[str, Any]:
        return {"log": [f"{SECRET}:{interrupt('confirm')}"]}

    builder = StateGraph(LogState)
    builder.add_node("keep", keep)
    builder.add_edge(START, "keep")
    builder.add_edge("keep", END)
    return builder


async def test_encrypted_graph_runs_and_resumes(flavour: Flavour, dsn: str) -> None:
    serde = EncryptedSerializer.from_pycryptodome_aes(key=AES_KEY)
    async with open_runner(flavour, dsn, serde=serde) as runner:
        graph = runner.compile(secret_graph())
        await runner.invoke(graph, {"log": [SECRET]}, thread("vault"))
    async with open_runner(flavour, dsn, serde=serde) as restarted:
        graph = restarted.compile(secret_graph())
        result = await restarted.invoke(graph, Command(resume="ok"), thread("vault"))
        state = await restarted.get_state(graph, thread("vault"))

    assert result == {"log": [SECRET, f"{SECRET}:ok"]}
    assert state.values == result


async def test_encrypted_blobs_do_not_contain_the_plaintext(flavour: Flavour, dsn: str) -> None:
    serde = EncryptedSerializer.from_pycryptodome_aes(key=AES_KEY)
    async with open_runner(flavour, dsn, serde=serde) as runner:
        graph = runner.compile(secret_graph())
        await runner.invoke(graph, {"log": [SECRET]}, thread("vault"))
        await runner.invoke(graph, Command(resume="ok"), thread("vault"))

    stored = stored_bytes(dsn)
    assert stored
    assert not [b for b in stored if SECRET.encode() in b]
    with psycopg.connect(dsn) as conn:
        rows = conn.execute(
            "SELECT type, blob FROM checkpoint_blobs"
            " UNION ALL SELECT type, blob FROM checkpoint_writes"
        ).fetchall()
    # A delta row (storage="delta") carries its new elements' own type inside the blob.
    types = {decode_delta(blob)[1] if is_delta(t) else t for t, blob in rows}
    assert {t for t in types if t != "empty" and not t.endswith("+aes")} == set()


async def test_default_serializer_blobs_contain_the_plaintext(runner: Runner) -> None:
    """Control for the test above: the probe does find the secret when it is stored clear."""
    graph = runner.compile(secret_graph())
    await runner.invoke(graph, {"log": [SECRET]}, thread("vault"))

    assert [b for b in stored_bytes(runner.dsn) if SECRET.encode() in b]


# --------------------------------------------------------------------------------------------
# 9. DeltaChannel
# --------------------------------------------------------------------------------------------


def extend(state: list[str], writes: Sequence[list[str]]) -> list[str]:
    """Batching-invariant list reducer, as DeltaChannel requires."""
    out = list(state)
    for w in writes:
        out.extend(w)
    return out


class DeltaState(TypedDict):
    log: Annotated[list[str], DeltaChannel(extend, snapshot_frequency=3)]


def delta_graph() -> Builder:
    def reply(state: DeltaState) -> dict[str, Any]:
        return {"log": [f"reply:{len(state['log'])}"]}

    builder = StateGraph(DeltaState)
    builder.add_node("reply", reply)
    builder.add_edge(START, "reply")
    builder.add_edge("reply", END)
    return builder


TURNS = 8


async def run_delta_turns(runner: Runner, graph: Graph, thread_id: str) -> list[list[str]]:
    """Run TURNS turns; returns the `log` after each turn."""
    seen = []
    for turn in range(TURNS):
        result = await runner.invoke(graph, {"log": [f"user:{turn}"]}, thread(thread_id))
        seen.append(result["log"])
    return seen


def expected_log(turns: int) -> list[str]:
    return [item for t in range(turns) for item in (f"user:{t}", f"reply:{2 * t + 1}")]


async def test_delta_channel_thread_accumulates_over_many_turns(runner: Runner) -> None:
    graph = runner.compile(delta_graph())

    seen = await run_delta_turns(runner, graph, "delta")

    assert seen == [expected_log(t + 1) for t in range(TURNS)]
    assert (await runner.get_state(graph, thread("delta"))).values == {"log": expected_log(TURNS)}


async def test_delta_channel_history_matches_the_generic_parent_walk(runner: Runner) -> None:
    graph = runner.compile(delta_graph())
    await run_delta_turns(runner, graph, "delta")
    saved = await runner.checkpoints(root("delta"))
    targets = [saved[i] for i in (0, 1, 4, 7, len(saved) // 2, -2, -1)]

    references = []
    for target in targets:
        ours = await runner.delta_history(target.config, ["log"])
        reference = await runner.generic_delta_history(target.config, ["log"])
        assert ours == reference, target.config["configurable"]["checkpoint_id"]
        references.append(reference["log"])
    # the targets exercise both a replay of writes and a snapshot seed
    assert any(r["writes"] for r in references)
    assert any("seed" in r for r in references)


async def test_delta_channel_state_of_older_checkpoints_is_rebuilt(runner: Runner) -> None:
    graph = runner.compile(delta_graph())
    await run_delta_turns(runner, graph, "delta")
    history = await runner.history(graph, thread("delta"))
    turn_ends = [s for s in history if s.next == () and s.metadata and s.metadata["step"] > 0]

    assert [s.values["log"] for s in turn_ends] == [expected_log(t) for t in range(TURNS, 0, -1)]


async def test_keep_latest_prune_keeps_the_delta_channel_state(runner: Runner) -> None:
    graph = runner.compile(delta_graph())
    await run_delta_turns(runner, graph, "delta")
    before = (await runner.get_state(graph, thread("delta"))).values

    await runner.prune(["delta"], strategy="keep_latest")

    assert (await runner.get_state(graph, thread("delta"))).values == before
    async with runner.reopen() as restarted:
        reread = await restarted.get_state(restarted.compile(delta_graph()), thread("delta"))
    assert reread.values == before


async def test_delta_channel_thread_continues_after_keep_latest_prune(runner: Runner) -> None:
    graph = runner.compile(delta_graph())
    await run_delta_turns(runner, graph, "delta")

    await runner.prune(["delta"], strategy="keep_latest")
    result = await runner.invoke(graph, {"log": [f"user:{TURNS}"]}, thread("delta"))

    assert result == {"log": expected_log(TURNS + 1)}
    assert (await runner.get_state(graph, thread("delta"))).values == result


async def test_keep_latest_prune_removes_checkpoints(runner: Runner) -> None:
    graph = runner.compile(delta_graph())
    await run_delta_turns(runner, graph, "delta")
    before = await runner.checkpoints(root("delta"))

    await runner.prune(["delta"], strategy="keep_latest")

    after = await runner.checkpoints(root("delta"))
    assert 1 <= len(after) < len(before)
    assert after[0].config == before[0].config
