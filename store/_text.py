"""Full-text and hybrid search settings: the `index=` keys ``text`` and ``hybrid``, checked once.

The text index is a `tsvector` of the strings at the index's fields, in one text search
configuration, kept by PostgreSQL in a generated column of the store table (so rows the
official store writes get it too, and ranking reads it instead of parsing every matching
value again), with a GIN index on it. The official store names its columns in every
statement, so an extra column changes nothing for it.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

from langgraph.store.base import tokenize_path
from psycopg import sql

from store.errors import InvalidIndexConfigError

SearchMode = Literal["vector", "text", "hybrid"]
MODES: tuple[SearchMode, ...] = ("vector", "text", "hybrid")

# A text search configuration's name, optionally schema-qualified (pg_ts_config names).
_CONFIG_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)?$")
_INDEX = re.compile(r"^\[(\*|-?\d+)\]$")


def _jsonpath(tokens: Sequence[str]) -> str:
    """A LangGraph field path (tokenized) as an SQL/JSON path (``a.b[*]`` → ``$."a"."b"[*]``)."""
    out = "lax $"
    for token in tokens:
        index = _INDEX.match(token)
        if index:
            n = index.group(1)
            if n == "*":
                out += "[*]"
            elif n.startswith("-"):
                out += f"[last - {int(n[1:]) - 1}]"
            else:
                out += f"[{int(n)}]"
        elif token.startswith(("{", "[")):
            raise InvalidIndexConfigError(
                f"text index field path segment {token!r} is not supported: use names, [*] and [n]"
            )
        else:
            out += "." + json.dumps(token)
    return out


@dataclass(frozen=True)
class TextIndex:
    """A validated full-text index: its configuration and the fields it reads."""

    language: str
    fields: tuple[str, ...]  # "$" alone: every string of the value
    # "any": any word, ranked by ts_rank (natural-language queries, as agents write them);
    # "all": every word, with web search syntax (quotes, or, -word)
    match: Literal["all", "any"] = "any"

    def document(self, value: sql.Composable) -> sql.Composable:
        """The `tsvector` of an item (`value`: its value column): the text column's expression."""
        config = sql.SQL("{}::regconfig").format(sql.Literal(self.language))
        kinds = sql.Literal('["string"]')
        parts: list[sql.Composable] = []
        for field in self.fields:
            source = value
            if field != "$":
                path = sql.Literal(_jsonpath(tokenize_path(field)))
                source = sql.SQL("jsonb_path_query_array({}, {}::jsonpath)").format(value, path)
            parts.append(sql.SQL("jsonb_to_tsvector({}, {}, {})").format(config, source, kinds))
        return sql.SQL("({})").format(sql.SQL(" || ").join(parts))

    def config_sql(self) -> sql.Composable:
        """The text search configuration as a constant (the column's, so queries match it)."""
        return sql.SQL("{}::regconfig").format(sql.Literal(self.language))

    @property
    def column_name(self) -> str:
        """One column per configuration: changing language or fields adds a new one."""
        key = json.dumps([self.language, list(self.fields)])
        digest = hashlib.sha1(key.encode(), usedforsecurity=False).hexdigest()[:12]
        return f"text_{digest}"

    @property
    def index_name(self) -> str:
        return f"store_{self.column_name}_idx"

    def column(self, alias: str) -> sql.Composable:
        """The stored `tsvector` of an item (`alias`: the store table's alias in a query)."""
        return sql.Identifier(alias, self.column_name)


@dataclass(frozen=True)
class SearchChoice:
    """What one call of `search` chose: its ranking (None: the store's default) and its ANN
    settings (None: the store's, from ``index["ann_search"]``)."""

    mode: SearchMode | None = None
    ann_search: Mapping[str, Any] | None = None


@dataclass(frozen=True)
class Fusion:
    """Reciprocal rank fusion of the text and vector lists: an item at 1-based place r of a
    list scores weight / (k + r) from it; its score is the sum. Each list is its search's
    best `max(candidates, limit + offset)` items."""

    k: float = 60.0
    text_weight: float = 1.0
    vector_weight: float = 1.0
    candidates: int = 100


def _number(config: Mapping[str, Any], key: str, default: float, *, positive: bool) -> float:
    value = config.get(key, default)
    if not isinstance(value, (int, float)) or isinstance(value, bool) or value != value:
        raise InvalidIndexConfigError(f"index['hybrid']['{key}'] must be a number, got {value!r}")
    if value < 0 or (positive and value == 0) or value == float("inf"):
        raise InvalidIndexConfigError(
            f"index['hybrid']['{key}'] must be {'positive' if positive else 'non-negative'} "
            f"and finite, got {value!r}"
        )
    return float(value)


def text_index(config: Mapping[str, Any] | None) -> TextIndex | None:
    """The ``text`` key of `index=` (None: no full-text search): ``{"language": "english",
    "match": "any"}``; its fields are the index's ``fields`` (default: the whole value)."""
    if not config or config.get("text") is None:
        return None
    text = config["text"]
    if not isinstance(text, Mapping):
        raise InvalidIndexConfigError(
            f"index['text'] must be a dict such as {{'language': 'english'}}, got {text!r}"
        )
    unknown = set(text) - {"language", "match"}
    if unknown:
        raise InvalidIndexConfigError(f"index['text'] has unknown keys {sorted(unknown)}")
    language = text.get("language", "english")
    if not isinstance(language, str) or not _CONFIG_NAME.match(language):
        raise InvalidIndexConfigError(
            f"index['text']['language'] must name a text search configuration, got {language!r}"
        )
    match = text.get("match", "any")
    if match not in ("all", "any"):
        raise InvalidIndexConfigError(f"index['text']['match'] must be all or any, got {match!r}")
    fields = config.get("fields") or ["$"]
    if isinstance(fields, str):
        fields = [fields]
    for field in fields:
        if not isinstance(field, str) or not field:
            raise InvalidIndexConfigError(f"index['fields'] holds a bad path {field!r}")
        if field != "$":
            _jsonpath(tokenize_path(field))  # validates now, not at setup
    return TextIndex(language=language, fields=tuple(fields), match=match)


def fusion(config: Mapping[str, Any] | None) -> Fusion:
    """The ``hybrid`` key of `index=`: ``{"k": 60, "text_weight": 1, "vector_weight": 1,
    "candidates": 100}``, each optional."""
    hybrid = (config or {}).get("hybrid") or {}
    if not isinstance(hybrid, Mapping):
        raise InvalidIndexConfigError(f"index['hybrid'] must be a dict, got {hybrid!r}")
    unknown = set(hybrid) - {"k", "text_weight", "vector_weight", "candidates"}
    if unknown:
        raise InvalidIndexConfigError(f"index['hybrid'] has unknown keys {sorted(unknown)}")
    candidates = hybrid.get("candidates", 100)
    if not isinstance(candidates, int) or isinstance(candidates, bool) or candidates <= 0:
        raise InvalidIndexConfigError(
            f"index['hybrid']['candidates'] must be a positive int, got {candidates!r}"
        )
    return Fusion(
        k=_number(hybrid, "k", 60.0, positive=False),
        text_weight=_number(hybrid, "text_weight", 1.0, positive=False),
        vector_weight=_number(hybrid, "vector_weight", 1.0, positive=False),
        candidates=candidates,
    )
