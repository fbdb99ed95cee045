"""Named query parameters, collected while a statement is composed."""

from __future__ import annotations

from typing import Any

from psycopg import sql
from psycopg.adapt import PyFormat


class Params:
    """The values of one statement by name; `bind` returns the placeholder to compose."""

    def __init__(self) -> None:
        self.values: dict[str, Any] = {}

    def bind(self, name: str, value: Any) -> sql.Placeholder:
        self.values[name] = value
        return sql.Placeholder(name)

    def bind_binary(self, name: str, value: Any) -> sql.Placeholder:
        """A value sent in binary (arrays: no text to build and parse)."""
        self.values[name] = value
        return sql.Placeholder(name, PyFormat.BINARY)
