"""What the bench prints around its tables, so a newcomer can tell a smoke run from a verdict."""

from __future__ import annotations

import textwrap

__all__ = ["RESULTS_POINTER", "SMOKE_NOTICE", "smoke_banner", "wrapped"]

SMOKE_NOTICE = (
    "This is a smoke run (--quick): small sizes and short windows, on whatever else this "
    "machine is doing. It shows that every workload runs and roughly where each side stands; "
    "it is not a verdict, and its target verdicts are marked indicative."
)

RESULTS_POINTER = (
    "Full results, with the environment they were measured in and notes on every missed "
    "target: benchmarks/RESULTS.md in the repository. A full run (no --quick) takes about "
    "6.5 minutes on 2 cores:\n"
    "  checkpoint-pg bench [--dsn URL] --json out.json --plot out.png --markdown out.md"
)

_RULE = "=" * 78


def smoke_banner(where: str) -> str:
    """The smoke-run notice framed so it stands out from the tables, at `where` (start/end)."""
    return "\n".join([_RULE, wrapped(f"SMOKE RUN ({where}): {SMOKE_NOTICE}"), _RULE])


def wrapped(text: str) -> str:
    """`text` wrapped to the rule's width, line by line (indented lines kept as they are)."""
    return "\n".join(
        line if line.startswith(" ") else textwrap.fill(line, len(_RULE))
        for line in text.splitlines()
    )
