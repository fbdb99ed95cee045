"""Child process of the memory workload: ``python -m benchmarks._rss_child IMPL DSN RUNS LABEL``.

Imports only implementation IMPL, then runs RUNS agent runs on new threads and lists each
thread's whole history; prints one JSON line with the peak RSS before and after (KiB).

The peak is the kernel's high-water mark of this process image (``VmHWM``). On Linux,
``getrusage().ru_maxrss`` would be wrong here: it survives ``exec``, so a child forked from
the (large) benchmark process would report the parent's footprint.
"""

from __future__ import annotations

import importlib
import json
import resource
import sys
from pathlib import Path


def _peak_kib() -> int:
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1])
    except (OSError, ValueError, IndexError):
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss


def main(argv: list[str]) -> None:
    impl, dsn, runs, label = argv[0], argv[1], int(argv[2]), argv[3]
    from benchmarks.agent import agent_config, agent_input, build_agent
    from benchmarks.participants import OFFICIAL, connect, sync_saver

    importlib.import_module(
        "langgraph.checkpoint.postgres" if impl == OFFICIAL else "checkpoint_pg"
    )
    imports = _peak_kib()
    with connect(dsn) as conn:
        saver = sync_saver(impl, conn)
        graph = build_agent(saver)
        threads = [f"rss-{label}-{i}" for i in range(runs)]
        for thread in threads:
            graph.invoke(agent_input(), agent_config(thread))
        for thread in threads:
            for _ in saver.list(agent_config(thread)):
                pass
    print(json.dumps({"imports_kib": imports, "peak_kib": _peak_kib()}))


if __name__ == "__main__":
    main(sys.argv[1:])
