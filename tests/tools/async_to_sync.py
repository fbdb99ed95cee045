"""Write the blocking modules from their asyncio sources, so sync and async never drift.

Each pair below names an async source (hand-written) and the blocking module made from it
(never edited by hand: its first line says so). The conversion is `unasync`'s: ``async``
and ``await`` go, and names are renamed token by token. A pair of names given under
`SWAPS` is exchanged both ways, which is what makes twin declarations come out right:
``get_tuple = blocking_twin(aget_tuple)`` in the source becomes
``aget_tuple = threaded_twin(get_tuple)`` in the blocking module. Then ruff sorts the
imports and formats the result, so the output is stable for a given ruff version (the
dev and test extras pin it).

    python -m tests.tools.async_to_sync          # rewrite the generated modules
    python -m tests.tools.async_to_sync --check  # exit 1 if any is out of date
"""

from __future__ import annotations

import argparse
import ast
import shutil
import subprocess
import sys
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

import unasync

ROOT = Path(__file__).resolve().parents[2]
HEADER = "# DO NOT EDIT: generated from {source} by tests/tools/async_to_sync.py.\n"

# Renames that hold in every generated module (beyond unasync's own AsyncIterator -> Iterator,
# asynccontextmanager -> contextmanager, __aenter__ -> __enter__, ...).
RENAMES: dict[str, str] = {
    "AsyncConnection": "Connection",
    "AsyncConnectionPool": "ConnectionPool",
    "AsyncPipeline": "Pipeline",
    "AsyncCursor": "Cursor",
    "PeriodicTask": "PeriodicThread",
    "TaskHandle": "ThreadHandle",
    # In the async source, `asetup = coroutine_alias(setup)`; blocking, asetup is a thread.
    "coroutine_alias": "threaded_twin",
    "AbstractAsyncContextManager": "AbstractContextManager",
    "LoopBridge": "ThreadBridge",
    "ALock": "Lock",
    "asleep": "sleep",
    # The runtime's I/O module: sources import `checkpoint_pg._runtime.aio`.
    "aio": "sync",
}

# Names exchanged both ways, in every module: twin helpers and the runtime's connect.
SWAPS: tuple[tuple[str, str], ...] = (
    ("blocking_twin", "threaded_twin"),
    ("blocking_iter_twin", "threaded_iter_twin"),
    ("aopen_conn", "open_conn"),
)


@dataclass(frozen=True)
class Generated:
    """One blocking module made from one async source."""

    source: str
    target: str
    docstring: str
    renames: dict[str, str] = field(default_factory=dict)
    swaps: tuple[tuple[str, str], ...] = ()

    def replacements(self) -> dict[str, str]:
        table = {**RENAMES, **self.renames}
        for a, b in (*SWAPS, *self.swaps):
            table[a], table[b] = b, a
        return table


GENERATED: tuple[Generated, ...] = (
    Generated(
        source="checkpoint_pg/_runtime/aio.py",
        target="checkpoint_pg/_runtime/sync.py",
        docstring=(
            "Everything in the runtime that waits on the network, for blocking callers.\n\n"
            "See aio.py, its source, for what lives here and what beside it."
        ),
        swaps=(
            ("adrive", "drive"),
            ("arun", "run"),
            ("_arun_op", "_run_op"),
            ("_arun_together", "_run_together"),
            ("aprobe", "probe"),
            ("apool_failure", "pool_failure"),
            ("astamp_new", "stamp_new"),
            ("acheck_if_idle", "check_if_idle"),
            ("areopen", "reopen"),
        ),
        renames={"AsyncOwnedConnection": "OwnedConnection"},
    ),
    Generated(
        source="checkpoint_pg/aio.py",
        target="checkpoint_pg/sync.py",
        docstring="`PostgresSaver`, the blocking shell around the shared core.",
        renames={
            "AsyncPostgresSaver": "PostgresSaver",
            "_retention_aio": "_retention_sync",
        },
        swaps=(
            ("aget_tuple", "get_tuple"),
            ("alist", "list"),
            ("aput", "put"),
            ("aput_writes", "put_writes"),
            ("aget_delta_channel_history", "get_delta_channel_history"),
            ("adelete_thread", "delete_thread"),
            ("adelete_for_runs", "delete_for_runs"),
            ("acopy_thread", "copy_thread"),
            ("aprune", "prune"),
        ),
    ),
    Generated(
        source="checkpoint_pg/_retention_aio.py",
        target="checkpoint_pg/_retention_sync.py",
        docstring="Retention and thread listing on the savers, run by the blocking shell.",
        swaps=(
            ("alist_threads", "list_threads"),
            ("aapply_retention", "apply_retention"),
        ),
    ),
    Generated(
        source="checkpoint_pg/cache/aio.py",
        target="checkpoint_pg/cache/sync.py",
        docstring="`PostgresCache`, the blocking shell around the cache core.",
        renames={"AsyncPostgresCache": "PostgresCache"},
        swaps=(
            ("aget", "get"),
            ("aset", "set"),
            ("aclear", "clear"),
            ("asweep", "sweep"),
        ),
    ),
    Generated(
        source="store/aio.py",
        target="store/sync.py",
        docstring="`PostgresStore`, the blocking shell around the store core.",
        renames={"AsyncPostgresStore": "PostgresStore"},
        swaps=(
            ("abatch", "batch"),
            ("asearch", "search"),
            ("_arun_plan", "_run_plan"),
            ("aembed_documents", "embed_documents"),
            ("aembed_query", "embed_query"),
        ),
    ),
)


def _converted(item: Generated) -> str:
    """The source run through unasync with the item's replacements (not yet formatted)."""
    with tempfile.TemporaryDirectory() as tmp:
        src_dir, out_dir = Path(tmp, "async_src"), Path(tmp, "sync_out")
        src_dir.mkdir()
        shutil.copy(ROOT / item.source, src_dir / "module.py")
        rule = unasync.Rule(str(src_dir), str(out_dir), item.replacements())
        unasync.unasync_files([str(src_dir / "module.py")], [rule])
        return (out_dir / "module.py").read_text(encoding="utf-8")


def _with_docstring(code: str, docstring: str) -> str:
    """`code` with its module docstring replaced (the source's describes the async side)."""
    first = ast.parse(code).body[0]
    if not (isinstance(first, ast.Expr) and isinstance(first.value, ast.Constant)):
        raise SystemExit("each async source must start with a module docstring")
    lines = code.splitlines(keepends=True)
    assert first.end_lineno is not None
    return f'"""{docstring}"""\n' + "".join(lines[first.end_lineno :])


def _ruff(code: str, *args: str) -> str:
    done = subprocess.run(
        [sys.executable, "-m", "ruff", *args, "--stdin-filename", "generated.py", "-"],
        input=code,
        capture_output=True,
        text=True,
        cwd=ROOT,
        check=False,
    )
    if done.returncode not in (0, 1) or not done.stdout:
        raise SystemExit(f"ruff {' '.join(args)} failed on generated code:\n{done.stderr}")
    return done.stdout


def render(item: Generated) -> str:
    """The full text the blocking module of `item` must have."""
    code = _with_docstring(_converted(item), item.docstring)
    # Imports the conversion left unused or out of order, `for x in y: yield x` loops (an
    # async generator cannot `yield from`) and `__all__` lists whose names were swapped.
    code = _ruff(
        code, "check", "--fix-only", "--unsafe-fixes", "--select", "I,F401,UP028,RUF022", "--quiet"
    )
    code = _ruff(code, "format", "--quiet")
    return HEADER.format(source=item.source) + code


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="only report stale modules")
    args = parser.parse_args(argv)
    stale = []
    for item in GENERATED:
        text = render(item)
        target = ROOT / item.target
        if target.exists() and target.read_text(encoding="utf-8") == text:
            continue
        stale.append(item.target)
        if not args.check:
            target.write_text(text, encoding="utf-8")
    verb = "out of date" if args.check else "rewritten"
    for path in stale:
        print(f"{path}: {verb}")
    return 1 if stale and args.check else 0


if __name__ == "__main__":
    raise SystemExit(main())
