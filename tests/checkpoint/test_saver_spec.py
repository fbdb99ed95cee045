"""The saver surface, behaviour by behaviour, on all six saver shapes.

Shapes: sync or async, each over a connection, a pool or a pipeline."""

from __future__ import annotations

import uuid

import pytest
from langgraph.checkpoint.base import WRITES_IDX_MAP
from langgraph.checkpoint.serde.types import ERROR, INTERRUPT

from tests.checkpoint.facade import AsyncFacade
from tests.checkpoint.helpers import checkpoint, checkpoint_id_of, config, count_rows


def _tid() -> str:
    return f"t-{uuid.uuid4().hex[:10]}"


async def _chain(saver: AsyncFacade, thread_id: str, n: int, ns: str = "") -> list[str]:
    """Put `n` checkpoints in a parent chain; return their ids oldest first."""
    ids: list[str] = []
    parent = config(thread_id, ns)
    for step in range(n):
        cp = checkpoint({"step": step, "doc": {"n": step}}, step=str(step + 1), doc=str(step + 1))
        parent = await saver.aput(
            parent, cp, {"step": step, "source": "loop"}, cp["channel_versions"]
        )
        ids.append(checkpoint_id_of(parent))
    return ids


async def test_put_then_get_returns_the_same_values_and_metadata(saver: AsyncFacade) -> None:
    tid = _tid()
    cp = checkpoint({"text": "hi", "n": 3, "items": [1, 2, {"a": b"\x00bytes"}]})
    stored = await saver.aput(
        config(tid), cp, {"source": "input", "step": -1}, cp["channel_versions"]
    )
    got = await saver.aget_tuple(stored)
    assert got is not None
    assert got.checkpoint["channel_values"] == cp["channel_values"]
    assert got.metadata == {"source": "input", "step": -1}
    assert got.config == config(tid, "", cp["id"])
    assert got.parent_config is None


async def test_get_without_checkpoint_id_returns_the_latest(saver: AsyncFacade) -> None:
    tid = _tid()
    ids = await _chain(saver, tid, 3)
    got = await saver.aget_tuple(config(tid))
    assert got is not None
    assert got.checkpoint["id"] == ids[-1]
    assert got.parent_config == config(tid, "", ids[-2])


async def test_get_of_an_unknown_thread_returns_none(saver: AsyncFacade) -> None:
    assert await saver.aget_tuple(config(_tid())) is None


async def test_string_with_nul_is_stored_and_read_back_exactly(saver: AsyncFacade) -> None:
    tid = _tid()
    cp = checkpoint({"raw": "a\x00b"})
    stored = await saver.aput(config(tid), cp, {}, cp["channel_versions"])
    got = await saver.aget_tuple(stored)
    assert got is not None
    assert got.checkpoint["channel_values"]["raw"] == "a\x00b"


async def test_unchanged_channel_is_read_through_its_earlier_blob(saver: AsyncFacade) -> None:
    tid = _tid()
    first = checkpoint({"doc": {"big": "x" * 100}}, doc="1")
    cfg = await saver.aput(config(tid), first, {}, {"doc": "1"})
    second = checkpoint({"doc": {"big": "x" * 100}}, doc="1")
    cfg = await saver.aput(cfg, second, {}, {})  # no new versions: no blob written again
    got = await saver.aget_tuple(cfg)
    assert got is not None
    assert got.checkpoint["channel_values"]["doc"] == {"big": "x" * 100}


async def test_list_returns_newest_first_and_honours_limit(saver: AsyncFacade) -> None:
    tid = _tid()
    ids = await _chain(saver, tid, 5)
    listed = [t.checkpoint["id"] async for t in saver.alist(config(tid))]
    assert listed == ids[::-1]
    limited = [t.checkpoint["id"] async for t in saver.alist(config(tid), limit=2)]
    assert limited == ids[::-1][:2]


async def test_list_before_returns_only_older_checkpoints(saver: AsyncFacade) -> None:
    tid = _tid()
    ids = await _chain(saver, tid, 4)
    older = [
        t.checkpoint["id"] async for t in saver.alist(config(tid), before=config(tid, "", ids[2]))
    ]
    assert older == [ids[1], ids[0]]


async def test_list_filters_on_metadata(saver: AsyncFacade) -> None:
    tid = _tid()
    await _chain(saver, tid, 4)
    steps = [t.metadata["step"] async for t in saver.alist(config(tid), filter={"step": 2})]
    assert steps == [2]


async def test_list_across_threads_with_a_filter(saver: AsyncFacade) -> None:
    a, b = _tid(), _tid()
    await _chain(saver, a, 2)
    await _chain(saver, b, 3)
    found = {
        (t.config["configurable"]["thread_id"], t.metadata["step"])
        async for t in saver.alist(None, filter={"step": 1})
    }
    assert found == {(a, 1), (b, 1)}


async def test_list_pages_through_long_threads_without_losing_rows(saver: AsyncFacade) -> None:
    tid = _tid()
    ids = await _chain(saver, tid, 230)  # more than two internal pages of 100
    listed = [t.checkpoint["id"] async for t in saver.alist(config(tid))]
    assert listed == ids[::-1]
    assert len([t async for t in saver.alist(config(tid), limit=150)]) == 150


async def test_list_without_namespace_covers_every_namespace(saver: AsyncFacade) -> None:
    tid = _tid()
    await _chain(saver, tid, 2, ns="")
    await _chain(saver, tid, 1, ns="child:1")
    all_ns = {
        t.config["configurable"]["checkpoint_ns"]
        async for t in saver.alist({"configurable": {"thread_id": tid}})
    }
    root_only = [t async for t in saver.alist(config(tid, ""))]
    assert all_ns == {"", "child:1"}
    assert len(root_only) == 2


async def test_put_writes_appear_as_pending_writes_in_task_order(saver: AsyncFacade) -> None:
    tid = _tid()
    cfg = (await _chain(saver, tid, 1))[0]
    target = config(tid, "", cfg)
    await saver.aput_writes(target, [("b", 2), ("a", 1)], "task-2", "path~2")
    await saver.aput_writes(target, [("c", 3)], "task-1", "path~1")
    got = await saver.aget_tuple(target)
    assert got is not None
    assert got.pending_writes == [("task-1", "c", 3), ("task-2", "b", 2), ("task-2", "a", 1)]


async def test_regular_writes_are_kept_when_repeated(saver: AsyncFacade) -> None:
    tid = _tid()
    target = config(tid, "", (await _chain(saver, tid, 1))[0])
    await saver.aput_writes(target, [("a", "first")], "task")
    await saver.aput_writes(target, [("a", "second")], "task")
    got = await saver.aget_tuple(target)
    assert got is not None
    assert got.pending_writes == [("task", "a", "first")]


async def test_special_channel_writes_replace_earlier_ones(saver: AsyncFacade) -> None:
    tid = _tid()
    target = config(tid, "", (await _chain(saver, tid, 1))[0])
    await saver.aput_writes(target, [(ERROR, "boom")], "task")
    await saver.aput_writes(target, [(ERROR, "boom again")], "task")
    got = await saver.aget_tuple(target)
    assert got is not None
    assert got.pending_writes == [("task", ERROR, "boom again")]
    assert WRITES_IDX_MAP[INTERRUPT] < 0


async def test_empty_writes_store_nothing(saver: AsyncFacade, dsn: str) -> None:
    tid = _tid()
    target = config(tid, "", (await _chain(saver, tid, 1))[0])
    await saver.aput_writes(target, [], "task")
    assert count_rows(dsn, "checkpoint_writes", tid) == 0


async def test_delete_thread_removes_only_that_thread(saver: AsyncFacade, dsn: str) -> None:
    gone, kept = _tid(), _tid()
    await _chain(saver, gone, 2)
    await _chain(saver, kept, 2)
    await saver.adelete_thread(gone)
    for table in ("checkpoints", "checkpoint_blobs"):
        assert count_rows(dsn, table, gone) == 0
        assert count_rows(dsn, table, kept) > 0


async def test_copy_thread_copies_history_blobs_and_writes(saver: AsyncFacade) -> None:
    src, dst = _tid(), _tid()
    ids = await _chain(saver, src, 3)
    await saver.aput_writes(config(src, "", ids[-1]), [("x", {"w": 1})], "task")
    await saver.acopy_thread(src, dst)
    copied = [t async for t in saver.alist(config(dst))]
    assert [t.checkpoint["id"] for t in copied] == ids[::-1]
    assert copied[0].checkpoint["channel_values"]["doc"] == {"n": 2}
    assert copied[0].pending_writes == [("task", "x", {"w": 1})]
    assert copied[0].parent_config == config(dst, "", ids[-2])


async def test_delete_for_runs_keeps_blobs_other_checkpoints_still_use(saver: AsyncFacade) -> None:
    tid = _tid()
    first = checkpoint({"doc": {"shared": True}}, doc="1")
    cfg1 = await saver.aput(config(tid), first, {"run_id": "run-1"}, {"doc": "1"})
    second = checkpoint({"doc": {"shared": True}}, doc="1")
    cfg2 = await saver.aput(cfg1, second, {"run_id": "run-2"}, {})
    await saver.adelete_for_runs(["run-1"])
    assert await saver.aget_tuple(cfg1) is None
    survivor = await saver.aget_tuple(cfg2)
    assert survivor is not None
    assert survivor.checkpoint["channel_values"]["doc"] == {"shared": True}


async def test_prune_keep_latest_keeps_one_checkpoint_per_namespace(
    saver: AsyncFacade, dsn: str
) -> None:
    tid = _tid()
    ids = await _chain(saver, tid, 4)
    await _chain(saver, tid, 3, ns="sub")
    await saver.aput_writes(config(tid, "", ids[-1]), [("x", 1)], "task")
    await saver.aprune([tid], strategy="keep_latest")
    remaining = [t async for t in saver.alist({"configurable": {"thread_id": tid}})]
    assert sorted(t.config["configurable"]["checkpoint_ns"] for t in remaining) == ["", "sub"]
    latest = await saver.aget_tuple(config(tid))
    assert latest is not None
    assert latest.checkpoint["channel_values"] == {"step": 3, "doc": {"n": 3}}
    assert latest.pending_writes == [("task", "x", 1)]
    assert latest.parent_config is None
    assert count_rows(dsn, "checkpoint_blobs", tid) == 2  # the kept checkpoints' docs only


async def test_prune_delete_removes_the_threads(saver: AsyncFacade, dsn: str) -> None:
    tid = _tid()
    await _chain(saver, tid, 3)
    await saver.aprune([tid], strategy="delete")
    assert count_rows(dsn, "checkpoints", tid) == 0
    assert count_rows(dsn, "checkpoint_blobs", tid) == 0


async def test_prune_rejects_an_unknown_strategy(saver: AsyncFacade) -> None:
    from checkpoint_pg import InvalidConfigError

    with pytest.raises(InvalidConfigError, match="unknown prune strategy 'everything'"):
        await saver.aprune([_tid()], strategy="everything")


async def test_next_version_is_monotonic_and_in_the_official_format(saver: AsyncFacade) -> None:
    first = saver.get_next_version(None)
    second = saver.get_next_version(first)
    assert first.split(".")[0] == f"{1:032}"
    assert second.split(".")[0] == f"{2:032}"
    assert second > first
