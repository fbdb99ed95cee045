"""Find the Python snippets of the Markdown docs, and say which of them may not run.

A fenced block whose info string is ``python`` is a snippet. An HTML comment on the line just
before its fence may qualify it (invisible when the Markdown is rendered):

- ``<!-- snippet: needs pgvector -->`` — runs only where the test server has pgvector;
- ``<!-- snippet: needs citus -->`` — runs on a Citus cluster (tests/support/citus.py);
- ``<!-- snippet: no-run REASON -->`` — deliberately not runnable; the test is skipped with REASON.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
DOCUMENTS = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]

_FENCE = re.compile(r"^```(\S*)[^\n]*\n(.*?)^```\s*$", re.MULTILINE | re.DOTALL)
_MARK = re.compile(r"<!--\s*snippet:\s*(needs\s+\w+|no-run\b[^>]*?)\s*-->\s*$")


@dataclass(frozen=True)
class Snippet:
    """One Python block of a document."""

    document: Path
    line: int  # of the opening fence, 1-based
    code: str
    needs: str | None = None  # an extension the server must have
    no_run: str | None = None  # why it is not run

    @property
    def name(self) -> str:
        return f"{self.document.relative_to(ROOT)}:{self.line}"


def snippets(document: Path) -> list[Snippet]:
    """Every ``python`` block of `document`, with the mark of the line before it."""
    text = document.read_text(encoding="utf-8")
    found = []
    for match in _FENCE.finditer(text):
        if match.group(1) != "python":
            continue
        line = text.count("\n", 0, match.start()) + 1
        before = text[: match.start()].rstrip("\n").rsplit("\n", 1)[-1]
        needs = no_run = None
        if mark := _MARK.search(before):
            words = mark.group(1).split(maxsplit=1)
            if words[0] == "needs":
                needs = words[1]
            else:
                no_run = words[1] if len(words) > 1 else "marked no-run"
        found.append(Snippet(document, line, match.group(2), needs, no_run))
    return found


def all_snippets() -> list[Snippet]:
    """The snippets of README.md and docs/*.md, in document order."""
    return [s for document in DOCUMENTS for s in snippets(document)]
