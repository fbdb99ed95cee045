"""`RowBoundEncryption`: AES-GCM whose associated data names the row a value belongs to.

LangGraph's `EncryptedSerializer` decrypts whatever it is handed and loads values that were
never encrypted. With `RowBoundEncryption` given to a saver or a store (``encryption=``),
every stored value is sealed with AES-256-GCM (or -128/-192, by key length) and associated
data naming its table, its row's key columns and its type tag. A value is loaded only if it
opens under that exact row; otherwise `TamperedValueError` is raised, naming the row, and
nothing is deserialised.

Threat model. It protects against someone who can read the database (values are encrypted)
and against someone who can write to it but has no key: a planted unencrypted value, a
changed byte, a value moved to another thread, checkpoint, channel, version, write or store
key are all refused on load. It does not protect: checkpoint metadata (JSONB, kept in plain
text so that ``list(filter=...)`` works; altering it is detected, reading it is not
prevented), ids and key columns (thread ids, namespaces, store keys, channel names), the
sizes and times of rows, a writer who deletes whole checkpoints, writes or items or restores
an older copy of the whole database, and anyone who holds a key.

Format of a sealed value: ``0xA1 | len(key id) | key id (UTF-8) | 12-byte nonce |
ciphertext with its 16-byte tag``. The header is part of the associated data. The key id
says which key of the keyring opens it, so older keys keep their rows readable after a new
key becomes current (``checkpoint-pg reencrypt`` moves everything to the current one).
"""

from __future__ import annotations

import base64
import json
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from checkpoint_pg._runtime.errors import InvalidKeyringError, TamperedValueError
from checkpoint_pg._runtime.extras import require

__all__ = ["KEYS_ENV_VAR", "MAGIC", "RowBoundEncryption", "row_name"]

MAGIC = 0xA1
NONCE_BYTES = 12
TAG_BYTES = 16
KEYS_ENV_VAR = "CHECKPOINT_PG_KEYS"
_AAD_PREFIX = b"checkpoint-pg/row-bound/v1"


def row_name(table: str, **columns: Any) -> str:
    """How an error names a row: ``checkpoint_blobs(thread_id='t', channel='x', ...)``."""
    parts = ", ".join(f"{name}={value!r}" for name, value in columns.items())
    return f"{table}({parts})"


def _aad(header: bytes, parts: Sequence[str | bytes]) -> bytes:
    """Associated data: a fixed prefix, the header, then each part length-prefixed (so no two
    different rows can encode to the same bytes)."""
    out = bytearray(_AAD_PREFIX)
    out += len(header).to_bytes(4, "big") + header
    for part in parts:
        raw = part.encode("utf-8", "surrogatepass") if isinstance(part, str) else part
        out += len(raw).to_bytes(4, "big") + raw
    return bytes(out)


def _key_bytes(key_id: str, key: Any) -> bytes:
    if isinstance(key, str):
        try:
            key = base64.b64decode(key, validate=True)
        except ValueError:
            raise InvalidKeyringError(f"key {key_id!r} is not valid base64") from None
    if not isinstance(key, (bytes, bytearray)) or len(key) not in (16, 24, 32):
        raise InvalidKeyringError(f"key {key_id!r} must be 16, 24 or 32 bytes (32 recommended)")
    return bytes(key)


class RowBoundEncryption:
    """A keyring of AES-GCM keys by id; `current` seals new values, any of them opens old ones.

    Args:
        keys: ``{key_id: key}``, each key 16, 24 or 32 raw bytes (or their base64 text). Key
            ids are short names (1 to 255 UTF-8 bytes) stored in every sealed value.
        current: the id that seals new writes; default: the last key of `keys`.

    The keys never appear in its repr, in an error or in a log line.
    """

    __slots__ = ("_ciphers", "current", "key_ids")

    def __init__(self, keys: Mapping[str, bytes | str], current: str | None = None) -> None:
        require("RowBoundEncryption", "encryption")
        from cryptography.hazmat.primitives.ciphers.aead import AESGCM

        if not isinstance(keys, Mapping) or not keys:
            raise InvalidKeyringError("keys must be a non-empty mapping of key id to key")
        ciphers: dict[str, Any] = {}
        for key_id, key in keys.items():
            if not isinstance(key_id, str) or not 1 <= len(key_id.encode()) <= 255:
                raise InvalidKeyringError("every key id must be a string of 1 to 255 bytes")
            ciphers[key_id] = AESGCM(_key_bytes(key_id, key))
        current = list(keys)[-1] if current is None else current
        if current not in ciphers:
            raise InvalidKeyringError(f"the current key {current!r} is not in the keyring")
        self._ciphers = ciphers
        self.current = current
        self.key_ids = tuple(ciphers)

    def __repr__(self) -> str:
        return f"RowBoundEncryption(key_ids={list(self.key_ids)!r}, current={self.current!r})"

    __str__ = __repr__

    def __reduce__(self) -> Any:
        raise TypeError("RowBoundEncryption holds keys and cannot be pickled")

    # -- keyrings from outside the program -------------------------------------------------------

    @classmethod
    def from_json(cls, text: str) -> RowBoundEncryption:
        """A keyring from ``{"current": "k2", "keys": {"k1": "<base64>", "k2": "<base64>"}}``."""
        try:
            data = json.loads(text)
        except ValueError:
            raise InvalidKeyringError("the keyring is not valid JSON") from None
        if not isinstance(data, dict) or not isinstance(data.get("keys"), dict):
            raise InvalidKeyringError('the keyring must be {"current": id, "keys": {id: key}}')
        for key_id, key in data["keys"].items():
            if not isinstance(key, str):
                raise InvalidKeyringError(f"key {key_id!r} must be base64 text")
        return cls(data["keys"], data.get("current"))

    @classmethod
    def from_env(cls, var: str = KEYS_ENV_VAR) -> RowBoundEncryption:
        """The keyring JSON (see `from_json`) held by the environment variable `var`."""
        text = os.environ.get(var)
        if not text:
            raise InvalidKeyringError(f"${var} is not set")
        return cls.from_json(text)

    @classmethod
    def from_file(cls, path: str | os.PathLike[str]) -> RowBoundEncryption:
        """The keyring JSON (see `from_json`) stored in the file at `path`."""
        try:
            text = Path(path).read_text(encoding="utf-8")
        except OSError as exc:
            raise InvalidKeyringError(f"cannot read the keyring file: {exc.strerror}") from None
        return cls.from_json(text)

    @staticmethod
    def generate_key() -> str:
        """A new random 256-bit key, as the base64 text a keyring file holds."""
        return base64.b64encode(os.urandom(32)).decode()

    # -- sealing ----------------------------------------------------------------------------------

    def seal(self, plaintext: bytes, row: Sequence[str | bytes]) -> bytes:
        """`plaintext` encrypted with the current key, bound to `row` (table, then key parts)."""
        key_id = self.current.encode()
        header = bytes((MAGIC, len(key_id))) + key_id
        nonce = os.urandom(NONCE_BYTES)
        sealed = self._ciphers[self.current].encrypt(nonce, plaintext, _aad(header, row))
        return header + nonce + bytes(sealed)

    def key_id_of(self, data: bytes | None) -> str | None:
        """The id of the key that sealed `data`; None if it is not a sealed value."""
        if not data or len(data) < 2 or data[0] != MAGIC:
            return None
        end = 2 + data[1]
        try:
            return bytes(data[2:end]).decode()
        except UnicodeDecodeError:
            return None

    def open(self, data: bytes | None, row: Sequence[str | bytes], name: str) -> bytes:
        """The plaintext of `data` if it was sealed for `row`; else `TamperedValueError(name)`."""
        from cryptography.exceptions import InvalidTag

        key_id = self.key_id_of(data)
        if data is None or key_id is None:
            raise TamperedValueError(name, "the value is not encrypted")
        cipher = self._ciphers.get(key_id)
        if cipher is None:
            raise TamperedValueError(
                name, f"sealed with key {key_id!r}, which is not in the keyring"
            )
        end = 2 + data[1]
        header, nonce, sealed = data[:end], data[end : end + NONCE_BYTES], data[end + NONCE_BYTES :]
        if len(sealed) < TAG_BYTES:
            raise TamperedValueError(name, "the value is truncated")
        try:
            return bytes(cipher.decrypt(bytes(nonce), bytes(sealed), _aad(bytes(header), row)))
        except InvalidTag:
            raise TamperedValueError(
                name, "the value was altered, or sealed for another row"
            ) from None
