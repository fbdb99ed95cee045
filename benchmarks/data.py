"""Deterministic data for the workloads: channel values, checkpoints, writes.

Everything is drawn from seeded random generators so both implementations get the same
values in the same order. Text is prose-like (`benchmarks.prose`: English word sequences
from the docstrings the interpreter ships), so it compresses as chat messages do;
`word_salad`, words drawn uniformly from made-up letters, is the harder case for
PostgreSQL's pglz, kept for comparison.
"""

from __future__ import annotations

import random
import uuid
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any

from langchain_core.runnables import RunnableConfig
from langgraph.checkpoint.base import ChannelVersions, Checkpoint, CheckpointMetadata
from langgraph.checkpoint.base.id import uuid6
from langgraph.checkpoint.serde.jsonplus import JsonPlusSerializer

from benchmarks.prose import text

__all__ = [
    "KB",
    "CheckpointStream",
    "PutArgs",
    "payload",
    "serialized",
    "task_id",
    "text",
    "word_salad",
]

KB = 1024

_VOCAB: tuple[str, ...] = tuple(
    "".join(random.Random(i).choices("abcdefghijklmnopqrstuvwxyz", k=3 + i % 8))
    for i in range(2000)
)
# msgpack framing of {"kind": "document", "text": ...}; keeps a "1 KB" value at ~1,024 bytes.
_PAYLOAD_OVERHEAD = 23


def word_salad(rng: random.Random, size: int) -> str:
    """About `size` characters of made-up words drawn uniformly (pglz often gives up on it)."""
    words: list[str] = []
    length = 0
    while length < size:
        word = rng.choice(_VOCAB)
        words.append(word)
        length += len(word) + 1
    return " ".join(words)[:size]


def payload(rng: random.Random, size: int) -> dict[str, Any]:
    """A channel value that serializes to about `size` bytes (not inlined: it is a dict)."""
    return {"kind": "document", "text": text(rng, max(1, size - _PAYLOAD_OVERHEAD))}


def serialized(value: Any) -> bytes:
    """`value` as the savers' serializer stores it."""
    return JsonPlusSerializer().dumps_typed(value)[1]


def task_id(rng: random.Random) -> str:
    """A task id like LangGraph's, from `rng`."""
    return str(uuid.UUID(int=rng.getrandbits(128), version=4))


@dataclass(frozen=True)
class PutArgs:
    """The arguments of one `put` call."""

    config: RunnableConfig
    checkpoint: Checkpoint
    metadata: CheckpointMetadata
    new_versions: ChannelVersions

    @property
    def checkpoint_id(self) -> str:
        return self.checkpoint["id"]


@dataclass
class CheckpointStream:
    """Successive checkpoints of one thread, shaped like a graph loop's.

    Channels: ``payload`` (a new value of `payload_size` bytes every step, stored as a blob),
    ``step`` (an int, inlined in the checkpoint) and ``static`` (a small dict written once).
    """

    thread_id: str
    rng: random.Random
    payload_size: int = KB
    # Values to cycle through instead of drawing a new one each step (cheaper in hot loops).
    values: tuple[dict[str, Any], ...] = ()
    step: int = -1
    parent_id: str | None = None
    _versions: dict[str, str] = field(default_factory=dict)
    _static: dict[str, Any] = field(default_factory=dict)

    def _bump(self, channel: str) -> str:
        current = self._versions.get(channel)
        number = int(current.split(".")[0]) + 1 if current else 1
        version = f"{number:032}.{self.rng.random():016}"
        self._versions[channel] = version
        return version

    def _value(self) -> dict[str, Any]:
        if self.values:
            return self.values[self.step % len(self.values)]
        return payload(self.rng, self.payload_size)

    def next(self) -> PutArgs:
        """The next checkpoint of the thread, with the config to `put` it under."""
        self.step += 1
        new_versions: dict[str, str | int | float] = {
            "payload": self._bump("payload"),
            "step": self._bump("step"),
        }
        if self.step == 0:
            self._static = payload(self.rng, 200)
            new_versions["static"] = self._bump("static")
        checkpoint: Checkpoint = {
            "v": 4,
            "id": str(uuid6(clock_seq=self.step)),
            "ts": datetime.now(timezone.utc).isoformat(),
            "channel_values": {
                "payload": self._value(),
                "step": self.step,
                "static": self._static,
            },
            "channel_versions": dict(self._versions),
            "versions_seen": {"worker": {"payload": self._versions["payload"]}},
            "updated_channels": sorted(new_versions),
        }
        metadata: CheckpointMetadata = {
            "source": "loop",
            "step": self.step,
            "parents": {},
            "run_id": "bench-run",
        }
        configurable: dict[str, Any] = {"thread_id": self.thread_id, "checkpoint_ns": ""}
        if self.parent_id is not None:
            configurable["checkpoint_id"] = self.parent_id
        self.parent_id = checkpoint["id"]
        return PutArgs({"configurable": configurable}, checkpoint, metadata, new_versions)
