"""Hostile input to the checkpoint saver: a typed error naming the problem and the tables exactly
as they were, or the value stored and read back exactly (as `InMemorySaver` reads it back).

Every case runs against a database seeded with two threads (checkpoints, blobs and writes) and
proves, by snapshot, that nothing else was touched. See tests/checkpoint/test_bad_input.py for
the basic config and metadata refusals this table does not repeat.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import psycopg
import pytest
from langchain_core.runnables import RunnableConfig
from langgraph.checkpoint.memory import InMemorySaver

from checkpoint_pg import InvalidConfigError, InvalidMetadataError, PostgresSaver
from checkpoint_pg.errors import InvalidRetentionPolicyError, UnserializableValueError
from checkpoint_pg.retention import RetentionPolicy
from tests.checkpoint.helpers import checkpoint, config
from tests.support.hostile_cases import (
    SURROGATE,
    Case,
    Changes,
    count,
    ids,
    nested_dicts,
    run_case,
    same,
    snapshot,
)

TABLES = ("checkpoints", "checkpoint_blobs", "checkpoint_writes")
BIG = 50 * 1024 * 1024
SQL_TEXT = "'; DROP TABLE checkpoints; --"


@dataclass
class Env:
    dsn: str
    saver: PostgresSaver
    seed: RunnableConfig  # the seed thread's latest checkpoint


@pytest.fixture
def env(dsn: str) -> Iterator[Env]:
    with psycopg.connect(dsn, autocommit=True) as conn:
        saver = PostgresSaver(conn)
        saver.setup()
        first = checkpoint({"inline": "x", "blob": {"a": [1, 2]}})
        cfg = saver.put(
            config("seed"),
            first,
            {"source": "input", "step": 1, "run_id": "run-seed"},
            first["channel_versions"],
        )
        saver.put_writes(cfg, [("inline", "y"), ("blob", {"b": 1})], "task-seed")
        second = checkpoint({"inline": "z", "blob": {"a": [3]}}, inline="2", blob="2")
        cfg = saver.put(cfg, second, {"source": "loop", "step": 2}, second["channel_versions"])
        other = checkpoint({"inline": 7})
        saver.put(config("seed2"), other, {"step": 1}, other["channel_versions"])
        yield Env(dsn, saver, cfg)


# -- building blocks ----------------------------------------------------------------------------


def put(
    env: Env,
    thread: Any = "t",
    values: dict[str, Any] | None = None,
    metadata: Any = None,
    *,
    ns: Any = "",
    cfg: Any = None,
    checkpoint_id: Any = None,
    **versions: str,
) -> RunnableConfig:
    cp = checkpoint(values if values is not None else {"doc": {"a": 1}}, **versions)
    if checkpoint_id is not None:
        cp["id"] = checkpoint_id
    target = cfg if cfg is not None else config(thread, ns)
    return env.saver.put(target, cp, metadata or {}, cp["channel_versions"])


def thread_rows(thread: str) -> Changes:
    """Every row of `thread`, in every checkpoint table."""
    return {table: ("thread_id = %s", [thread]) for table in TABLES}


def via_memory(values: dict[str, Any]) -> dict[str, Any]:
    """What LangGraph's `InMemorySaver` reads back for these channel values."""
    memory = InMemorySaver()
    cp = checkpoint(values)
    saved = memory.put(config("t"), cp, {}, cp["channel_versions"])
    got = memory.get_tuple(saved)
    assert got is not None
    return dict(got.checkpoint["channel_values"])


def stores(values: dict[str, Any], thread: str = "t", ns: str = "") -> Case[Env]:
    """A put of `values` that must read back as `InMemorySaver` reads it back."""

    def check(env: Env, saved: RunnableConfig) -> None:
        got = env.saver.get_tuple(config(thread, ns))
        assert got is not None
        assert got.config == saved
        want = via_memory(values)
        assert same(dict(got.checkpoint["channel_values"]), want), (got, want)
        assert count(env.dsn, "checkpoints", "thread_id = %s", [thread]) == 1

    return Case(
        id="",
        surface="put",
        run=lambda env: put(env, thread, values, ns=ns),
        check=check,
        changes=lambda env: thread_rows(thread),
    )


def named(case: Case[Env], id: str, surface: str | None = None) -> Case[Env]:
    return Case(
        id=id,
        surface=surface or case.surface,
        run=case.run,
        error=case.error,
        match=case.match,
        check=case.check,
        changes=case.changes,
    )


def refused(surface: str, id: str, run: Any, error: type[BaseException], match: str) -> Case[Env]:
    return Case(id=id, surface=surface, run=run, error=error, match=match)


def unchanged(surface: str, id: str, run: Any, expect: Any) -> Case[Env]:
    """A call that must succeed, return `expect` and change nothing."""

    def check(env: Env, result: Any) -> None:
        got = list(result) if isinstance(result, Iterator) else result
        assert got == expect

    return Case(id=id, surface=surface, run=run, check=check)


def _metadata_is(env: Env, saved: RunnableConfig, want: dict[str, Any]) -> None:
    got = env.saver.get_tuple(saved)
    assert got is not None
    assert {k: got.metadata.get(k) for k in want} == want


def seed_values(env: Env, thread: str) -> None:
    want = env.saver.get_tuple(config("seed"))
    got = env.saver.get_tuple(config(thread))
    assert want is not None
    assert got is not None
    assert got.checkpoint == want.checkpoint
    assert got.metadata == want.metadata
    assert [w[1:] for w in got.pending_writes or []] == [w[1:] for w in want.pending_writes or []]


# -- the table ----------------------------------------------------------------------------------

S = SURROGATE
ICE = InvalidConfigError

CASES: list[Case[Env]] = [
    # put: keys and config
    refused("put", "thread-surrogate", lambda e: put(e, "t" + S), ICE, "lone surrogate"),
    refused("put", "ns-surrogate", lambda e: put(e, ns="n" + S), ICE, "checkpoint_ns"),
    refused(
        "put",
        "parent-id-surrogate",
        lambda e: put(e, cfg=config("t", "", "p" + S)),
        ICE,
        "['checkpoint_id'] contains a lone surrogate",
    ),
    refused("put", "thread-bool", lambda e: put(e, True), ICE, "must be a string, not bool"),
    refused(
        "put",
        "configurable-not-a-dict",
        lambda e: put(e, cfg={"configurable": "t"}),
        ICE,
        "config['configurable'] is missing",
    ),
    refused(
        "put",
        "checkpoint-id-dict",
        lambda e: put(e, checkpoint_id={}),
        ICE,
        "checkpoint['id'] must be a string",
    ),
    refused(
        "put",
        "checkpoint-id-nul",
        lambda e: put(e, checkpoint_id="1\x00"),
        ICE,
        "checkpoint['id'] contains a NUL",
    ),
    refused("put", "channel-name-nul", lambda e: put(e, values={"a\x00": 1}), ICE, "NUL character"),
    refused(
        "put",
        "channel-name-surrogate",
        lambda e: put(e, values={"a" + S: 1}),
        ICE,
        "lone surrogate",
    ),
    refused(
        "put",
        "blob-channel-name-nul",
        lambda e: put(e, values={"a\x00": [1]}),
        ICE,
        "a channel name contains a NUL",
    ),
    refused(
        "put",
        "version-surrogate",
        lambda e: put(e, values={"doc": [1]}, doc="1" + S),
        ICE,
        "channel 'doc''s version contains a lone surrogate",
    ),
    refused(
        "put",
        "value-unserialisable",
        lambda e: put(e, values={"doc": object()}),
        UnserializableValueError,
        "channel 'doc''s value cannot be serialised",
    ),
    refused(
        "put",
        "value-too-deep",
        lambda e: put(e, values={"doc": nested_dicts(1000)}),
        UnserializableValueError,
        "channel 'doc''s value",
    ),
    refused(
        "put",
        "value-surrogate-dict-key",
        lambda e: put(e, values={"doc": {S: 1}}),
        UnserializableValueError,
        "channel 'doc''s value cannot be serialised",
    ),
    # put: metadata
    refused(
        "metadata",
        "value-surrogate",
        lambda e: put(e, metadata={"note": "x" + S}),
        InvalidMetadataError,
        "lone surrogate",
    ),
    refused(
        "metadata",
        "key-surrogate",
        lambda e: put(e, metadata={S: 1}),
        InvalidMetadataError,
        "lone surrogate",
    ),
    refused(
        "metadata",
        "nan",
        lambda e: put(e, metadata={"score": float("nan")}),
        InvalidMetadataError,
        "not JSON-serialisable",
    ),
    refused(
        "metadata",
        "too-deep",
        lambda e: put(e, metadata={"d": nested_dicts(5000)}),
        InvalidMetadataError,
        "nested too deeply",
    ),
    refused(
        "metadata",
        "bytes",
        lambda e: put(e, metadata={"raw": b"\x00\xff"}),
        InvalidMetadataError,
        "not JSON-serialisable",
    ),
    # put: stored exactly (or as InMemorySaver reads back)
    named(stores({"doc": 1}, thread=SQL_TEXT), "thread-sql-text"),
    named(stores({"doc": 1}, thread="%_\\'"), "thread-like-wildcards"),
    named(stores({"doc": [1]}, ns="a'b\\c%_"), "ns-quote-backslash-percent"),
    named(stores({"doc": "a\x00b"}), "value-nul-string-as-blob"),
    named(stores({"doc": "x" + S}), "value-surrogate-string-as-in-memory"),
    named(stores({"doc": {"k": S}}), "value-nested-surrogate-as-in-memory"),
    named(stores({"doc": float("nan")}), "value-nan"),
    named(stores({"doc": float("inf"), "neg": float("-inf")}), "value-infinities"),
    named(stores({"doc": 1e16, "huge": 1.5e300}), "value-floats-jsonb-would-make-ints"),
    named(stores({"doc": -0.0}), "value-negative-zero"),
    named(stores({"doc": 5e-324, "third": 1 / 3}), "value-tiny-and-inexact-floats"),
    named(stores({"doc": 2**62, "neg": -(2**63)}), "value-int64-limits"),
    named(
        stores({"ключ": "値", "emoji 👩‍👩‍👧": "\u200b\u202e", "doc": {"ü": ["ß", "\U0001f600"]}}),
        "value-unicode",
    ),
    named(stores({"doc": {SQL_TEXT: "'\\%_", "$ne": None}}), "value-sql-and-operator-keys"),
    named(stores({"doc": "x" * BIG}), "value-50mb-string"),
    Case(
        id="literal-backslash-u0000-text",
        surface="metadata",
        run=lambda e: put(e, metadata={"\\u0000": "a\\u0000"}),
        check=lambda e, saved: _metadata_is(e, saved, {"\\u0000": "a\\u0000"}),
        changes=lambda e: thread_rows("t"),
    ),
    # put_writes
    refused(
        "put_writes",
        "not-pairs",
        lambda e: e.saver.put_writes(e.seed, [("a",)], "task"),
        ICE,
        "writes[0] must be a (channel, value) pair",
    ),
    refused(
        "put_writes",
        "a-string",
        lambda e: e.saver.put_writes(e.seed, "ab", "task"),  # type: ignore[arg-type]
        ICE,
        "not str",
    ),
    refused(
        "put_writes",
        "a-dict",
        lambda e: e.saver.put_writes(e.seed, {"a": 1}, "task"),  # type: ignore[arg-type]
        ICE,
        "not dict",
    ),
    refused(
        "put_writes",
        "channel-surrogate",
        lambda e: e.saver.put_writes(e.seed, [("c" + S, 1)], "task"),
        ICE,
        "a write's channel contains a lone surrogate",
    ),
    refused(
        "put_writes",
        "task-id-none",
        lambda e: e.saver.put_writes(e.seed, [("c", 1)], None),  # type: ignore[arg-type]
        ICE,
        "task_id must be a string",
    ),
    refused(
        "put_writes",
        "task-path-surrogate",
        lambda e: e.saver.put_writes(e.seed, [("c", 1)], "task", "p" + S),
        ICE,
        "task_path contains a lone surrogate",
    ),
    refused(
        "put_writes",
        "second-unserialisable",
        lambda e: e.saver.put_writes(e.seed, [("a", 1), ("b", object())], "task"),
        UnserializableValueError,
        "the write to 'b' cannot be serialised",
    ),
    refused(
        "put_writes",
        "too-deep",
        lambda e: e.saver.put_writes(e.seed, [("a", nested_dicts(1000))], "task"),
        UnserializableValueError,
        "the write to 'a'",
    ),
    refused(
        "put_writes",
        "checkpoint-id-nul",
        lambda e: e.saver.put_writes(config("seed", "", "c\x00"), [("a", 1)], "task"),
        ICE,
        "['checkpoint_id'] contains a NUL",
    ),
    # get_tuple
    refused("get_tuple", "thread-surrogate", lambda e: e.saver.get_tuple(config(S)), ICE, "lone"),
    refused(
        "get_tuple",
        "checkpoint-id-nul",
        lambda e: e.saver.get_tuple(config("seed", "", "x\x00")),
        ICE,
        "['checkpoint_id'] contains a NUL",
    ),
    refused(
        "get_tuple",
        "thread-list",
        lambda e: e.saver.get_tuple({"configurable": {"thread_id": ["seed"]}}),
        ICE,
        "must be a string, not list",
    ),
    unchanged("get_tuple", "thread-wildcard", lambda e: e.saver.get_tuple(config("%")), None),
    unchanged("get_tuple", "thread-underscore", lambda e: e.saver.get_tuple(config("see_")), None),
    # list
    refused(
        "list", "filter-nul", lambda e: list(e.saver.list(None, filter={"k": "\x00"})), ICE, "NUL"
    ),
    refused(
        "list",
        "filter-key-surrogate",
        lambda e: list(e.saver.list(None, filter={S: 1})),
        ICE,
        "the list filter contains a lone surrogate",
    ),
    refused(
        "list",
        "filter-object",
        lambda e: list(e.saver.list(None, filter={"k": object()})),
        ICE,
        "the list filter is not JSON-serialisable",
    ),
    refused(
        "list",
        "filter-list",
        lambda e: list(e.saver.list(None, filter=["source"])),  # type: ignore[arg-type]
        ICE,
        "filter must be a dict",
    ),
    refused(
        "list",
        "before-nul",
        lambda e: list(e.saver.list(None, before=config("seed", "", "1\x00"))),
        ICE,
        "before['configurable']['checkpoint_id'] contains a NUL",
    ),
    refused(
        "list",
        "limit-str",
        lambda e: list(e.saver.list(None, limit="10")),  # type: ignore[arg-type]
        ICE,
        "limit must be an int",
    ),
    refused(
        "list",
        "limit-bool",
        lambda e: list(e.saver.list(None, limit=True)),
        ICE,
        "limit must be an int",
    ),
    refused(
        "list",
        "thread-surrogate",
        lambda e: list(e.saver.list(config(S))),
        ICE,
        "lone surrogate",
    ),
    unchanged(
        "list", "filter-sql-key", lambda e: list(e.saver.list(None, filter={SQL_TEXT: 1})), []
    ),
    unchanged(
        "list",
        "filter-operator-is-data",
        lambda e: list(e.saver.list(None, filter={"step": {"$gt": 0}})),
        [],
    ),
    unchanged("list", "thread-wildcard", lambda e: list(e.saver.list(config("%"))), []),
    # copy_thread
    refused(
        "copy_thread", "target-nul", lambda e: e.saver.copy_thread("seed", "x\x00"), ICE, "NUL"
    ),
    refused(
        "copy_thread",
        "target-surrogate",
        lambda e: e.saver.copy_thread("seed", S),
        ICE,
        "thread_id contains a lone surrogate",
    ),
    refused(
        "copy_thread",
        "source-list",
        lambda e: e.saver.copy_thread(["seed"], "x"),  # type: ignore[arg-type]
        ICE,
        "must be a string, not list",
    ),
    unchanged("copy_thread", "missing-source", lambda e: e.saver.copy_thread("nope", "x"), None),
    Case(
        id="target-with-wildcards",
        surface="copy_thread",
        run=lambda e: e.saver.copy_thread("seed", "se%"),
        check=lambda e, _: seed_values(e, "se%"),
        changes=lambda e: thread_rows("se%"),
    ),
    # delete_thread / delete_for_runs / prune
    unchanged("delete", "thread-wildcard", lambda e: e.saver.delete_thread("%"), None),
    unchanged("delete", "thread-underscore", lambda e: e.saver.delete_thread("seed_"), None),
    refused(
        "delete",
        "thread-surrogate",
        lambda e: e.saver.delete_thread(S),
        ICE,
        "lone surrogate",
    ),
    refused(
        "delete",
        "thread-list",
        lambda e: e.saver.delete_thread(["seed"]),  # type: ignore[arg-type]
        ICE,
        "must be a string, not list",
    ),
    refused(
        "delete",
        "runs-one-string",
        lambda e: e.saver.delete_for_runs("run-seed"),
        ICE,
        "not one string",
    ),
    unchanged("delete", "runs-wildcard", lambda e: e.saver.delete_for_runs(["%", "run-%"]), None),
    unchanged("delete", "prune-wildcard", lambda e: e.saver.prune(["%"], strategy="delete"), None),
    refused(
        "delete",
        "prune-unknown-strategy",
        lambda e: e.saver.prune(["seed"], strategy="all"),
        ICE,
        "unknown prune strategy",
    ),
    # PostgreSQL's limits: refused before the statement, naming the limit
    refused(
        "limits",
        "checkpoint-key-over-the-btree-row",
        lambda e: put(e, "t" * 1000, ns="n" * 1000, checkpoint_id="c" * 1000),
        ICE,
        "btree index rows hold at most 2704 bytes",
    ),
    refused(
        "limits",
        "blob-key-over-the-btree-row",
        lambda e: put(e, "t" * 1000, {"c" * 1000: {"a": 1}}, ns="n" * 1000),
        ICE,
        "checkpoint_blobs key (thread_id, checkpoint_ns, channel, version)",
    ),
    refused(
        "limits",
        "writes-key-over-the-btree-row",
        lambda e: e.saver.put_writes(
            config("t" * 1000, "n" * 1000, "c" * 800), [("x", 1)], "k" * 200
        ),
        ICE,
        "checkpoint_writes key",
    ),
    refused(
        "limits",
        "list-threads-idle-for-1e300",
        lambda e: e.saver.list_threads(idle_for=1e300),
        ICE,
        "1000 years",
    ),
    refused(
        "limits",
        "retention-idle-for-1e8-days",
        lambda e: RetentionPolicy(idle_for=timedelta(days=10**8)),
        InvalidRetentionPolicyError,
        "idle_for is longer than the 1000 years",
    ),
    refused(
        "limits",
        "retention-keep-latest-2-63",
        lambda e: RetentionPolicy(keep_latest=2**63),
        InvalidRetentionPolicyError,
        "from 1 to 2147483647",
    ),
]


@pytest.mark.parametrize("case", CASES, ids=ids(CASES))
def test_hostile_input_to_the_saver(env: Env, case: Case[Env]) -> None:
    run_case(case, env, env.dsn, TABLES)


def test_unserialisable_values_are_also_type_errors_as_from_langgraph(env: Env) -> None:
    # LangGraph's serializer (so InMemorySaver) raises TypeError for these: code that catches
    # it keeps working.
    with pytest.raises(TypeError):
        put(env, values={"doc": object()})
    with pytest.raises(TypeError):
        InMemorySaver().put(config("t"), checkpoint({"doc": object()}), {}, {"doc": "1"})


# -- the empty thread id: a thread like any other, in every method -------------------------------


def _threads(env: Env) -> list[str]:
    with psycopg.connect(env.dsn, autocommit=True) as conn:
        rows = conn.execute("SELECT DISTINCT thread_id FROM checkpoints ORDER BY 1").fetchall()
    return [row[0] for row in rows]


def test_the_empty_thread_id_is_accepted_by_every_method_as_by_the_official_saver(
    env: Env,
) -> None:
    """The official saver takes ``thread_id=""`` everywhere; so a thread written under it can
    also be read, listed, copied, pruned and deleted, and the seed threads are never touched."""
    seeds = snapshot(env.dsn, TABLES, {t: ("thread_id = ''", []) for t in TABLES})
    saver = env.saver

    first = put(env, "", metadata={"run_id": "run-empty"})
    saver.put_writes(first, [("doc", {"w": 1})], "task-empty")
    put(env, "", cfg=first, values={"doc": {"a": 2}}, doc="2")
    latest = saver.get_tuple(config(""))
    assert latest is not None
    assert latest.config["configurable"]["thread_id"] == ""
    assert len(list(saver.list(config("")))) == 2
    assert any(t.thread_id == "" for t in saver.list_threads(limit=10))

    saver.prune([""], strategy="keep_latest")
    assert len(list(saver.list(config("")))) == 1
    saver.copy_thread("", "copy-of-empty")
    saver.delete_thread("copy-of-empty")
    saver.copy_thread("seed2", "")  # copying onto the empty thread id is allowed as well
    saver.delete_thread("")
    assert saver.get_tuple(config("")) is None
    assert "" not in _threads(env)

    put(env, "", metadata={"run_id": "run-empty"})
    saver.delete_for_runs(["run-empty"])
    assert saver.get_tuple(config("")) is None
    put(env, "")
    saver.prune([""], strategy="delete")
    assert saver.get_tuple(config("")) is None

    assert snapshot(env.dsn, TABLES, {t: ("thread_id = ''", []) for t in TABLES}) == seeds
    assert count(env.dsn, "checkpoints", "thread_id = ''") == 0


async def test_the_async_saver_deletes_the_empty_thread_too(env: Env) -> None:
    from checkpoint_pg import AsyncPostgresSaver

    put(env, "")
    seeds = snapshot(env.dsn, TABLES, {t: ("thread_id = ''", []) for t in TABLES})
    async with AsyncPostgresSaver.from_conn_string(env.dsn, pool_size=1) as saver:
        await saver.adelete_thread("")
        assert await saver.aget_tuple(config("")) is None
    assert snapshot(env.dsn, TABLES, {t: ("thread_id = ''", []) for t in TABLES}) == seeds
