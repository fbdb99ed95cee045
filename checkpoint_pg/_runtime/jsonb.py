"""JSON text for JSONB columns, refused early with a typed error when PostgreSQL would refuse it."""

from __future__ import annotations

import json
import re
from enum import Enum
from typing import Any
from uuid import UUID

import orjson

# A NUL character as json.dumps writes it: ``\u0000`` after an even number of backslashes (an
# odd number means the text held a literal backslash followed by "u0000", which is fine).
_ESCAPED_NUL = re.compile(r"(?<!\\)(?:\\\\)*\\u0000")


# One encoder for every call: `json.dumps` with non-default options builds a new one each time.
_ENCODER = json.JSONEncoder(allow_nan=False, ensure_ascii=False)


def _as_orjson_writes(value: Any) -> Any:
    """What orjson writes for a type `json` refuses (`jsonb_text`'s fallback with ``fast``)."""
    if isinstance(value, UUID):
        return str(value)
    if isinstance(value, Enum):
        return value.value
    raise TypeError(f"Object of type {type(value).__name__} is not JSON serializable")


# `json` where orjson hands over (``fast=True``), taking what orjson takes, so that a value is
# written alike whichever of the two writes it.
_ORJSON_ALIKE = json.JSONEncoder(allow_nan=False, ensure_ascii=False, default=_as_orjson_writes)


def lone_surrogate(text: str) -> str | None:
    """The first lone UTF-16 surrogate in `text` (which UTF-8 cannot encode), or None."""
    if text.isascii():  # O(1) for the common case: CPython knows a string is ASCII
        return None
    try:
        text.encode()
    except UnicodeEncodeError as exc:
        return text[exc.start]
    return None


# orjson, where it is asked to, with the standard library's refusals: datetimes and dataclasses
# go to `default` (none, so refused); what it still refuses then falls back to `json`, which
# decides (and raises the error).
_ORJSON_OPTIONS = orjson.OPT_PASSTHROUGH_DATETIME | orjson.OPT_PASSTHROUGH_DATACLASS


def _orjson_text(value: Any) -> str | None:
    """`value` as orjson writes it, or None where `json` must decide.

    None for whatever orjson refuses (integers past 64 bits, keys that are not strings, nesting
    past 254 levels, lone surrogates, any other type) and for any ``null`` in the text, since
    orjson writes NaN and infinities as ``null`` where `json` refuses them.
    """
    try:
        data = orjson.dumps(value, option=_ORJSON_OPTIONS)
    except (orjson.JSONEncodeError, RecursionError):
        return None
    if b"null" in data:
        return None
    return data.decode()


def jsonb_text(value: Any, what: str, error: type[Exception], *, fast: bool = False) -> str:
    """`value` as JSON text; raise `error` (naming `what`) for what JSONB cannot hold.

    JSONB refuses the NUL character (``\\u0000``) and lone UTF-16 surrogates (``"\\ud800"``)
    anywhere, and NaN and infinities (not JSON). With ``fast=True`` the text is orjson's where
    orjson can write it (about 4x faster here; the same JSONB once stored), and it also takes
    a `uuid.UUID` (as its text) and an `enum.Enum` (as its value), which `json` alone refuses,
    whichever of the two writes the text: for the saver's checkpoint and metadata, not for
    store values, which keep the standard library's rules (benchmarks/RESULTS.md, "put: where
    the microseconds go").
    """
    text = _orjson_text(value) if fast else None
    if text is None:
        text = _stdlib_text(_ORJSON_ALIKE if fast else _ENCODER, value, what, error)
    if "\\u0000" in text and _ESCAPED_NUL.search(text):
        raise error(f"{what} contains a NUL character, which PostgreSQL JSONB cannot store")
    bad = lone_surrogate(text)
    if bad is not None:
        raise error(
            f"{what} contains a lone surrogate (U+{ord(bad):04X}), which is not valid Unicode: "
            "PostgreSQL cannot store it"
        )
    return text


def _stdlib_text(encoder: json.JSONEncoder, value: Any, what: str, error: type[Exception]) -> str:
    try:
        return encoder.encode(value)
    except (TypeError, ValueError) as exc:
        raise error(f"{what} is not JSON-serialisable: {exc}") from None
    except RecursionError:
        raise error(f"{what} is nested too deeply to serialise") from None
