"""Named SQL statements kept in ``.sql`` files beside the code that runs them.

Why files: a reader finds every statement of a feature in one place, with SQL syntax
highlighting, and a reviewer sees SQL diffs as SQL. A file is a list of blocks::

    -- name: delete_thread
    -- Optional comment lines right after the name document the statement.
    DELETE FROM {checkpoints} WHERE thread_id = %(thread_id)s;

``{word}`` marks a part the caller supplies as a `psycopg.sql.Composable` (a table
name in the caller's schema, a VALUES list of a given length); ``%(name)s`` is a query
parameter. Every other character is literal SQL, so a ``'{}'`` jsonb literal is written
as is, with no escaping.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import cache
from importlib import resources

from psycopg import sql

__all__ = ["SqlFile", "SqlFileError", "Statement", "load"]

_NAME_LINE = re.compile(r"^--\s*name:\s*([a-z][a-z0-9_]*)\s*$")
_PLACEHOLDER = re.compile(r"\{([a-z][a-z0-9_]*)\}")


class SqlFileError(ValueError):
    """A ``.sql`` file or a statement in it is malformed, or rendered with a part missing."""


@dataclass(frozen=True)
class Statement:
    """One named statement: its text as written and the names of its ``{parts}``."""

    name: str
    doc: str
    text: str

    @property
    def parts(self) -> frozenset[str]:
        return frozenset(_PLACEHOLDER.findall(self.text))

    def compose(self, **parts: sql.Composable) -> sql.Composed:
        """The statement with each ``{part}`` replaced by the Composable given for it."""
        missing = self.parts - parts.keys()
        if missing:
            raise SqlFileError(f"statement {self.name!r} needs {sorted(missing)} to render")
        pieces: list[sql.Composable] = []
        position = 0
        for match in _PLACEHOLDER.finditer(self.text):
            pieces.append(sql.SQL(self.text[position : match.start()]))
            pieces.append(parts[match.group(1)])
            position = match.end()
        pieces.append(sql.SQL(self.text[position:]))
        return sql.Composed(pieces)

    def render(self, **parts: sql.Composable) -> str:
        """`compose`, as plain SQL text ready to prepare and cache."""
        return self.compose(**parts).as_string(None)


@dataclass(frozen=True)
class SqlFile:
    """The statements of one file, by name."""

    path: str
    statements: dict[str, Statement]

    def __getitem__(self, name: str) -> Statement:
        try:
            return self.statements[name]
        except KeyError:
            raise SqlFileError(f"{self.path} has no statement named {name!r}") from None

    def render(self, name: str, **parts: sql.Composable) -> str:
        return self[name].render(**parts)


def parse(text: str, path: str) -> SqlFile:
    """Split `text` into its named blocks (see the module docstring for the format)."""
    statements: dict[str, Statement] = {}
    name: str | None = None
    doc: list[str] = []
    body: list[str] = []

    def close() -> None:
        if name is None:
            return
        statement = "\n".join(body).strip().rstrip(";").rstrip()
        if not statement:
            raise SqlFileError(f"{path}: statement {name!r} is empty")
        statements[name] = Statement(name, "\n".join(doc), statement)

    for number, line in enumerate(text.splitlines(), start=1):
        header = _NAME_LINE.match(line)
        if header:
            close()
            name, doc, body = header.group(1), [], []
            if name in statements:
                raise SqlFileError(f"{path}:{number}: statement {name!r} is defined twice")
        elif name is None:
            if line.strip() and not line.lstrip().startswith("--"):
                raise SqlFileError(f"{path}:{number}: SQL before the first '-- name:' line")
        elif not body and line.startswith("--"):
            doc.append(line[2:].strip())
        else:
            body.append(line)
    close()
    return SqlFile(path, statements)


@cache
def load(package: str, filename: str) -> SqlFile:
    """The statements of `filename` shipped inside `package`, read once per process."""
    text = resources.files(package).joinpath(filename).read_text(encoding="utf-8")
    return parse(text, f"{package}/{filename}")
