"""Peak RSS of the client: each implementation runs agent threads in a subprocess of its own.

The child (`benchmarks._rss_child`) imports only the implementation it measures, runs
`rss_runs` agent runs and reads every thread's whole history back, then reports its peak
resident set (the kernel's high-water mark, ``VmHWM``) and the peak after imports only.
"""

from __future__ import annotations

import json
import subprocess
import sys
from typing import Any

from benchmarks.participants import setup_schema
from benchmarks.workloads.base import Row, Workload

__all__ = ["MemoryWorkload"]


class MemoryWorkload(Workload):
    name = "memory"
    title = "client peak RSS"

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.dsns: dict[str, str] = {}

    def rounds(self) -> int:
        return self.profile.rss_rounds

    def setup(self, participant: str, dsn: str) -> None:
        setup_schema(participant, dsn)
        self.dsns[participant] = dsn

    def run(self, participant: str, unit: str, round_no: int) -> None:
        args = [sys.executable, "-m", "benchmarks._rss_child", participant]
        args += [self.dsns[participant], str(self.profile.rss_runs), f"r{round_no}"]
        done = subprocess.run(  # noqa: S603 - our own module, argv list, no shell
            args, capture_output=True, text=True, timeout=600, check=False
        )
        if done.returncode != 0:
            raise RuntimeError(f"the memory probe for {participant} failed:\n{done.stderr}")
        report = json.loads(done.stdout.strip().splitlines()[-1])
        self.samples.value("peak rss", participant, report["peak_kib"] / 1024)
        self.samples.value("import rss", participant, report["imports_kib"] / 1024)

    def rows(self) -> list[Row]:
        runs = self.profile.rss_runs
        return [
            self.median_row(
                "memory.peak",
                f"client peak RSS, {runs} agent runs + full history reads",
                "peak rss",
                "MiB",
                note="subprocess per implementation",
            ),
            self.median_row("memory.imports", "client RSS after imports only", "import rss", "MiB"),
        ]
