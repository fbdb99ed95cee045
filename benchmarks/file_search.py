"""grep, glob and ls over a large project: ``python -m benchmarks.file_search --dsn DSN``.

One project of ``--files`` files (default 10,000) of about ``--size`` bytes (default 10 KB) of
prose-like text (`benchmarks.prose`) in lines of about 80 characters, under
``docs/chapter-NN/section-MMM.md``. A rare literal is planted in ``--planted`` files (default
20). The same files are held twice, in a schema of their own:

- ``ours``: app_data's ``ProjectFile`` rows, searched by `ProjectBackend` (grep through the
  ``pg_trgm`` index, glob as a path regex, ls as a loose index scan, all in PostgreSQL);
- ``store``: deepagents' own ``StoreBackend`` over our `store.PostgresStore` (one item per
  file, deepagents' file format), which reads the namespace's items and searches in Python.

Each operation is timed ``--samples`` times on ours and ``--store-samples`` times on the store
backend, interleaved round by round; the report is a markdown table of p50s and their ratio,
then the EXPLAIN (ANALYZE, BUFFERS) of ours's grep statement. ``--smoke`` runs tiny sizes.
"""

from __future__ import annotations

import argparse
import asyncio
import random
import statistics
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from typing import Any

import psycopg
from psycopg.conninfo import conninfo_to_dict, make_conninfo
from sqlalchemy.dialects import postgresql

from benchmarks import prose

__all__ = ["NEEDLE", "OPERATIONS", "build_files", "main", "run"]

NEEDLE = "quokka-lattice-7731"
OPERATIONS: dict[str, tuple[str, tuple[Any, ...], dict[str, Any]]] = {
    "grep literal (planted in few files)": ("grep", (NEEDLE,), {}),
    "grep literal, one chapter": ("grep", (NEEDLE, "/docs/chapter-03"), {}),
    "glob **/section-042.md": ("glob", ("**/section-042.md",), {}),
    "glob chapter-07/*.md": ("glob", ("chapter-07/*.md", "/docs"), {}),
    "ls /docs/chapter-07": ("ls", ("/docs/chapter-07",), {}),
    "ls /docs (100 subdirectories)": ("ls", ("/docs",), {}),
}


def _lines(text: str, width: int = 80) -> str:
    out, line = [], ""
    for word in text.split(" "):
        if line and len(line) + 1 + len(word) > width:
            out.append(line)
            line = word
        else:
            line = f"{line} {word}" if line else word
    out.append(line)
    return "\n".join(out) + "\n"


def build_files(count: int, size: int, planted: int, seed: int = 7) -> dict[str, str]:
    """``{path: content}``: prose in lines, the needle planted in `planted` spread-out files."""
    rng = random.Random(seed)
    chapters = max(1, min(100, count // 100))
    files: dict[str, str] = {}
    for i in range(count):
        files[f"docs/chapter-{i % chapters:02d}/section-{i // chapters:03d}.md"] = _lines(
            prose.text(rng, size)
        )
    step = max(1, count // max(planted, 1))
    for path in list(files)[::step][:planted]:
        lines = files[path].split("\n")
        lines[len(lines) // 2] += f" see {NEEDLE} here"
        files[path] = "\n".join(lines)
    return files


@contextmanager
def _schema(dsn: str) -> Iterator[str]:
    """A DSN whose search_path is only a fresh schema (dropped after)."""
    name = f"bench_files_{int(time.time() * 1000) % 10**9}"
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute(f"CREATE SCHEMA {name}")
    params = conninfo_to_dict(dsn)
    params["options"] = f"{params.get('options', '')} -c search_path={name}".strip()
    try:
        yield make_conninfo("", **params)
    finally:
        with psycopg.connect(dsn, autocommit=True) as conn:
            conn.execute(f"DROP SCHEMA {name} CASCADE")


def _p50(samples: list[float]) -> float:
    return statistics.median(samples) * 1000


def run(
    dsn: str, files: dict[str, str], samples: int, store_samples: int
) -> tuple[dict[str, dict[str, float]], str]:
    """Time every operation on both backends; return p50s (ms) and the EXPLAIN of ours's grep.

    Long on purpose: loading both backends, the interleaved timing and the EXPLAIN share the
    schema, the loop thread and the store, and read best as one sequence.
    """
    from deepagents.backends import StoreBackend

    from app_data import AppDataService, Database, migrations
    from app_data.repositories import grep_statement
    from app_data.tools.backend import ProjectBackend
    from app_data.tools.loop import EventLoopThread
    from app_data.tools.scope import ToolScope
    from store import PostgresStore

    results: dict[str, dict[str, float]] = {}
    with _schema(dsn) as scoped, EventLoopThread() as loop:

        async def load() -> tuple[Database, ToolScope]:
            await migrations.upgrade(scoped)
            db = Database(scoped)
            await db.connect()
            service = AppDataService(db)
            user = await service.create_user("0xbench")
            project = await service.create_project(user.id, "bench", "CODE_ANALYSIS")
            items = list(files.items())
            for start in range(0, len(items), 1000):
                await service.save_files(project.id, items[start : start + 1000])
            return db, ToolScope(user.id, project.id)

        db, scope = loop.run(load())
        ours = ProjectBackend(AppDataService(db), loop=loop, scope=scope)
        with PostgresStore.from_conn_string(scoped) as store:
            store.setup()
            theirs = StoreBackend(store=store, namespace=lambda _rt: ("filesystem",))
            theirs.upload_files([("/" + p, c.encode()) for p, c in files.items()])
            with psycopg.connect(scoped, autocommit=True) as conn:
                conn.execute('ANALYZE "ProjectFile"')
                conn.execute("ANALYZE store")
            for label, (method, args, kwargs) in OPERATIONS.items():
                timings: dict[str, list[float]] = {"ours": [], "store": []}
                expected = _count(getattr(ours, method)(*args, **kwargs))
                got = _count(getattr(theirs, method)(*args, **kwargs))
                if expected != got:
                    raise AssertionError(f"{label}: ours found {expected}, StoreBackend {got}")
                for round_ in range(max(samples, store_samples)):
                    pairs: list[tuple[str, Any]] = [("ours", ours)]
                    if round_ < store_samples:
                        pairs.append(("store", theirs))
                    for name, backend in pairs if round_ % 2 else pairs[::-1]:
                        if name == "ours" and round_ >= samples:
                            continue
                        began = time.perf_counter()
                        getattr(backend, method)(*args, **kwargs)
                        timings[name].append(time.perf_counter() - began)
                results[label] = {
                    "ours": _p50(timings["ours"]),
                    "store": _p50(timings["store"]),
                    "found": float(expected),
                }
            statement = grep_statement(
                scope.project_id, NEEDLE, root="", path_regex=None, ignore_case=False, limit=None
            ).compile(
                dialect=postgresql.dialect(paramstyle="named"),  # type: ignore[no-untyped-call]
                compile_kwargs={"literal_binds": True},
            )
            with psycopg.connect(scoped) as conn:
                rows = conn.execute(f"EXPLAIN (ANALYZE, BUFFERS, COSTS OFF) {statement}")
                plan = "\n".join(row[0] for row in rows)
        loop.run(db.close())
    return results, plan


def _count(result: Any) -> int:
    found = getattr(result, "matches", None)
    if found is None:
        found = getattr(result, "entries", None) or []
    return len(found)


def main(argv: Sequence[str] | None = None, out: Callable[[str], None] = print) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dsn", required=True)
    parser.add_argument("--files", type=int, default=10_000)
    parser.add_argument("--size", type=int, default=10_240)
    parser.add_argument("--planted", type=int, default=20)
    parser.add_argument("--samples", type=int, default=30)
    parser.add_argument("--store-samples", type=int, default=5)
    parser.add_argument("--smoke", action="store_true", help="200 files of 1 KB, 3 samples")
    args = parser.parse_args(argv)
    if args.smoke:
        args.files, args.size, args.samples, args.store_samples = 200, 1024, 3, 2
    began = time.perf_counter()
    files = build_files(args.files, args.size, args.planted)
    results, plan = run(args.dsn, files, args.samples, args.store_samples)
    mib = sum(len(c) for c in files.values()) / 2**20
    out(f"{args.files} files, {mib:.1f} MiB; p50 over {args.samples} (ours) and ")
    out(f"{args.store_samples} (StoreBackend) samples; {time.perf_counter() - began:.0f} s in all")
    out("")
    out("| operation | found | ours p50 | StoreBackend p50 | ratio |")
    out("|---|---|---|---|---|")
    for label, row in results.items():
        ratio = row["store"] / row["ours"] if row["ours"] else float("nan")
        out(
            f"| {label} | {row['found']:.0f} | {row['ours']:.2f} ms | "
            f"{row['store']:.1f} ms | {ratio:.0f}x |"
        )
    out("")
    out("EXPLAIN (ANALYZE, BUFFERS) of ours's grep:")
    out("")
    out(plan)


if __name__ == "__main__":
    asyncio.set_event_loop_policy(None)
    main()
