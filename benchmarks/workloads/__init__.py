"""The workloads, by name, in the order a full run goes through them."""

from __future__ import annotations

from collections.abc import Sequence

from benchmarks.workloads.agent_concurrency import AgentConcurrencyWorkload
from benchmarks.workloads.agent_loop import AgentLoopWorkload
from benchmarks.workloads.base import Workload
from benchmarks.workloads.defaults import DefaultsWorkload
from benchmarks.workloads.memory import MemoryWorkload
from benchmarks.workloads.reads import ReadsWorkload
from benchmarks.workloads.saver_concurrency import SaverConcurrencyWorkload
from benchmarks.workloads.single_stream import PutWorkload, PutWritesWorkload
from benchmarks.workloads.store_ops import StoreWorkload

__all__ = ["ALIASES", "WORKLOADS", "resolve"]

WORKLOADS: dict[str, type[Workload]] = {
    cls.name: cls
    for cls in (
        PutWorkload,
        PutWritesWorkload,
        ReadsWorkload,
        AgentLoopWorkload,
        SaverConcurrencyWorkload,
        AgentConcurrencyWorkload,
        DefaultsWorkload,
        StoreWorkload,
        MemoryWorkload,
    )
}

ALIASES = {
    "get_tuple": "reads",
    "list": "reads",
    "floor": "put",
    "rss": "memory",
    "concurrency": "saver_concurrency",
}


def resolve(names: Sequence[str]) -> list[str]:
    """Workload names from user input (aliases allowed), deduplicated, in the given order.

    Raises:
        ValueError: for a name that is neither a workload nor an alias.
    """
    chosen: list[str] = []
    for raw in names:
        name = ALIASES.get(raw.strip(), raw.strip())
        if name not in WORKLOADS:
            known = ", ".join([*WORKLOADS, *ALIASES])
            raise ValueError(f"unknown workload {raw!r}; choose from: {known}")
        if name not in chosen:
            chosen.append(name)
    return chosen
