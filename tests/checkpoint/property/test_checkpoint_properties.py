"""Property: any checkpoint, metadata and writes read back from `PostgresSaver` exactly as
LangGraph's `InMemorySaver` reads them back (same serializer, so the same values, types
included: NaN, infinities, -0.0, bytes, NUL and lone surrogates in strings).

Hypothesis and function-scoped fixtures: one saver (one schema) serves every example of a
test, so the function_scoped_fixture health check is silenced on purpose; each example writes
to a thread of its own, so examples never see each other's rows.
"""

from __future__ import annotations

import itertools
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from langgraph.checkpoint.base import CheckpointTuple
from langgraph.checkpoint.memory import InMemorySaver

from checkpoint_pg import PostgresSaver
from tests.checkpoint.helpers import checkpoint, config
from tests.support.hostile_cases import same

SHARED_SAVER = settings(
    max_examples=75,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)

INT64 = st.integers(min_value=-(2**63), max_value=2**63 - 1)
# Keys: what msgpack and JSON both take (LangGraph's serializer refuses lone surrogates there).
KEYS = st.text(st.characters(exclude_categories=["Cs"]), max_size=8)
# Values: any text at all, NUL and lone surrogates included.
TEXT = st.text(max_size=20)

LEAVES = (
    st.none()
    | st.booleans()
    | INT64
    | st.floats(allow_nan=True, allow_infinity=True)
    | TEXT
    | st.binary(max_size=16)
)
VALUES = st.recursive(
    LEAVES,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(KEYS, inner, max_size=4),
    max_leaves=12,
)

# Metadata is JSON in a JSONB column (the official format): keys and strings without NUL or
# lone surrogates, finite floats below 1e16 (JSONB keeps numbers as decimals and prints 1e16
# and beyond without a fraction, so they come back as ints, of the decimal's value).
META_TEXT = st.text(
    st.characters(exclude_categories=["Cs"], exclude_characters="\x00"), max_size=10
)
META_LEAVES = (
    st.none()
    | st.booleans()
    | INT64
    | st.floats(allow_nan=False, allow_infinity=False, min_value=-1e15, max_value=1e15)
    | META_TEXT
)
METADATA = st.dictionaries(
    META_TEXT.filter(lambda k: not k.startswith("__")),
    st.recursive(
        META_LEAVES,
        lambda inner: st.lists(inner, max_size=3) | st.dictionaries(META_TEXT, inner, max_size=3),
        max_leaves=8,
    ),
    max_size=4,
)
CHANNELS = st.dictionaries(st.sampled_from(["messages", "doc", "count", "x y", "ünï"]), VALUES)
WRITES = st.lists(st.tuples(st.sampled_from(["messages", "doc", "branch:a"]), VALUES), max_size=4)

_threads = itertools.count()


def _both(
    ours: PostgresSaver,
    values: dict[str, Any],
    metadata: dict[str, Any],
    writes: list[tuple[str, Any]],
) -> tuple[CheckpointTuple, CheckpointTuple, str]:
    thread = f"prop-{next(_threads)}"
    memory = InMemorySaver()
    cp = checkpoint(values)
    got: list[CheckpointTuple] = []
    for saver in (ours, memory):
        saved = saver.put(config(thread), cp, metadata, cp["channel_versions"])
        if writes:
            saver.put_writes(saved, writes, "task-1", "path")
        found = saver.get_tuple(config(thread))
        assert found is not None
        got.append(found)
    return got[0], got[1], thread


@SHARED_SAVER
@given(values=CHANNELS, metadata=METADATA, writes=WRITES)
def test_a_checkpoint_reads_back_as_from_the_in_memory_saver(
    sync_saver: PostgresSaver,
    values: dict[str, Any],
    metadata: dict[str, Any],
    writes: list[tuple[str, Any]],
) -> None:
    ours, theirs, thread = _both(sync_saver, values, metadata, writes)
    assert same(dict(ours.checkpoint["channel_values"]), dict(theirs.checkpoint["channel_values"]))
    rest = {k: v for k, v in ours.checkpoint.items() if k != "channel_values"}
    assert rest == {k: v for k, v in theirs.checkpoint.items() if k != "channel_values"}
    assert ours.metadata == theirs.metadata
    assert ours.config == theirs.config
    assert same(list(ours.pending_writes or []), list(theirs.pending_writes or []))
    listed = list(sync_saver.list(config(thread)))
    assert len(listed) == 1
    assert same(
        dict(listed[0].checkpoint["channel_values"]), dict(ours.checkpoint["channel_values"])
    )
    assert listed[0].metadata == ours.metadata


@SHARED_SAVER
@given(metadata=METADATA)
def test_a_checkpoint_is_found_by_each_of_its_metadata_entries(
    sync_saver: PostgresSaver, metadata: dict[str, Any]
) -> None:
    ours, _, thread = _both(sync_saver, {"doc": 1}, metadata, [])
    for key, value in ours.metadata.items():
        found = list(sync_saver.list(config(thread), filter={key: value}))
        assert [t.config for t in found] == [ours.config], key
