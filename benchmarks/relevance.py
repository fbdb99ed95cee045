"""Search relevance on labelled text that ships with Python: nDCG@10 and recall@10.

Run: ``python -m benchmarks.relevance [--dsn DSN]`` (default server: an embedded PostgreSQL
18 with pgvector). It prints JSON; benchmarks/RESULTS.md ("Store search relevance") quotes it.

The corpus is the standard library's own documentation: the docstrings of the public
functions, classes and methods of a fixed list of modules (`MODULES`), present in every
CPython build, so the check needs no network and no download. Each docstring is split into
its summary (the first paragraph) and its body (the rest): the body is stored as an item, the
summary is the query, and the one relevant item for a query is the body it was written for
(a known-item search: the summary says what the body explains, in other words). Docstrings
whose summary or body is too short to say anything are left out. Embeddings are the
deterministic hashed words-and-trigrams of benchmarks.search_bench (no model).
"""

from __future__ import annotations

import argparse
import importlib
import inspect
import json
import math
import warnings
from typing import Any

import psycopg
from langgraph.store.base import PutOp

from benchmarks.search_bench import HashedEmbeddings, database

MODULES = (
    "argparse", "asyncio", "collections", "csv", "datetime", "decimal", "email.message",
    "functools", "http.client", "inspect", "json", "logging", "os", "pathlib", "pickle",
    "random", "shutil", "subprocess", "tarfile", "threading", "doctest", "unittest",
    "urllib.parse", "zipfile", "string", "textwrap", "statistics", "heapq", "itertools",
    "fractions", "configparser", "calendar", "tempfile", "glob", "fnmatch", "sqlite3",
    "builtins", "re", "socket", "selectors", "queue", "contextlib", "dataclasses", "enum",
    "typing", "io", "codecs", "locale", "gettext", "imaplib", "smtplib", "ftplib", "mailbox",
    "difflib", "pprint", "weakref", "copy", "shelve", "gzip", "bz2", "lzma", "pkgutil", "ast",
    "dis", "tokenize", "traceback", "warnings", "abc", "operator", "ipaddress", "uuid",
    "hashlib", "hmac", "secrets", "base64", "html.parser", "xml.dom.minidom", "sched",
    "concurrent.futures", "socketserver", "http.server", "urllib.request", "http.cookiejar",
    "xml.etree.ElementTree", "plistlib", "netrc", "optparse", "getopt", "cmd", "shlex",
    "filecmp", "stat", "platform", "sysconfig", "zipimport", "tracemalloc", "timeit",
)  # fmt: skip
MIN_SUMMARY_WORDS = 4
MIN_BODY_WORDS = 12
K = 10


def corpus() -> list[tuple[str, str, str]]:
    """(key, summary, body) for each usable docstring, in a fixed order, without repeats."""
    seen: set[str] = set()
    out: list[tuple[str, str, str]] = []

    def add(name: str, doc: str | None) -> None:
        if not doc:
            return
        summary, _, body = inspect.cleandoc(doc).partition("\n\n")
        summary, body = " ".join(summary.split()), " ".join(body.split())
        if len(summary.split()) < MIN_SUMMARY_WORDS or len(body.split()) < MIN_BODY_WORDS:
            return
        if body in seen or summary in seen:
            return
        seen.update((body, summary))
        out.append((name, summary, body))

    for module_name in MODULES:
        module = importlib.import_module(module_name)
        with warnings.catch_warnings():  # typing.io and typing.re warn when read
            warnings.simplefilter("ignore", DeprecationWarning)
            members = sorted(vars(module).items())
            for name, member in members:
                _add_member(add, module_name, module.__name__, name, member)
    return out


def _add_member(add: Any, module_name: str, owner: str, name: str, member: Any) -> None:
    """The docstrings of a public member of a module, and of its public methods."""
    if name.startswith("_") or getattr(member, "__module__", None) != owner:
        return
    add(f"{module_name}.{name}", inspect.getdoc(member))
    if inspect.isclass(member):
        for attr, method in sorted(vars(member).items()):
            if not attr.startswith("_") and callable(method):
                add(f"{module_name}.{name}.{attr}", getattr(method, "__doc__", None))


def ndcg_and_recall(found: list[str], relevant: str) -> tuple[float, float]:
    """One relevant item: nDCG@10 is 1 / log2(place + 1), recall@10 whether it is there."""
    for place, key in enumerate(found[:K], start=1):
        if key == relevant:
            return 1 / math.log2(place + 1), 1.0
    return 0.0, 0.0


def run(dsn: str, documents: int | None = None) -> dict[str, Any]:
    """The scores, over the whole corpus or its first `documents` (a smoke run)."""
    from store import PostgresStore

    docs = corpus()[:documents]
    conn = psycopg.connect(dsn, autocommit=True)
    conn.execute(
        "DROP TABLE IF EXISTS store_vectors, store, store_migrations, vector_migrations,"
        " store_pg_migrations CASCADE"
    )

    def index(match: str) -> dict[str, Any]:
        return {
            "dims": 256,
            "embed": HashedEmbeddings(256),
            "fields": ["text"],
            "text": {"language": "english", "match": match},
        }

    stores = {match: PostgresStore(conn, index=index(match)) for match in ("all", "any")}
    stores["all"].setup()
    for start in range(0, len(docs), 200):
        stores["all"].batch(
            [PutOp(("docs",), key, {"text": body}) for key, _, body in docs[start : start + 200]]
        )
    conn.execute("VACUUM ANALYZE store, store_vectors")
    runs = {
        "full text, match all (websearch syntax)": ("all", "text"),
        "full text, match any": ("any", "text"),
        "vector (hashed words and trigrams)": ("any", "vector"),
        "hybrid RRF, match all": ("all", "hybrid"),
        "hybrid RRF, match any": ("any", "hybrid"),
    }
    scores: dict[str, dict[str, float]] = {}
    for label, (match, mode) in runs.items():
        ndcg = recall = 0.0
        for key, summary, _ in docs:
            found = stores[match].search(("docs",), query=summary, limit=K, mode=mode)  # type: ignore[arg-type]
            n, r = ndcg_and_recall([f.key for f in found], key)
            ndcg += n
            recall += r
        scores[label] = {
            "nDCG@10": round(ndcg / len(docs), 4),
            "recall@10": round(recall / len(docs), 4),
        }
    conn.close()
    return {"documents": len(docs), "queries": len(docs), "modules": len(MODULES), **scores}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dsn", help="a database to use (its store tables are replaced)")
    args = parser.parse_args()
    with database(args.dsn) as dsn:
        print(json.dumps(run(dsn), indent=2))


if __name__ == "__main__":
    main()
