"""Side-by-side benchmarks of checkpoint-pg and the official langgraph-checkpoint-postgres.

``checkpoint-pg bench`` (or ``python -m benchmarks``) runs every workload for both
implementations on fresh databases of one server, interleaved round by round, and reports
a markdown table, JSON and plots. Importing this package is cheap: workloads, plotting and
the savers themselves load only when a run needs them.
"""

from __future__ import annotations

__all__: list[str] = []
