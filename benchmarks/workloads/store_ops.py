"""The long-term memory store at 100,000 items: put, get, filtered search, vector search, batches.

Each store gets a fresh database, runs its own `setup()`, and is then bulk-loaded with SQL
with the very same items (same namespaces, keys, values, timestamps and, where the server has
pgvector, the same vectors), vacuumed and analyzed as autovacuum would have done. Items live
in namespaces of 100 (``("users", "u<n>", "memories")``); each value has two fields to filter
on by equality (``status``: 4 values, ``topic``: one per 100 items), a numeric ``score``
(0-999) and a ``text`` of six words.

What is timed, one call at a time on one connection:
- `put` of a new item and `get` of an existing one; `put` again into a second copy of our
  tables (schema ``bench_plain``, the same items) set up without ``range_index_fields``, so
  the put is timed with and without that opt-in expression index (the official store has
  no such option: its row is its usual put);
- a search under ``("users",)`` (every item) with two equality filters (~25 matches), and
  one in a single user's namespace (100 items) with one equality filter (~25 matches);
- a search under ``("users",)`` with a numeric range filter (a window of 50 scores, ~5%).
  The official store compares numbers as text (``value->>'score' >= '500'``), so its result
  set is not ours; the report counts both and says so instead of comparing unequal answers;
- a batch of 50 ops: 20 gets and 20 puts across namespaces, 10 filtered searches each in
  one user's namespace;
- where the server has pgvector: a vector search under ``("users",)``, and the put and the
  batch again on a store configured for semantic search, whose puts embed their text and
  write its vector into the HNSW index.

Each implementation is used through two store objects on the same connection and tables:
one without ``index=`` (the rows without "embedded"), one with it. Both implementations get
the same configuration (`fields=["text"]`, 64 dimensions, cosine, HNSW); ours also gets
``range_index_fields=["score"]``, its own option for range filters.

Embeddings are a deterministic fake (no network): each word has a fixed random vector and a
text's vector is the sum of its words', computed the same way in Python (for puts and
queries) and in SQL (for the seeded items). Items of a topic share most of their words, so
the vectors cluster as real ones do. The HNSW index is built after the bulk load (dropped and
re-created from its own definition), as pgvector recommends for loading.
"""

from __future__ import annotations

import random
import time
from collections.abc import Iterable
from typing import Any

import psycopg
from langchain_core.embeddings import Embeddings
from langgraph.store.base import BaseStore, GetOp, Op, PutOp, SearchItem, SearchOp
from psycopg.rows import DictRow

from benchmarks.participants import IMPLEMENTATIONS, OFFICIAL, OURS, connect, sync_store
from benchmarks.proxy import ProxyProcess, upstream_of
from benchmarks.workloads.agent_concurrency import round_trip
from benchmarks.workloads.base import Row, Workload

__all__ = ["StoreWorkload", "WordEmbeddings"]

DIMS = 64
PER_NAMESPACE = 100  # items per namespace, and per topic
_VOCABULARY = 512
_WORDS_PER_ITEM = 6
_TOPIC_SPAN = 16  # the words a topic's items draw from: 16 consecutive ones
_STATUSES = ("active", "archived", "pending", "flagged")
_SCORES = 1000
_WINDOW = 50  # range filters ask for [x, x + 50)
_LIMIT = 10
_BATCH_GETS, _BATCH_PUTS, _BATCH_SEARCHES = 20, 20, 10
_BATCH = _BATCH_GETS + _BATCH_PUTS + _BATCH_SEARCHES
_CHECKS = 5  # queries used to compare answers before timing
_RECALL_QUERIES = 50
_VECTOR_INDEX = "store_vectors_embedding_idx"
_PLAIN_SCHEMA = "bench_plain"

_KINDS = (
    "put",
    "put_plain",
    "get",
    "search_eq",
    "search_ns",
    "search_range",
    "batch",
    "vector",
    "put_embedded",
    "batch_embedded",
)
# Kinds timed again through the benchmark's ~1 ms proxy, where round trips dominate.
_PROXIED = ("put", "get", "batch", "vector")
_UNITS = (*_KINDS, *(f"{kind}@proxy" for kind in _PROXIED))
# Kinds that need pgvector, and run on the store configured with `index=`.
_VECTOR_KINDS = frozenset({"vector", "put_embedded", "batch_embedded"})
_ROUTES = {"": "loopback", "proxy": "proxy"}
_BATCH_LABEL = (
    f"batch of {_BATCH} ops ({_BATCH_GETS} get, {_BATCH_PUTS} put, "
    f"{_BATCH_SEARCHES} search in one user's namespace)"
)
_LABELS = {
    "put": "put, new item,",
    "put_plain": "put, new item, ours without range_index_fields (a second schema),",
    "get": "get, existing item,",
    "search_eq": "search under ('users',), 2 equality filters (~25 match), limit 10,",
    "search_ns": "search in one user's namespace (100 items), 1 equality filter, limit 5,",
    "search_range": "search under ('users',), numeric range filter (~5% match), limit 10,",
    "batch": f"{_BATCH_LABEL},",
    "vector": "vector search under ('users',), limit 10,",
    "put_embedded": "put, new item, embedded (index= configured),",
    "batch_embedded": f"{_BATCH_LABEL}, puts embedded (index= configured),",
}
_PROXY_LABEL = " through the ~1 ms proxy,"


def _words() -> tuple[str, ...]:
    rng = random.Random("store-vocabulary")
    words: dict[str, None] = {}
    while len(words) < _VOCABULARY:
        words["".join(rng.choices("abcdefghijklmnopqrstuvwxyz", k=rng.randint(4, 9)))] = None
    return tuple(words)


WORDS = _words()


def word_vector(word: str, dims: int = DIMS) -> list[float]:
    """The fixed random vector of `word`."""
    rng = random.Random(f"store-word-{word}")
    return [rng.gauss(0.0, 1.0) for _ in range(dims)]


class WordEmbeddings(Embeddings):
    """Deterministic offline embeddings: a text's vector is the sum of its words' vectors."""

    def __init__(self, dims: int = DIMS) -> None:
        self.dims = dims
        self._table = {word: word_vector(word, dims) for word in WORDS}

    def _embed(self, text: str) -> list[float]:
        total = [0.0] * self.dims
        for word in text.split() or [text]:
            vector = self._table.get(word) or word_vector(word, self.dims)
            total = [a + b for a, b in zip(total, vector, strict=True)]
        return total

    def embed_documents(self, texts: list[str]) -> list[list[float]]:
        return [self._embed(t) for t in texts]

    def embed_query(self, text: str) -> list[float]:
        return self._embed(text)


def _topic_text(rng: random.Random, topic: int, words: int = _WORDS_PER_ITEM) -> str:
    return " ".join(
        WORDS[(topic * 5 + rng.randrange(_TOPIC_SPAN)) % _VOCABULARY] for _ in range(words)
    )


# Pseudo-random but deterministic per item: hashint4 spreads g over 0 .. 2^32 - 1.
_H = "(hashint4({x})::bigint + 2147483648)"

_SEED_ITEMS = f"""
CREATE TEMP TABLE bench_items AS
SELECT g,
       'users.u' || (g %% %(namespaces)s) || '.memories' AS prefix,
       'm' || g AS key,
       {_H.format(x="g")} %% %(topics)s AS topic,
       {_H.format(x="g + %(items)s")} %% 4 AS status,
       {_H.format(x="g + 2 * %(items)s")} %% {_SCORES} AS score,
       timestamptz '2025-01-01 00:00:00+00' + g * interval '1 second' AS ts
FROM generate_series(0, %(items)s - 1) AS g
"""
_SEED_ITEM_WORDS = f"""
CREATE TEMP TABLE bench_item_words AS
SELECT i.g, j,
       (i.topic * 5 + {_H.format(x="i.g * 8 + j + 3 * %(items)s")} %% {_TOPIC_SPAN})
           %% {_VOCABULARY} AS word
FROM bench_items AS i, generate_series(0, {_WORDS_PER_ITEM - 1}) AS j
"""
_SEED_STORE = """
INSERT INTO store (prefix, key, value, created_at, updated_at)
SELECT i.prefix, i.key,
       jsonb_build_object('kind', 'memory', 'status', (%(statuses)s::text[])[i.status + 1],
                          'topic', 't' || i.topic, 'score', i.score, 'text', t.text),
       i.ts, i.ts
FROM bench_items AS i
JOIN (SELECT iw.g, string_agg(w.word, ' ' ORDER BY iw.j) AS text
      FROM bench_item_words AS iw JOIN bench_words AS w ON w.id = iw.word
      GROUP BY iw.g) AS t ON t.g = i.g
"""
_SEED_VECTORS = """
INSERT INTO store_vectors (prefix, key, field_name, embedding, created_at, updated_at)
SELECT i.prefix, i.key, 'text', sum(w.vec), i.ts, i.ts
FROM bench_items AS i
JOIN bench_item_words AS iw ON iw.g = i.g
JOIN bench_words AS w ON w.id = iw.word
GROUP BY i.g, i.prefix, i.key, i.ts
"""


def _namespace(n: int) -> tuple[str, ...]:
    return ("users", f"u{n}", "memories")


class StoreWorkload(Workload):
    name = "store"
    title = "long-term memory store at 100,000 items"

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.items = self.profile.store_items
        self.namespaces = max(1, self.items // PER_NAMESPACE)
        self.topics = max(1, self.items // PER_NAMESPACE)
        self.conns: dict[str, psycopg.Connection[DictRow]] = {}
        self.proxied_conns: dict[str, psycopg.Connection[DictRow]] = {}
        # (participant, route, with index=) -> store; every store of a participant uses the
        # same tables, in its own database.
        self.stores: dict[tuple[str, str, bool], BaseStore] = {}
        # participant -> its store without range indexes (official's usual store)
        self.plain_stores: dict[str, BaseStore] = {}
        self.proxy: ProxyProcess | None = None
        self.vectors: bool | None = None
        self.index_definitions: dict[str, str] = {}
        self.range_answers: dict[str, list[set[tuple[str, str]]]] = {}
        self.vector_recall: dict[str, float] = {}

    def units(self) -> tuple[str, ...]:
        return _UNITS

    # -- setup -------------------------------------------------------------------------------

    def setup(self, participant: str, dsn: str) -> None:
        conn = self.conns[participant] = connect(dsn)
        if self.vectors is None:
            self.vectors = (
                conn.execute(
                    "SELECT 1 FROM pg_available_extensions WHERE name = 'vector'"
                ).fetchone()
                is not None
            )
        if self.proxy is None:
            self.proxy = ProxyProcess(upstream_of(dsn), delay=self.profile.proxy_delay).start()
        proxied = self.proxy.dsn_for(dsn)
        added = round_trip(proxied) - round_trip(dsn)
        self.samples.value("proxy added round trip", participant, added * 1000)
        self.proxied_conns[participant] = connect(proxied)
        ranges = ["score"] if participant == OURS else []
        index = {"dims": DIMS, "embed": WordEmbeddings(), "fields": ["text"]}
        for route, route_conn in (("loopback", conn), ("proxy", self.proxied_conns[participant])):
            self.stores[participant, route, False] = sync_store(
                participant, route_conn, range_index_fields=ranges
            )
            if self.vectors:
                self.stores[participant, route, True] = sync_store(
                    participant, route_conn, index=index, range_index_fields=ranges
                )
        # The store with `index=` creates everything the other one needs, and the vectors.
        creator = self.stores[participant, "loopback", bool(self.vectors)]
        creator.setup()  # type: ignore[attr-defined]
        self._seed(participant, conn)
        self.plain_stores[participant] = self._plain_store(participant, conn)
        self._check(participant)
        for unit in self.units():
            self.run(participant, unit, -1, ops=min(self.profile.warmup_ops, 10))

    def _seed(self, participant: str, conn: psycopg.Connection[DictRow]) -> None:
        """Load the same items (and vectors) into `conn`'s freshly set-up store tables."""
        params = {
            "items": self.items,
            "namespaces": self.namespaces,
            "topics": self.topics,
            "statuses": list(_STATUSES),
        }
        vec = ", vec vector" if self.vectors else ""
        conn.execute(f"CREATE TEMP TABLE bench_words (id int PRIMARY KEY, word text NOT NULL{vec})")
        with conn.cursor() as cur:
            if self.vectors:
                cur.executemany(
                    "INSERT INTO bench_words (id, word, vec) VALUES (%s, %s, %s::vector)",
                    [(i, w, str(word_vector(w))) for i, w in enumerate(WORDS)],
                )
            else:
                cur.executemany(
                    "INSERT INTO bench_words (id, word) VALUES (%s, %s)", list(enumerate(WORDS))
                )
            cur.execute(_SEED_ITEMS, params)
            cur.execute(_SEED_ITEM_WORDS, params)
            cur.execute(_SEED_STORE, params)
            if self.vectors:
                row = cur.execute(
                    "SELECT pg_get_indexdef(%s::regclass) AS ddl", (_VECTOR_INDEX,)
                ).fetchone()
                assert row is not None
                ddl = str(row["ddl"])
                self.index_definitions[participant] = ddl
                cur.execute(f"DROP INDEX {_VECTOR_INDEX}")
                cur.execute(_SEED_VECTORS)
                cur.execute("SET maintenance_work_mem = '512MB'")
                cur.execute(ddl)
                cur.execute("RESET maintenance_work_mem")
            cur.execute("DROP TABLE bench_items, bench_item_words, bench_words")
        tables = "store, store_vectors" if self.vectors else "store"
        conn.execute(f"VACUUM ANALYZE {tables}")
        row = conn.execute("SELECT count(*) AS n FROM store").fetchone()
        if row is None or row["n"] != self.items:
            raise RuntimeError(f"{participant}: seeded {row and row['n']} items, not {self.items}")

    def _plain_store(self, participant: str, conn: psycopg.Connection[DictRow]) -> BaseStore:
        """Our store in a second schema holding the same items, without range indexes; the
        official store as it is (it has no range indexes to leave out)."""
        if participant != OURS:
            return self.stores[participant, "loopback", False]
        from store import PostgresStore

        plain = PostgresStore(conn, schema=_PLAIN_SCHEMA)
        plain.setup()
        conn.execute(f"INSERT INTO {_PLAIN_SCHEMA}.store SELECT * FROM public.store")
        conn.execute(f"VACUUM ANALYZE {_PLAIN_SCHEMA}.store")
        return plain

    def _check(self, participant: str) -> None:
        """Refuse to time searches that return the wrong thing; record what may differ."""
        store = self.stores[participant, "loopback", False]
        rng = random.Random("store-checks")
        for _ in range(_CHECKS):
            status, topic = rng.choice(_STATUSES), rng.randrange(self.topics)
            found = store.search(("users",), filter=_eq_filter(status, topic), limit=self.items)
            if any(i.value["status"] != status or i.value["topic"] != f"t{topic}" for i in found):
                raise RuntimeError(f"{participant}: an equality-filtered search returned a misfit")
            expected = self._expected_eq(self.conns[participant], status, topic)
            if len(found) != expected:
                raise RuntimeError(
                    f"{participant}: an equality-filtered search found {len(found)} items, "
                    f"expected {expected}"
                )
        self.range_answers[participant] = [
            _keys(store.search(("users",), filter=_range_filter(low), limit=self.items))
            for low in self._range_lows(rng, _CHECKS)
        ]
        if self.vectors:
            self.vector_recall[participant] = self._recall(
                participant, self.stores[participant, "loopback", True], rng
            )
        ordered = [p for p in IMPLEMENTATIONS if p in self.index_definitions]
        if len({self.index_definitions[p] for p in ordered}) > 1:
            raise RuntimeError(f"the two stores' vector indexes differ: {self.index_definitions}")

    def _expected_eq(self, conn: psycopg.Connection[DictRow], status: str, topic: int) -> int:
        row = conn.execute(
            "SELECT count(*) AS n FROM store WHERE value->>'status' = %s AND value->>'topic' = %s",
            (status, f"t{topic}"),
        ).fetchone()
        assert row is not None
        return int(row["n"])

    def _recall(self, participant: str, store: BaseStore, rng: random.Random) -> float:
        """Share of the store's top 10 that are among the exact 10 nearest vectors.

        Ties count as hits: an item whose exact distance equals the 10th nearest one's is as
        right as the one an exact scan happened to list.
        """
        conn = self.conns[participant]
        embed = WordEmbeddings()
        hits = total = 0
        for _ in range(_RECALL_QUERIES):
            query = _topic_text(rng, rng.randrange(self.topics), 3)
            vector = str(embed.embed_query(query))
            row = conn.execute(
                "SELECT max(d) AS d FROM (SELECT (embedding <=> %s::vector) + 0 AS d"
                " FROM store_vectors ORDER BY 1 LIMIT %s) AS nearest",
                (vector, _LIMIT),
            ).fetchone()
            assert row is not None
            found = store.search(("users",), query=query, limit=_LIMIT)
            distances = conn.execute(
                "SELECT v.embedding <=> %s::vector AS d FROM store_vectors AS v"
                " JOIN unnest(%s::text[], %s::text[]) AS f(prefix, key) USING (prefix, key)",
                (vector, [".".join(i.namespace) for i in found], [i.key for i in found]),
            ).fetchall()
            hits += sum(1 for r in distances if r["d"] <= row["d"] + 1e-6)
            total += _LIMIT
        return hits / total

    def _range_lows(self, rng: random.Random, count: int) -> list[int]:
        return [rng.randrange(_SCORES // _WINDOW) * _WINDOW for _ in range(count)]

    def teardown(self, participant: str) -> None:
        for key in [k for k in self.stores if k[0] == participant]:
            del self.stores[key]
        self.plain_stores.pop(participant, None)
        for conns in (self.conns, self.proxied_conns):
            if conn := conns.pop(participant, None):
                conn.close()

    def finish(self) -> None:
        if self.proxy is not None:
            self.proxy.stop()
            self.proxy = None

    # -- timed calls -------------------------------------------------------------------------

    def run(self, participant: str, unit: str, round_no: int, ops: int | None = None) -> None:
        kind, _, route = unit.partition("@")
        if kind in _VECTOR_KINDS and not self.vectors:
            return
        if kind == "put_plain":
            store = self.plain_stores[participant]
        else:
            store = self.stores[participant, _ROUTES[route], kind in _VECTOR_KINDS]
        default = self.profile.store_batches if "batch" in kind else self.profile.store_ops
        count = default if ops is None else ops
        # Same calls, in the same order, for every participant in a given round.
        rng = random.Random(f"store-{unit}-{round_no}")
        calls = [self._call(kind, rng, f"{unit}-{round_no}-{i}") for i in range(count)]
        seconds: list[float] = []
        for call in calls:
            start = time.perf_counter()
            result = _invoke(store, call)
            seconds.append(time.perf_counter() - start)
            if kind == "get" and result is None:
                raise RuntimeError(f"{participant}: get found nothing")
        if round_no >= 0:
            self.samples.latency(unit, participant, seconds)

    def _existing(self, rng: random.Random) -> tuple[tuple[str, ...], str]:
        g = rng.randrange(self.items)
        return _namespace(g % self.namespaces), f"m{g}"

    def _value(self, rng: random.Random) -> dict[str, Any]:
        topic = rng.randrange(self.topics)
        return {
            "kind": "memory",
            "status": rng.choice(_STATUSES),
            "topic": f"t{topic}",
            "score": rng.randrange(_SCORES),
            "text": _topic_text(rng, topic),
        }

    def _call(self, kind: str, rng: random.Random, name: str) -> list[Op]:
        """The ops of one timed call (a single op, or a batch of 50); `name` is unique."""
        if kind in ("put", "put_plain", "put_embedded"):
            namespace = _namespace(rng.randrange(self.namespaces))
            return [PutOp(namespace, name, self._value(rng))]
        if kind == "get":
            return [GetOp(*self._existing(rng))]
        if kind == "search_eq":
            status, topic = rng.choice(_STATUSES), rng.randrange(self.topics)
            return [SearchOp(("users",), filter=_eq_filter(status, topic), limit=_LIMIT)]
        if kind == "search_ns":
            return [self._user_search(rng)]
        if kind == "search_range":
            low = self._range_lows(rng, 1)[0]
            return [SearchOp(("users",), filter=_range_filter(low), limit=_LIMIT)]
        if kind == "vector":
            query = _topic_text(rng, rng.randrange(self.topics), 3)
            return [SearchOp(("users",), query=query, limit=_LIMIT)]
        return self._batch(rng, name)

    def _user_search(self, rng: random.Random) -> SearchOp:
        user = ("users", f"u{rng.randrange(self.namespaces)}")
        return SearchOp(user, filter={"status": rng.choice(_STATUSES)}, limit=5)

    def _batch(self, rng: random.Random, name: str) -> list[Op]:
        ops: list[Op] = [GetOp(*self._existing(rng)) for _ in range(_BATCH_GETS)]
        for j in range(_BATCH_PUTS):
            if j % 2:
                namespace, key = self._existing(rng)  # an update
            else:
                namespace, key = _namespace(rng.randrange(self.namespaces)), f"{name}-{j}"
            ops.append(PutOp(namespace, key, self._value(rng)))
        ops += [self._user_search(rng) for _ in range(_BATCH_SEARCHES)]
        rng.shuffle(ops)
        return ops

    # -- rows --------------------------------------------------------------------------------

    def rows(self) -> list[Row]:
        rows: list[Row] = []
        differ = self._range_results_differ()
        for unit in _UNITS:
            if not self.samples.latency_of(unit, OURS):
                continue  # a vector unit on a server without pgvector
            kind, _, route = unit.partition("@")
            label = _LABELS[kind] + (_PROXY_LABEL if route else "")
            if kind == "search_range" and differ:
                label += " ⚠ official's results differ (it compares numbers as text),"
            key = f"store.{kind}.{route}." if route else f"store.{kind}."
            for q in ("p50", "p99"):
                rows.append(self.latency_row(f"{key}{q}", label, unit, q=q))
        rows.append(
            self.median_row(
                "store.proxy_rtt",
                "round trip added by the proxy (SELECT 1)",
                "proxy added round trip",
                "ms",
            )
        )
        if self.range_answers:
            rows.append(self._range_row(differ))
        if self.vector_recall:
            rows.append(
                Row(
                    workload=self.name,
                    key="store.vector.recall",
                    metric="vector search: recall@10 against an exact scan",
                    unit="%",
                    official=_percent(self.vector_recall.get(OFFICIAL)),
                    ours=_percent(self.vector_recall.get(OURS)),
                    higher_is_better=True,
                    n={
                        p: _RECALL_QUERIES if p in self.vector_recall else 0
                        for p in IMPLEMENTATIONS
                    },
                )
            )
        return rows

    def _range_results_differ(self) -> bool | None:
        if not all(p in self.range_answers for p in IMPLEMENTATIONS):
            return None
        return self.range_answers[OFFICIAL] != self.range_answers[OURS]

    def _range_row(self, differ: bool | None) -> Row:
        def mean_size(participant: str) -> float | None:
            answers = self.range_answers.get(participant)
            return sum(map(len, answers)) / len(answers) if answers else None

        verdict = {True: "results differ", False: "same results", None: "not compared"}[differ]
        return Row(
            workload=self.name,
            key="store.search_range.matches",
            metric=f"numeric range filter: items matched (official compares as text): {verdict}",
            unit="items",
            official=mean_size(OFFICIAL),
            ours=mean_size(OURS),
            n={p: len(self.range_answers.get(p, [])) for p in IMPLEMENTATIONS},
        )


def _invoke(store: BaseStore, ops: list[Op]) -> Any:
    """Run `ops` the way an application would: one public call per op, or one batch."""
    if len(ops) > 1:
        return store.batch(ops)
    op = ops[0]
    if isinstance(op, PutOp):
        assert op.value is not None
        return store.put(op.namespace, op.key, op.value)
    if isinstance(op, GetOp):
        return store.get(op.namespace, op.key)
    assert isinstance(op, SearchOp)
    return store.search(op.namespace_prefix, query=op.query, filter=op.filter, limit=op.limit)


def _eq_filter(status: str, topic: int) -> dict[str, Any]:
    return {"status": status, "topic": f"t{topic}"}


def _range_filter(low: int) -> dict[str, Any]:
    return {"score": {"$gte": low, "$lt": low + _WINDOW}}


def _keys(items: Iterable[SearchItem]) -> set[tuple[str, str]]:
    return {(".".join(i.namespace), i.key) for i in items}


def _percent(value: float | None) -> float | None:
    return None if value is None else 100 * value
