"""In its default mode this package never stores more bytes than the official one.

Both savers write the same bytes; what reaches the disk is decided by the columns' TOAST
compression. The stored sizes (pg_column_size, after compression) of one chat thread are
compared, for each kind of message text the benchmarks use: prose-like text and word salad.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from typing import Any

import psycopg
import pytest
from langchain_core.messages import AIMessage, HumanMessage
from langgraph.checkpoint.base import BaseCheckpointSaver
from langgraph.checkpoint.postgres import PostgresSaver as OfficialSaver
from langgraph.graph import START, MessagesState, StateGraph
from psycopg.rows import dict_row

from benchmarks import data, prose
from checkpoint_pg import PostgresSaver
from tests.harness import DatabaseFactory

TURNS = 30
TEXTS: dict[str, Callable[[random.Random, int], str]] = {
    "prose": prose.text,
    "word salad": data.word_salad,
}
STORED_BYTES = """
SELECT (SELECT coalesce(sum(pg_column_size(blob)), 0) FROM checkpoint_blobs)
     + (SELECT coalesce(sum(pg_column_size(blob)), 0) FROM checkpoint_writes)
     + (SELECT coalesce(sum(pg_column_size(checkpoint) + pg_column_size(metadata)), 0)
        FROM checkpoints)
"""


def _chat_thread(
    saver: BaseCheckpointSaver[Any], text: Callable[[random.Random, int], str]
) -> None:
    def reply(state: MessagesState) -> dict[str, Any]:
        turn = len(state["messages"])
        return {"messages": [AIMessage(content=text(random.Random(f"ai{turn}"), 2_000))]}

    builder = StateGraph(MessagesState)
    builder.add_node("reply", reply)
    builder.add_edge(START, "reply")
    graph = builder.compile(checkpointer=saver)
    cfg: Any = {"configurable": {"thread_id": "chat"}}
    for turn in range(TURNS):
        human = HumanMessage(content=text(random.Random(f"human{turn}"), 200), id=f"h{turn}")
        graph.invoke({"messages": [human]}, cfg)


def _stored_bytes(
    dsn: str, make_saver: Callable[[Any], BaseCheckpointSaver[Any]], kind: str
) -> int:
    with psycopg.connect(dsn, autocommit=True, prepare_threshold=0, row_factory=dict_row) as conn:
        saver = make_saver(conn)
        saver.setup()  # type: ignore[attr-defined]
        _chat_thread(saver, TEXTS[kind])
        row = conn.execute(STORED_BYTES).fetchone()
    assert row is not None
    return int(next(iter(row.values())))


@pytest.mark.parametrize("kind", list(TEXTS))
def test_a_chat_thread_takes_no_more_stored_bytes_than_with_the_official_saver(
    dsn: str, db_factory: DatabaseFactory, kind: str
) -> None:
    with db_factory.schema() as official_dsn:
        official = _stored_bytes(official_dsn, OfficialSaver, kind)
    ours = _stored_bytes(dsn, PostgresSaver, kind)
    assert ours <= official
