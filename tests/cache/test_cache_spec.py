"""`PostgresCache` / `AsyncPostgresCache` behave as LangGraph's `BaseCache` says, in PostgreSQL."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from checkpoint_pg.errors import InvalidCacheKeyError, InvalidConfigError

NS = ("__pregel_ns_writes", "node-a")
OTHER = ("__pregel_ns_writes", "node-b")


async def test_a_value_set_is_returned_by_get(cache: Any) -> None:
    await cache.aset({(NS, "k"): ({"answer": 42, "items": [1, "two"]}, None)})
    assert await cache.aget([(NS, "k")]) == {(NS, "k"): {"answer": 42, "items": [1, "two"]}}


async def test_get_returns_only_the_keys_that_are_stored(cache: Any) -> None:
    await cache.aset({(NS, "a"): (1, None)})
    assert await cache.aget([(NS, "a"), (NS, "missing"), (OTHER, "a")]) == {(NS, "a"): 1}


async def test_get_and_set_of_nothing_do_nothing(cache: Any) -> None:
    await cache.aset({})
    assert await cache.aget([]) == {}


async def test_set_replaces_the_value_and_ttl_of_a_key(cache: Any) -> None:
    await cache.aset({(NS, "k"): ("old", 0)})
    await cache.aset({(NS, "k"): ("new", None)})
    assert await cache.aget([(NS, "k")]) == {(NS, "k"): "new"}


async def test_an_expired_entry_is_never_returned(cache: Any) -> None:
    await cache.aset({(NS, "short"): ("gone", 1), (NS, "long"): ("kept", 3600)})
    await asyncio.sleep(1.2)
    assert await cache.aget([(NS, "short"), (NS, "long")]) == {(NS, "long"): "kept"}


async def test_a_zero_ttl_entry_is_expired_at_once(cache: Any) -> None:
    await cache.aset({(NS, "k"): ("v", 0)})
    assert await cache.aget([(NS, "k")]) == {}


async def test_clear_of_namespaces_deletes_exactly_those_namespaces(cache: Any) -> None:
    parent = ("__pregel_ns_writes",)
    await cache.aset({(NS, "k"): (1, None), (OTHER, "k"): (2, None), (parent, "k"): (3, None)})
    await cache.aclear([NS])
    assert await cache.aget([(NS, "k"), (OTHER, "k"), (parent, "k")]) == {
        (OTHER, "k"): 2,
        (parent, "k"): 3,
    }


async def test_clear_without_namespaces_deletes_everything(cache: Any) -> None:
    await cache.aset({(NS, "k"): (1, None), (OTHER, "k"): (2, None)})
    await cache.aclear()
    assert await cache.aget([(NS, "k"), (OTHER, "k")]) == {}


async def test_namespaces_are_compared_label_by_label(cache: Any) -> None:
    # Labels that would collide if joined with a separator stay apart.
    joined, split = ("a:b",), ("a", "b")
    await cache.aset({(joined, "k"): ("joined", None), (split, "k"): ("split", None)})
    assert await cache.aget([(joined, "k"), (split, "k")]) == {
        (joined, "k"): "joined",
        (split, "k"): "split",
    }


async def test_any_label_text_is_stored_nul_and_unicode_included(cache: Any) -> None:
    odd = ("nul\x00label", "ünïcødé ☃", "")
    await cache.aset({(odd, "k"): ("v", None), ((), "root"): ("r", None)})
    assert await cache.aget([(odd, "k"), ((), "root")]) == {(odd, "k"): "v", ((), "root"): "r"}


async def test_sweep_deletes_expired_entries_in_bounded_batches(cache: Any) -> None:
    await cache.aset({(NS, f"k{i}"): (i, 0) for i in range(25)})
    await cache.aset({(NS, "live"): ("v", None)})
    assert await cache.asweep(batch_size=10, max_batches=2) == 20
    assert await cache.asweep(batch_size=10) == 5
    assert await cache.aget([(NS, "live")]) == {(NS, "live"): "v"}


@pytest.mark.parametrize(
    "bad_key",
    [
        ("not-a-tuple", "k"),
        ((1, 2), "k"),
        (NS, 7),
        (NS, "nul\x00key"),
        (NS, "x" * 3000),
        "just-a-string",
    ],
    ids=["namespace-str", "namespace-ints", "key-int", "key-nul", "key-too-long", "no-pair"],
)
async def test_a_key_that_cannot_be_stored_is_refused_before_anything_is_written(
    cache: Any, bad_key: Any
) -> None:
    with pytest.raises(InvalidCacheKeyError):
        await cache.aset({(NS, "fine"): (1, None), bad_key: (2, None)})
    assert await cache.aget([(NS, "fine")]) == {}


@pytest.mark.parametrize("bad_ttl", ["60", True, float("nan")])
async def test_a_ttl_that_is_not_seconds_is_refused(cache: Any, bad_ttl: Any) -> None:
    with pytest.raises(InvalidCacheKeyError, match="TTL"):
        await cache.aset({(NS, "k"): (1, bad_ttl)})


async def test_sweep_batch_size_must_be_positive(cache: Any) -> None:
    with pytest.raises(InvalidConfigError, match="batch_size"):
        await cache.asweep(batch_size=0)
