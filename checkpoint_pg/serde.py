"""`CompressingSerializer`: zlib around any LangGraph serializer, for smaller checkpoints.

A 25-step `add_messages` thread re-stores the whole message list at every step. PostgreSQL's
own TOAST compression (pglz) stores such lists of varied text raw; zlib shrinks them on the
client, on any server (benchmarks/RESULTS.md, "Design measurements"). Like
`EncryptedSerializer`, it marks what it changed in the type tag (``msgpack~zlib``), so any
LangGraph saver configured with it reads the data, this package's or the official one, and
values it left alone stay readable without it.

Compose it inside an `EncryptedSerializer` to compress before encrypting (encrypted bytes do
not compress):

    EncryptedSerializer(cipher, serde=CompressingSerializer())
"""

from __future__ import annotations

import zlib
from collections.abc import Collection
from typing import Any

from langgraph.checkpoint.serde.base import SerializerProtocol
from langgraph.checkpoint.serde.jsonplus import JsonPlusSerializer

__all__ = ["CompressingSerializer"]

# Not "+": LangGraph's EncryptedSerializer reads "+" as "encrypted with", so an outer
# encryption tags this "msgpack~zlib+aes" and still finds its own suffix.
SUFFIX = "~zlib"


class CompressingSerializer(SerializerProtocol):
    """Compress serialised values of at least `threshold` bytes with zlib at `level`.

    Args:
        serde: the serializer to wrap; LangGraph's `JsonPlusSerializer` by default.
        threshold: smaller values are stored as they are (compression would not pay).
        level: zlib level, 1 (fastest) to 9 (smallest); 6 is zlib's own default.
    """

    def __init__(
        self, serde: SerializerProtocol | None = None, *, threshold: int = 512, level: int = 6
    ) -> None:
        if not isinstance(threshold, int) or threshold < 0:
            raise ValueError(f"threshold must be a non-negative int, got {threshold!r}")
        if not isinstance(level, int) or not 1 <= level <= 9:
            raise ValueError(f"level must be an int from 1 to 9, got {level!r}")
        self.serde = serde or JsonPlusSerializer()
        self.threshold = threshold
        self.level = level

    def dumps_typed(self, obj: Any) -> tuple[str, bytes]:
        type_, data = self.serde.dumps_typed(obj)
        if len(data) < self.threshold or type_.endswith(SUFFIX):
            return type_, data
        packed = zlib.compress(data, self.level)
        if len(packed) >= len(data):
            return type_, data
        return type_ + SUFFIX, packed

    def with_msgpack_allowlist(
        self, extra_allowlist: Collection[tuple[str, ...]]
    ) -> CompressingSerializer:
        """A copy whose inner serializer also allows `extra_allowlist` (strict msgpack)."""
        inner = self.serde
        if isinstance(inner, (JsonPlusSerializer, CompressingSerializer)):
            updated = inner.with_msgpack_allowlist(extra_allowlist)
            if updated is not inner:
                return CompressingSerializer(updated, threshold=self.threshold, level=self.level)
        return self

    def loads_typed(self, data: tuple[str, bytes]) -> Any:
        type_, payload = data
        if type_.endswith(SUFFIX):
            return self.serde.loads_typed((type_[: -len(SUFFIX)], zlib.decompress(payload)))
        return self.serde.loads_typed(data)
