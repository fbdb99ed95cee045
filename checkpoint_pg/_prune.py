"""`prune(strategy="keep_latest")`: keep each namespace's latest checkpoint and what it needs.

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

from checkpoint_pg._protocol import Query, Steps
from checkpoint_pg._sql import TASKS_CHANNEL, prune_statements_for

Key = tuple[str, str]  # (thread_id, checkpoint_ns)


def keep_latest(schema: str | None, thread_ids: Sequence[str]) -> Steps[None]:
    """Steps of one keep_latest prune over `thread_ids`."""
    sql = prune_statements_for(schema)
    heads = yield Query(
        sql.heads, {"thread_ids": list(thread_ids), "tasks": TASKS_CHANNEL}, fetch=True
    )
    if not heads:
        return None
    kept: dict[Key, set[str]] = defaultdict(set)
    seeds = []
    head_of: dict[Key, str] = {}
    for thread_id, ns, head, sends_parent, delta_channels, _, _ in heads:
        key = (thread_id, ns)
        head_of[key] = head
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
        chain = yield Query(sql.delta_chains, {"seeds": json.dumps(seeds)}, fetch=True)
        for thread_id, ns, checkpoint_id in chain:
            kept[(thread_id, ns)].add(checkpoint_id)
    finished_calls = {
        (thread_id, ns)
        for thread_id, ns, _, _, _, root, root_saved in heads
        if ":" in ns and root_saved and root not in kept.get((thread_id, ""), ())
    }
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
    yield Query(sql.apply, params, prepare=False)
    return None
