"""`prune(strategy="keep_latest")`: keep each namespace's latest checkpoint and what it needs.

The same steps keep the latest N instead (retention's ``keep_latest=N``, see _retention.py):
every one of the N is kept with what it needs, as the latest one is here.

What a kept checkpoint needs, beyond itself:
- before format v4, its parent, whose writes hold its pending sends;
- for each DeltaChannel it rebuilds from ancestors (named in its metadata's
  `counters_since_delta_snapshot`, or every unvalued channel for threads LangGraph.js marks
  `delta_writes_versioned`), the parent chain back to the nearest stored value, with the
  writes of those ancestors — so nothing a kept checkpoint needs is ever severed;
- the blobs any kept checkpoint refers to.
A finished subgraph call (namespace with a task id, whose root checkpoint is saved and not
kept) goes entirely. Three round trips for any number of threads; the deleting statement is
one atomic statement and never touches a checkpoint newer than the heads it read.
"""

from __future__ import annotations

import json
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass

from checkpoint_pg._runtime.protocol import Query, Steps
from checkpoint_pg._sql import TASKS_CHANNEL, prune_statements_for

Key = tuple[str, str]  # (thread_id, checkpoint_ns)


@dataclass(frozen=True)
class PruneCounts:
    """Rows one prune deleted."""

    checkpoints: int = 0
    threads: int = 0
    writes: int = 0
    blobs: int = 0


def thread_groups(thread_ids: Sequence[str], one_at_a_time: bool) -> list[list[str]]:
    """The threads (each once) as one group, or one group per thread: Citus refuses these
    statements over several threads as soon as they live on different shards (threads.sql,
    thread_scope). No threads, no group."""
    ids = list(dict.fromkeys(thread_ids))
    if not ids:
        return []
    return [[t] for t in ids] if one_at_a_time else [ids]


def keep_latest(schema: str | None, thread_ids: Sequence[str], keep: int = 1) -> Steps[PruneCounts]:
    """Steps of one prune keeping the `keep` latest checkpoints of each of their namespaces."""
    sql = prune_statements_for(schema)
    heads = yield Query(
        sql.heads,
        {"thread_ids": list(thread_ids), "tasks": TASKS_CHANNEL, "keep": keep},
        fetch=True,
    )
    if not heads:
        return PruneCounts()
    kept: dict[Key, set[str]] = defaultdict(set)
    seeds = []
    head_of: dict[Key, str] = {}
    root_rows = []
    # Rows come newest first within each namespace: the first is the namespace's head.
    for thread_id, ns, head, sends_parent, delta_channels, root, root_saved in heads:
        key = (thread_id, ns)
        if key not in head_of:
            head_of[key] = head
            root_rows.append((thread_id, ns, root, root_saved))
        kept[key].add(head)
        if sends_parent:
            kept[key].add(sends_parent)
        if delta_channels:
            seeds.append(
                {
                    "thread_id": thread_id,
                    "checkpoint_ns": ns,
                    "head": head,
                    "channels": sorted(delta_channels),
                }
            )
    if seeds:
        chain = yield Query(
            sql.delta_chains,
            {"seeds": json.dumps(seeds), "thread_ids": list(thread_ids)},
            fetch=True,
        )
        for thread_id, ns, checkpoint_id in chain:
            kept[(thread_id, ns)].add(checkpoint_id)
    finished_calls = {
        (thread_id, ns)
        for thread_id, ns, root, root_saved in root_rows
        if ":" in ns and root_saved and root not in kept.get((thread_id, ""), ())
    }
    params = _apply_params(head_of, kept, finished_calls)
    params["thread_ids"] = list(thread_ids)
    rows = yield Query(sql.apply, params, fetch=True, prepare=False)
    checkpoints, threads, writes, blobs = rows[0] if rows else (0, 0, 0, 0)
    return PruneCounts(checkpoints, threads, writes, blobs)


def _apply_params(
    head_of: dict[Key, str], kept: dict[Key, set[str]], finished_calls: set[Key]
) -> dict[str, list[object]]:
    """prune_apply's arrays: each namespace's bound (its head) and the checkpoints it keeps."""
    params: dict[str, list[object]] = {
        name: []
        for name in ("b_threads", "b_ns", "b_ids", "b_inclusive", "k_threads", "k_ns", "k_ids")
    }
    for key, head in head_of.items():
        finished = key in finished_calls
        params["b_threads"].append(key[0])
        params["b_ns"].append(key[1])
        params["b_ids"].append(head)
        params["b_inclusive"].append(finished)
        if finished:
            continue
        for checkpoint_id in sorted(kept[key]):
            params["k_threads"].append(key[0])
            params["k_ns"].append(key[1])
            params["k_ids"].append(checkpoint_id)
    return params
