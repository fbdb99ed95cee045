"""Delta storage of list channel values (``storage="delta"``): pure functions, no I/O.

In the official format every new version of a channel stores its whole value, so a message
list that grows by one message a step is stored again and again: a thread's bytes grow with
the square of its length. In delta storage, a new version of a list channel that *extends*
a version the saver knows (the same elements first, more after) is stored as its new
elements only, with a reference to that version:

- row: ``checkpoint_blobs`` under the channel's version, as always; ``type`` is
  ``cpg-delta:<base version>``; ``blob`` is a small header (``CPD1``, the chain depth, the
  suffix's serializer type and, when the elements are plain msgpack, the digest of the
  whole value's msgpack body) followed by the new elements serialized as a list by the
  saver's serializer (so `EncryptedSerializer` and `CompressingSerializer` apply to them as
  to any value; no digest of their plain text is stored then);
- base: the previous version of the same channel, thread and namespace (a full value or
  another delta); the chain ends at a full value in the official format;
- snapshot policy: a full value whenever the value is not a list, does not start with the
  base's elements (shrunk, rewritten: `RemoveMessage`, summarisation), the saver knows no
  base for the channel (it has neither written nor read one in this process), the chain's
  deltas would hold more bytes than the full value the chain starts from, or the chain
  would pass `MAX_CHAIN` deltas. So full values are stored each time a list has about
  doubled: all of them together take at most about twice the last value's bytes, and a
  thread's bytes grow linearly with its length. Reading a value reads its chain, at most
  `MAX_CHAIN` + 1 rows and at most about twice the value's bytes: time proportional to the
  value's size, not to the thread's history (each delta adds at least one element).

"Extends" is decided on serialized bytes, never on object identity: the new value's
msgpack body (LangGraph's `JsonPlusSerializer`) must start with exactly the bytes of the
base's body, checked by a BLAKE2b digest the saver keeps per channel (`DeltaCache`). msgpack
is self-delimiting, so the remaining bytes are exactly the new elements.

The official package cannot read ``cpg-delta:`` rows (its serializer refuses the type);
``checkpoint-pg convert-storage`` converts threads both ways.
"""

from __future__ import annotations

import hashlib
import struct
import threading
from collections import OrderedDict
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from langgraph.checkpoint.base import CheckpointTuple
from langgraph.checkpoint.serde.base import SerializerProtocol
from langgraph.checkpoint.serde.jsonplus import JsonPlusSerializer

from checkpoint_pg import _rows
from checkpoint_pg.errors import DanglingDeltaError

__all__ = [
    "DELTA_PREFIX",
    "MAX_CHAIN",
    "DanglingDeltaError",
    "DeltaCache",
    "Known",
    "array_header",
    "decode_delta",
    "delta_digest",
    "encode_delta",
    "is_delta",
    "rebuild",
]

DELTA_PREFIX = _rows.DELTA_TYPE_PREFIX
# The most deltas a chain holds before the next version is stored whole.
MAX_CHAIN = 1024
_MAGIC = b"CPD1"
_HEADER = struct.Struct(">HBB")  # chain depth, length of the suffix's type, of the digest
_PLAIN = "msgpack"
_EMPTY = "empty"
_FINGERPRINT = JsonPlusSerializer()


def is_delta(type_: str | None) -> bool:
    return type_ is not None and type_.startswith(DELTA_PREFIX)


def base_of(type_: str) -> str:
    return type_[len(DELTA_PREFIX) :]


@dataclass(frozen=True)
class Known:
    """What the saver knows of one stored version of a list channel."""

    version: str
    count: int  # elements
    body: int  # bytes of the msgpack body (the elements, without the array header)
    digest: bytes  # BLAKE2b of the body
    depth: int  # deltas between this version and the full value its chain starts from
    base: int  # body bytes of that full value
    chain: int  # body bytes of the chain's deltas, this version's included


def may_extend(known: Known | None, count: int, body: int) -> bool:
    """Whether a value of `count` elements and `body` bytes may be a delta on `known`."""
    if known is None or known.count >= count or known.body >= body:
        return False
    return known.depth < MAX_CHAIN and known.chain + (body - known.body) <= known.base


def full_known(version: str, count: int, body: int, digest: bytes) -> Known:
    return Known(version, count, body, digest, 0, body, 0)


class DeltaCache:
    """The last version of each (thread, namespace, channel) this saver wrote or read.

    Bounded (least recently used entries go first) and safe to share between threads. An
    entry is only a hint: a delta is written against it only when the new value's bytes
    start with the entry's (digest), and only if the base row still exists (the put
    statement checks), so a stale or evicted entry costs bytes, never correctness.
    """

    def __init__(self, size: int = 4096) -> None:
        self._size = size
        self._entries: OrderedDict[tuple[str, str, str], Known] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, key: tuple[str, str, str]) -> Known | None:
        with self._lock:
            known = self._entries.get(key)
            if known is not None:
                self._entries.move_to_end(key)
            return known

    def set(self, key: tuple[str, str, str], known: Known) -> None:
        with self._lock:
            self._entries[key] = known
            self._entries.move_to_end(key)
            while len(self._entries) > self._size:
                self._entries.popitem(last=False)


def array_header(data: bytes) -> tuple[int, int] | None:
    """(element count, header length) of a msgpack array, or None if `data` is no array."""
    if not data:
        return None
    first = data[0]
    if 0x90 <= first <= 0x9F:
        return first & 0x0F, 1
    if first == 0xDC and len(data) >= 3:
        return int.from_bytes(data[1:3], "big"), 3
    if first == 0xDD and len(data) >= 5:
        return int.from_bytes(data[1:5], "big"), 5
    return None


def pack_array_header(count: int) -> bytes:
    if count < 16:
        return bytes([0x90 | count])
    if count < 1 << 16:
        return b"\xdc" + count.to_bytes(2, "big")
    return b"\xdd" + count.to_bytes(4, "big")


def encode_delta(depth: int, suffix_type: str, suffix: bytes, digest: bytes = b"") -> bytes:
    name = suffix_type.encode()
    return _MAGIC + _HEADER.pack(depth, len(name), len(digest)) + digest + name + suffix


def _fields(blob: bytes) -> tuple[int, int, int]:
    if blob[:4] != _MAGIC:
        raise DanglingDeltaError("a cpg-delta row whose blob is not a delta (no CPD1 header)")
    depth, name, digest = _HEADER.unpack_from(blob, 4)
    return depth, name, digest


def decode_delta(blob: bytes) -> tuple[int, str, bytes]:
    """(depth, suffix type, suffix bytes) of a delta row's blob."""
    depth, name, digest = _fields(blob)
    start = 4 + _HEADER.size + digest
    return depth, blob[start : start + name].decode(), blob[start + name :]


def delta_digest(blob: bytes) -> bytes:
    """The digest of the whole value's msgpack body a delta row holds (b"" if none)."""
    digest = _fields(blob)[2]
    return bytes(blob[4 + _HEADER.size : 4 + _HEADER.size + digest])


def plain_body(serde: SerializerProtocol, value: Any, type_: str, blob: bytes) -> bytes | None:
    """The msgpack serialization of list `value` as `JsonPlusSerializer` writes it.

    That is `blob` itself when the saver's serializer wrote plain msgpack; otherwise (an
    encrypting or compressing serializer) the value is serialized once more, for comparing.
    """
    if not isinstance(value, list):
        return None
    if type_ == _PLAIN and isinstance(serde, JsonPlusSerializer):
        return blob
    try:
        fingerprint_type, data = _FINGERPRINT.dumps_typed(value)
    except Exception:
        return None
    return data if fingerprint_type == _PLAIN else None


@dataclass(frozen=True)
class Stored:
    """How one list channel value is stored by a put, and what the saver then knows of it."""

    type: str
    blob: bytes
    base: str | None
    known: Known


def store(
    serde: SerializerProtocol,
    known: Known | None,
    version: str,
    value: list[Any],
    plain: bytes,
    full: tuple[str, bytes],
) -> Stored | None:
    """A delta of `value` (whose plain serialization is `plain`) against `known`, or the full
    value `full` (None if `plain` is no msgpack array)."""
    header = array_header(plain)
    if header is None:
        return None
    count, offset = header
    digest = hashlib.blake2b(digest_size=16)
    extends = may_extend(known, count, len(plain) - offset)
    if extends:
        assert known is not None
        digest.update(memoryview(plain)[offset : offset + known.body])
        extends = digest.digest() == known.digest
    if not extends or known is None:
        whole = hashlib.blake2b(memoryview(plain)[offset:], digest_size=16).digest()
        return Stored(*full, None, full_known(version, count, len(plain) - offset, whole))
    digest.update(memoryview(plain)[offset + known.body :])
    body = len(plain) - offset
    now = Known(
        version,
        count,
        body,
        digest.digest(),
        known.depth + 1,
        known.base,
        known.chain + body - known.body,
    )
    if full[0] == _PLAIN and isinstance(serde, JsonPlusSerializer):
        suffix = pack_array_header(count - known.count) + plain[offset + known.body :]
        blob = encode_delta(now.depth, _PLAIN, suffix, now.digest)
    else:
        blob = encode_delta(now.depth, *serde.dumps_typed(value[known.count :]))
    return Stored(DELTA_PREFIX + known.version, blob, known.version, now)


def _plain_chain(base: bytes, suffixes: Sequence[bytes]) -> tuple[int, bytes] | None:
    """(element count, msgpack body) of a plain msgpack list and the lists appended to it."""
    header = array_header(base)
    if header is None:
        return None
    count, offset = header
    pieces = [memoryview(base)[offset:]]
    for suffix in suffixes:
        suffix_header = array_header(suffix)
        if suffix_header is None:
            return None
        count += suffix_header[0]
        pieces.append(memoryview(suffix)[suffix_header[1] :])
    return count, b"".join(pieces)


def chains(
    channels: Sequence[str], types: Sequence[str], blobs: Sequence[bytes]
) -> Iterator[tuple[str, list[tuple[str, bytes]]]]:
    """The (type, blob) rows of each channel, base first, from a delta read's arrays."""
    i = 0
    while i < len(channels):
        j = i
        while j < len(channels) and channels[j] == channels[i]:
            j += 1
        yield channels[i], list(zip(types[i:j], blobs[i:j], strict=True))
        i = j


def rebuild(
    serde: SerializerProtocol,
    version: str,
    parts: Sequence[tuple[str, bytes]],
    *,
    seed: bool = False,
) -> tuple[Any, Known | None]:
    """The value a chain of rows (full value first, then deltas) stores, and, with `seed`,
    what it tells the cache (None when its bytes are not plain msgpack)."""
    base_type, base_blob = parts[0]
    if is_delta(base_type):
        raise DanglingDeltaError(
            f"the base version {base_of(base_type)!r} of a delta value is missing"
        )
    if len(parts) == 1 and not seed:
        return serde.loads_typed((base_type, base_blob)), None
    deltas = [decode_delta(blob) for _, blob in parts[1:]]
    plain = base_type == _PLAIN and all(t == _PLAIN for _, t, _ in deltas)
    if not plain or array_header(base_blob) is None:
        value = serde.loads_typed((base_type, base_blob))
        if not deltas:
            return value, None
        out = list(value)
        for _, suffix_type, suffix in deltas:
            out.extend(serde.loads_typed((suffix_type, suffix)))
        return out, None
    chain = _plain_chain(base_blob, [suffix for _, _, suffix in deltas])
    if chain is None:
        raise DanglingDeltaError("a delta whose new elements are not a msgpack list")
    count, body = chain
    value = serde.loads_typed((_PLAIN, pack_array_header(count) + body))
    digest = delta_digest(parts[-1][1]) if deltas else b""
    if not digest:  # a whole value, or deltas that did not record it
        digest = hashlib.blake2b(body, digest_size=16).digest()
    header = array_header(base_blob)
    assert header is not None
    base = len(base_blob) - header[1]
    return value, Known(version, count, len(body), digest, len(deltas), base, len(body) - base)


def tuple_from_row(
    serde: SerializerProtocol, row: Sequence[Any], cache: DeltaCache | None = None
) -> CheckpointTuple:
    """`_rows.tuple_from_row` for a delta read (select_tuple_delta): each channel's chain
    rebuilt into its value; with `cache` (get_tuple), what the read tells of each list."""
    thread_id, checkpoint_ns, checkpoint = row[0], row[1], row[4]
    versions = checkpoint.get("channel_versions") or {}
    b_channels, b_types, b_blobs = row[6], row[7], row[8]
    plain: tuple[list[str], list[str], list[bytes]] = ([], [], [])
    rebuilt: dict[str, Any] = {}
    for channel, parts in chains(b_channels or (), b_types or (), b_blobs or ()):
        if len(parts) == 1 and (cache is None or parts[0][0] == _EMPTY):
            plain[0].append(channel)
            plain[1].append(parts[0][0])
            plain[2].append(parts[0][1])
            continue
        version = str(versions.get(channel, ""))
        value, known = rebuild(serde, version, parts, seed=cache is not None)
        rebuilt[channel] = value
        if cache is not None and known is not None:
            cache.set((thread_id, checkpoint_ns, channel), known)
    out = _rows.tuple_from_row(serde, [*row[:6], *plain, *row[9:]])
    out.checkpoint["channel_values"].update(rebuilt)
    return out


def put_plan(
    serde: SerializerProtocol,
    cache: DeltaCache,
    values: Mapping[str, Any],
    params: dict[str, Any],
) -> tuple[dict[str, Any] | None, dict[tuple[str, str, str], Known]]:
    """`params` of a full put turned into put_delta's (some blobs deltas, `bases` added; None
    when no value became a delta), and what the cache learns once the put is stored."""
    thread_id, ns = params["thread_id"], params["checkpoint_ns"]
    types, blobs, bases = list(params["types"]), list(params["blobs"]), []
    learnt: dict[tuple[str, str, str], Known] = {}
    for i, (channel, version) in enumerate(
        zip(params["channels"], params["versions"], strict=True)
    ):
        value = values.get(channel)
        body = plain_body(serde, value, types[i], blobs[i])
        key = (thread_id, ns, channel)
        stored = None
        if body is not None and isinstance(value, list):
            stored = store(serde, cache.get(key), version, value, body, (types[i], blobs[i]))
        bases.append(stored.base if stored else None)
        if stored is not None:
            types[i], blobs[i] = stored.type, stored.blob
            learnt[key] = stored.known
    if not any(bases):
        return None, learnt
    return {**params, "types": types, "blobs": blobs, "bases": bases}, learnt


def whole(learnt: dict[tuple[str, str, str], Known]) -> dict[tuple[str, str, str], Known]:
    """What the cache learns when the values of a put were stored whole after all."""
    return {
        key: full_known(k.version, k.count, k.body, k.digest) if k.depth else k
        for key, k in learnt.items()
    }


# -- converting stored threads (checkpoint-pg convert-storage) -----------------------------

Row = tuple[str, str, str, str, bytes]  # checkpoint_ns, channel, version, type, blob


@dataclass
class _Seen:
    """A channel's value at one stored version, while converting: its body and chain."""

    body: bytes
    known: Known  # without a digest: the body itself is compared


def _next_seen(seen: _Seen | None, version: str, type_: str, blob: bytes) -> _Seen | None:
    """What a row that stays as it is tells of its channel's value (None: nothing usable)."""
    if is_delta(type_):
        depth, suffix_type, suffix = decode_delta(blob)
        header = array_header(suffix) if suffix_type == _PLAIN else None
        if seen is None or header is None or base_of(type_) != seen.known.version:
            return None
        body = seen.body + suffix[header[1] :]
        was = seen.known
        chain = was.chain + len(body) - was.body
        known = Known(version, was.count + header[0], len(body), b"", depth, was.base, chain)
        return _Seen(body, known)
    header = array_header(blob) if type_ == _PLAIN else None
    if header is None:
        return None
    body = bytes(blob[header[1] :])
    return _Seen(body, full_known(version, header[0], len(body), b""))


def to_delta(rows: Iterator[Row]) -> Iterator[tuple[Row, str, bytes]]:
    """The rows of one thread (in checkpoint_ns, channel, version order) that can be stored as
    deltas, each with its new type and blob: plain msgpack lists whose bytes start with the
    previous version's, under the saver's snapshot policy (`may_extend`)."""
    key: tuple[str, str] | None = None
    seen: _Seen | None = None
    for row in rows:
        ns, channel, version, type_, blob = row
        if (ns, channel) != key:
            key, seen = (ns, channel), None
        header = array_header(blob) if type_ == _PLAIN else None
        if seen is not None and header is not None:
            count, offset = header
            body = memoryview(blob)[offset:]
            was = seen.known
            if may_extend(was, count, len(body)) and body[: was.body] == seen.body:
                suffix = pack_array_header(count - was.count) + body[was.body :]
                digest = hashlib.blake2b(body, digest_size=16).digest()
                new = encode_delta(was.depth + 1, _PLAIN, suffix, digest)
                yield row, DELTA_PREFIX + was.version, new
                chain = was.chain + len(body) - was.body
                known = Known(version, count, len(body), b"", was.depth + 1, was.base, chain)
                seen = _Seen(bytes(body), known)
                continue
        seen = _next_seen(seen, version, type_, blob)


def to_official(
    rows: Sequence[Row],
) -> Iterator[tuple[Row, str, bytes] | tuple[Row, None, str]]:
    """Each delta row among `rows` (every row of the thread's channels that hold deltas) with
    the full value it stands for, in the official format; or with None and the reason it
    cannot be converted here (a missing base; new elements that are not plain msgpack, which
    only the serializer that wrote them reads and writes)."""
    by_key = {(ns, channel, version): (type_, blob) for ns, channel, version, type_, blob in rows}
    for row in rows:
        ns, channel, version, type_, _ = row
        if not is_delta(type_):
            continue
        parts: list[tuple[str, bytes]] = []
        current: tuple[str, bytes] | None = by_key[(ns, channel, version)]
        while current is not None:
            parts.append(current)
            if not is_delta(current[0]):
                break
            current = by_key.get((ns, channel, base_of(current[0])))
        parts.reverse()
        if is_delta(parts[0][0]):
            yield row, None, f"the base of version {version} of {channel!r} is missing"
        elif parts[0][0] != _PLAIN or any(decode_delta(b)[1] != _PLAIN for _, b in parts[1:]):
            yield row, None, f"version {version} of {channel!r} is not plain msgpack"
        elif chain := _plain_chain(parts[0][1], [decode_delta(b)[2] for _, b in parts[1:]]):
            count, body = chain
            yield row, _PLAIN, pack_array_header(count) + body
        else:
            yield row, None, f"version {version} of {channel!r} is not a msgpack list"
