"""Bytes on disk of one long chat thread, as it grows: ``python -m benchmarks.thread_growth``.

One `MessagesState` thread per participant, each in a schema of its own. A turn is a human
message and an agent reply; with ``--tools`` the agent first calls a tool and reads its
result, as an agent with tools does (four messages a turn). Text is prose-like
(`benchmarks.prose`) unless ``--text word-salad``. At each of the turn counts asked for, the
three checkpoint tables' size (heap, TOAST and indexes: pg_total_relation_size, less what the
empty tables took) is printed, as a markdown table row per participant.

Participants: ``official`` (langgraph-checkpoint-postgres), ``ours`` (checkpoint-pg's
default), ``ours-lz4`` (``compression="lz4"``), ``ours-delta`` (``storage="delta"``) and
``deltachannel`` (ours by default, the same graph with its messages in LangGraph's
`DeltaChannel`). With ``--latency``, after the last mark the thread's `get_tuple` (latest)
and a `put` of a child checkpoint with one more message are timed (``--samples`` each; p50).
With ``--convert N``, N threads of the largest turn count are written in the official format
and converted with ``checkpoint-pg convert-storage`` to delta storage and back: threads/s.
"""

from __future__ import annotations

import argparse
import json
import random
import shutil
import statistics
import subprocess
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from typing import Annotated, Any

import psycopg
from langchain_core.messages import AIMessage, HumanMessage, ToolMessage
from langgraph.channels.delta import DeltaChannel
from langgraph.checkpoint.base import BaseCheckpointSaver
from langgraph.checkpoint.base.id import uuid6
from langgraph.graph import START, MessagesState, StateGraph
from langgraph.graph.message import add_messages
from psycopg.rows import dict_row
from typing_extensions import TypedDict

from benchmarks import data, prose
from benchmarks.workloads.agent_loop import checkpoint_tables_bytes

__all__ = ["PARTICIPANTS", "build_chat", "main", "measure"]

TEXTS: dict[str, Callable[[random.Random, int], str]] = {
    "prose": prose.text,
    "word-salad": data.word_salad,
}


def _official(conn: psycopg.Connection[Any]) -> BaseCheckpointSaver[Any]:
    from langgraph.checkpoint.postgres import PostgresSaver

    return PostgresSaver(conn)


def _ours(**options: Any) -> Callable[[psycopg.Connection[Any]], BaseCheckpointSaver[Any]]:
    def make(conn: psycopg.Connection[Any]) -> BaseCheckpointSaver[Any]:
        from checkpoint_pg import PostgresSaver

        return PostgresSaver(conn, **options)

    return make


PARTICIPANTS: dict[str, Callable[[psycopg.Connection[Any]], BaseCheckpointSaver[Any]]] = {
    "official": _official,
    "ours": _ours(),
    "ours-lz4": _ours(compression="lz4"),
    "ours-delta": _ours(storage="delta"),
    "deltachannel": _ours(),
}


def _add_batches(state: list[Any] | None, writes: list[Any]) -> list[Any]:
    """`add_messages` over a batch of writes, as `DeltaChannel` calls its reducer."""
    out: Any = state or []
    for write in writes:
        out = add_messages(out, write)
    return list(out)


class DeltaMessagesState(TypedDict):
    """`MessagesState` with its messages in LangGraph's DeltaChannel (beta)."""

    messages: Annotated[list[Any], DeltaChannel(_add_batches)]


def build_chat(
    saver: BaseCheckpointSaver[Any],
    text: Callable[[random.Random, int], str],
    tools: bool,
    state: type[Any] = MessagesState,
) -> Any:
    """The chat graph: ``agent`` (and with `tools`, a tool round trip first)."""

    def agent(state: Any) -> dict[str, Any]:
        n = len(state["messages"])
        last = state["messages"][-1]
        if tools and isinstance(last, HumanMessage):
            call = {"name": "search", "args": {"query": text(random.Random(n), 60)}, "id": f"c{n}"}
            return {
                "messages": [
                    AIMessage(content=text(random.Random(f"a{n}"), 200), tool_calls=[call])
                ]
            }
        return {"messages": [AIMessage(content=text(random.Random(f"a{n}"), 2_000))]}

    def tool(state: Any) -> dict[str, Any]:
        n = len(state["messages"])
        call_id = state["messages"][-1].tool_calls[0]["id"]
        return {
            "messages": [
                ToolMessage(content=text(random.Random(f"t{n}"), 1_000), tool_call_id=call_id)
            ]
        }

    def route(state: Any) -> str:
        last = state["messages"][-1]
        return "tool" if isinstance(last, AIMessage) and last.tool_calls else "__end__"

    builder = StateGraph(state)
    builder.add_node("agent", agent)
    builder.add_node("tool", tool)
    builder.add_edge(START, "agent")
    builder.add_conditional_edges("agent", route, ["tool", "__end__"])
    builder.add_edge("tool", "agent")
    return builder.compile(checkpointer=saver)


@contextmanager
def _schema(dsn: str, name: str) -> Iterator[psycopg.Connection[Any]]:
    with psycopg.connect(dsn, autocommit=True, prepare_threshold=0, row_factory=dict_row) as conn:
        conn.execute(f'DROP SCHEMA IF EXISTS "{name}" CASCADE')
        conn.execute(f'CREATE SCHEMA "{name}"')
        conn.execute(f'SET search_path = "{name}"')
        try:
            yield conn
        finally:
            conn.execute(f'DROP SCHEMA IF EXISTS "{name}" CASCADE')


def latencies(saver: BaseCheckpointSaver[Any], cfg: Any, samples: int) -> tuple[float, float]:
    """p50 seconds of `get_tuple` (latest) and of `put` of a child with one more message."""
    gets, puts = [], []
    for i in range(samples):
        start = time.perf_counter()
        latest = saver.get_tuple(cfg)
        gets.append(time.perf_counter() - start)
        assert latest is not None
        checkpoint: Any = {**latest.checkpoint, "id": str(uuid6(clock_seq=i))}
        values = dict(checkpoint["channel_values"])
        values["messages"] = [*values["messages"], HumanMessage(f"sample {i}", id=f"s{i}")]
        version = saver.get_next_version(checkpoint["channel_versions"]["messages"], None)
        checkpoint["channel_values"] = values
        checkpoint["channel_versions"] = {**checkpoint["channel_versions"], "messages": version}
        start = time.perf_counter()
        saver.put(
            latest.config, checkpoint, {"source": "update", "step": -2}, {"messages": version}
        )
        puts.append(time.perf_counter() - start)
    return statistics.median(gets), statistics.median(puts)


def measure(
    dsn: str,
    participant: str,
    marks: Sequence[int],
    text: str,
    tools: bool,
    report: dict[str, float] | None = None,
) -> Iterator[tuple[int, int, float]]:
    """(turns, bytes, seconds of the last turn) at each mark of one participant's thread; with
    `report`, the latencies after the last mark go into it."""
    with _schema(dsn, f"growth_{participant.replace('-', '_')}") as conn:
        saver = PARTICIPANTS[participant](conn)
        saver.setup()  # type: ignore[attr-defined]
        baseline = checkpoint_tables_bytes(conn)
        state = DeltaMessagesState if participant == "deltachannel" else MessagesState
        graph = build_chat(saver, TEXTS[text], tools, state)
        cfg: Any = {"configurable": {"thread_id": "chat"}, "recursion_limit": 10}
        for turn in range(1, max(marks) + 1):
            human = HumanMessage(content=TEXTS[text](random.Random(f"h{turn}"), 200))
            start = time.perf_counter()
            graph.invoke({"messages": [human]}, cfg)
            seconds = time.perf_counter() - start
            if turn in marks:
                yield turn, checkpoint_tables_bytes(conn) - baseline, seconds
        if report is not None and participant != "deltachannel":
            report["get_tuple"], report["put"] = latencies(saver, cfg, int(report["samples"]))


def conversion(dsn: str, threads: int, turns: int, text: str, tools: bool) -> dict[str, Any]:
    """Threads per second of `convert-storage` to delta and back, over `threads` threads."""
    from checkpoint_pg import PostgresSaver

    with _schema(dsn, "growth_convert") as conn:
        saver = PostgresSaver(conn)
        saver.setup()
        graph = build_chat(saver, TEXTS[text], tools)
        for t in range(threads):
            cfg: Any = {"configurable": {"thread_id": f"c{t:04}"}, "recursion_limit": 10}
            for turn in range(turns):
                human = HumanMessage(content=TEXTS[text](random.Random(f"h{turn}"), 200))
                graph.invoke({"messages": [human]}, cfg)
        before = checkpoint_tables_bytes(conn)
        command = shutil.which("checkpoint-pg") or f"{sys.prefix}/bin/checkpoint-pg"
        out: dict[str, Any] = {"threads": threads, "turns": turns, "bytes_official": before}
        for target in ("delta", "official"):
            args = ["convert-storage", "--dsn", dsn, "--schema", "growth_convert", "--to", target]
            run = subprocess.run(  # noqa: S603 - our own command, fixed arguments
                [command, *args, "--json"],
                capture_output=True,
                text=True,
                check=True,
            )
            out[target] = json.loads(run.stdout)
            if target == "delta":
                conn.execute("VACUUM FULL checkpoint_blobs")
                out["bytes_delta"] = checkpoint_tables_bytes(conn)
        return out


def plot(data_path: str, png_path: str) -> None:
    """Draw MiB against turns, one line per participant, from a JSON file of
    ``{"turns": [...], "mib": {participant: [...]}}`` (measured values, as RESULTS.md gives
    them)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    with open(data_path, encoding="utf-8") as f:
        data = json.load(f)
    fig, (left, right) = plt.subplots(1, 2, figsize=(12, 4.5))
    for i, (participant, values) in enumerate(data["mib"].items()):
        left.plot(data["turns"], values, marker="o", label=participant, color=f"C{i}")
        if max(values) < 100:  # the small ones again, on a linear scale
            right.plot(data["turns"], values, marker="o", label=participant, color=f"C{i}")
    left.set_yscale("log")
    left.set_title("all, log scale")
    right.set_title("under 100 MiB, linear scale")
    for ax in (left, right):
        ax.set_xlabel("turns (human message, tool call, tool result, reply)")
        ax.set_ylabel("MiB on disk (checkpoint tables)")
        ax.grid(True, which="both", alpha=0.3)
        ax.legend(fontsize="small")
    fig.suptitle(data.get("title", "bytes per thread"))
    fig.tight_layout()
    fig.savefig(png_path, dpi=100)


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dsn", required=True)
    parser.add_argument("--turns", default="10,100,300", help="comma-separated turn counts")
    parser.add_argument("--participants", default=",".join(PARTICIPANTS))
    parser.add_argument("--text", choices=list(TEXTS), default="prose")
    parser.add_argument("--tools", action="store_true", help="a tool round trip every turn")
    parser.add_argument("--latency", action="store_true", help="time get_tuple and put at the end")
    parser.add_argument("--samples", type=int, default=30)
    parser.add_argument("--convert", type=int, default=0, help="threads to convert (0: none)")
    parser.add_argument("--plot-from", nargs=2, metavar=("JSON", "PNG"), help="draw and exit")
    args = parser.parse_args(argv)
    if args.plot_from:
        plot(*args.plot_from)
        return
    marks = sorted(int(t) for t in args.turns.split(","))
    if args.convert:
        print(json.dumps(conversion(args.dsn, args.convert, max(marks), args.text, args.tools)))
        return
    extra = " get_tuple p50 | put p50 |" if args.latency else ""
    print(f"| participant | {' | '.join(f'{t} turns' for t in marks)} |{extra}")
    print(f"|---|{'---|' * len(marks)}{'---|---|' if args.latency else ''}")
    for participant in args.participants.split(","):
        report = {"samples": float(args.samples)} if args.latency else None
        cells = [
            f"{size / 2**20:.2f} MiB ({seconds * 1000:.0f} ms/turn)"
            for _, size, seconds in measure(
                args.dsn, participant, marks, args.text, args.tools, report
            )
        ]
        if report is not None:
            cells += [f"{report.get(k, float('nan')) * 1000:.2f} ms" for k in ("get_tuple", "put")]
        print(f"| {participant} | {' | '.join(cells)} |", flush=True)


if __name__ == "__main__":
    main()
