"""The BaseStore contract, behaviour by behaviour, on sync and async stores over a connection
and a pool."""

from __future__ import annotations

import pytest
from langgraph.store.base import (
    BaseStore,
    GetOp,
    ListNamespacesOp,
    MatchCondition,
    PutOp,
    SearchOp,
)


async def test_put_then_get_returns_the_value_and_timestamps(store: BaseStore) -> None:
    await store.aput(("users", "u1"), "prefs", {"theme": "dark", "n": 1})
    item = await store.aget(("users", "u1"), "prefs")
    assert item is not None
    assert item.value == {"theme": "dark", "n": 1}
    assert item.namespace == ("users", "u1")
    assert item.key == "prefs"
    assert item.created_at == item.updated_at


async def test_put_again_replaces_the_value_and_keeps_created_at(store: BaseStore) -> None:
    await store.aput(("users",), "k", {"v": 1})
    first = await store.aget(("users",), "k")
    await store.aput(("users",), "k", {"v": 2})
    second = await store.aget(("users",), "k")
    assert first is not None
    assert second is not None
    assert second.value == {"v": 2}
    assert second.created_at == first.created_at
    assert second.updated_at >= first.updated_at


async def test_get_of_a_missing_item_returns_none(store: BaseStore) -> None:
    assert await store.aget(("nobody",), "nothing") is None


async def test_delete_removes_the_item(store: BaseStore) -> None:
    await store.aput(("a",), "k", {"v": 1})
    await store.adelete(("a",), "k")
    assert await store.aget(("a",), "k") is None


async def test_search_covers_the_prefix_and_below_but_not_lookalikes(store: BaseStore) -> None:
    await store.aput(("docs",), "root", {"v": 0})
    await store.aput(("docs", "a"), "child", {"v": 1})
    await store.aput(("docsx",), "other", {"v": 2})
    found = {(i.namespace, i.key) for i in await store.asearch(("docs",))}
    assert found == {(("docs",), "root"), (("docs", "a"), "child")}


async def test_namespace_labels_with_like_wildcards_match_only_themselves(store: BaseStore) -> None:
    await store.aput(("user_1",), "k", {"v": 1})
    await store.aput(("userX1",), "k", {"v": 2})
    await store.aput(("user%",), "k", {"v": 3})
    assert [i.value for i in await store.asearch(("user_1",))] == [{"v": 1}]
    assert [i.value for i in await store.asearch(("user%",))] == [{"v": 3}]


async def test_search_pages_with_limit_and_offset_newest_first(store: BaseStore) -> None:
    for i in range(7):
        await store.aput(("p",), f"k{i}", {"i": i})
    first = await store.asearch(("p",), limit=3)
    second = await store.asearch(("p",), limit=3, offset=3)
    everything = await store.asearch(("p",), limit=10)
    assert [i.key for i in first + second] == [i.key for i in everything][:6]
    assert [i.key for i in everything] == [f"k{i}" for i in range(6, -1, -1)]


async def test_list_namespaces_with_prefix_suffix_depth_and_wildcards(store: BaseStore) -> None:
    for ns in [("a", "b", "c"), ("a", "b", "d"), ("a", "x", "c"), ("z",)]:
        await store.aput(ns, "k", {"v": 1})
    assert await store.alist_namespaces(prefix=("a",)) == [
        ("a", "b", "c"),
        ("a", "b", "d"),
        ("a", "x", "c"),
    ]
    assert await store.alist_namespaces(suffix=("c",)) == [("a", "b", "c"), ("a", "x", "c")]
    assert await store.alist_namespaces(max_depth=2) == [("a", "b"), ("a", "x"), ("z",)]
    assert await store.alist_namespaces(prefix=("a", "*", "c")) == [
        ("a", "b", "c"),
        ("a", "x", "c"),
    ]
    assert await store.alist_namespaces(limit=1, offset=1) == [("a", "b", "d")]


async def test_a_mixed_batch_returns_results_in_op_order(store: BaseStore) -> None:
    await store.aput(("m",), "existing", {"v": 1})
    results = await store.abatch(
        [
            GetOp(("m",), "existing"),
            PutOp(("m",), "new", {"v": 2}),
            SearchOp(("m",), limit=10),
            ListNamespacesOp(match_conditions=(MatchCondition("prefix", ("m",)),)),
            GetOp(("m",), "missing"),
        ]
    )
    assert results[0] is not None
    assert results[0].value == {"v": 1}
    assert results[1] is None
    assert [i.key for i in results[2]] == ["existing"]  # type: ignore[union-attr]  # reads see the batch's start
    assert results[3] == [("m",)]
    assert results[4] is None
    assert await store.aget(("m",), "new") is not None


async def test_puts_of_the_same_key_in_one_batch_keep_the_last(store: BaseStore) -> None:
    await store.abatch(
        [PutOp(("d",), "k", {"v": 1}), PutOp(("d",), "k", None), PutOp(("d",), "k", {"v": 3})]
    )
    item = await store.aget(("d",), "k")
    assert item is not None
    assert item.value == {"v": 3}


async def test_unicode_and_quotes_in_namespaces_keys_and_values(store: BaseStore) -> None:
    ns = ("ünï", "it's", "back\\slash")
    await store.aput(ns, "kéy 'q' %_", {"text": "💾 'quoted' \\ \"x\""})
    item = await store.aget(ns, "kéy 'q' %_")
    assert item is not None
    assert item.value == {"text": "💾 'quoted' \\ \"x\""}


@pytest.mark.parametrize("depth", [None, 1])
async def test_list_namespaces_is_empty_on_an_empty_store(
    store: BaseStore, depth: int | None
) -> None:
    assert await store.alist_namespaces(max_depth=depth) == []


async def test_a_search_beyond_the_bounded_prefix_read_pages_newest_first(
    store: BaseStore,
) -> None:
    # More items under the prefix than the bounded first read takes: the search is answered
    # by its second form, with the same items, order and pages as in a small namespace.
    from store._reads import BOUNDED_PREFIX_ITEMS

    count = BOUNDED_PREFIX_ITEMS + 40
    for i in range(count):  # one by one: each a newer updated_at than the last
        await store.aput(("big", f"n{i % 3}"), f"k{i:04}", {"i": i, "tag": f"t{i % 4}"})
    for prefix, labels in [(("big",), range(3)), (("big", "n1"), [1])]:
        for search_filter in [None, {"tag": "t2"}]:
            newest_first = [
                f"k{i:04}"
                for i in reversed(range(count))
                if i % 3 in labels and (search_filter is None or i % 4 == 2)
            ]
            for limit, offset in [(7, 0), (7, 7), (400, 0)]:
                found = await store.asearch(
                    prefix, filter=search_filter, limit=limit, offset=offset
                )
                assert [i.key for i in found] == newest_first[offset : offset + limit]


async def test_a_batch_mixing_a_broad_search_with_other_reads_keeps_every_result(
    store: BaseStore,
) -> None:
    from store._reads import BOUNDED_PREFIX_ITEMS

    await store.abatch(
        [PutOp(("wide",), f"k{i}", {"i": i}) for i in range(BOUNDED_PREFIX_ITEMS + 1)]
        + [PutOp(("narrow",), "only", {"i": -1})]
    )
    got, wide, narrow, listed = await store.abatch(
        [
            GetOp(("narrow",), "only"),
            SearchOp(("wide",), filter={"i": 3}),
            SearchOp(("narrow",)),
            ListNamespacesOp(match_conditions=None, max_depth=1),
        ]
    )
    assert got is not None
    assert got.value == {"i": -1}
    assert [i.key for i in wide] == ["k3"]
    assert [i.key for i in narrow] == ["only"]
    assert listed == [("narrow",), ("wide",)]
