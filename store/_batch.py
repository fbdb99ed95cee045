"""A batch of store ops as at most two statements, sent together: pure, no I/O.

Reads (every get, search and list_namespaces of the batch) are one statement: a UNION ALL
of one branch per search or listing plus one branch for all gets, with the TTL refresh of
what they return as a data-modifying CTE (left out when nothing asks for a refresh, so such
reads work on a read-only replica). Writes (every put and delete, deduplicated, last wins)
are one statement: deletes, upserts, stale-vector deletes and vector upserts as CTEs. Both
travel in one pipeline: one round trip for any mix of ops. Two kinds of search are run again,
together, in a second round trip: a vector search that the ANN index answered with fewer
items than asked (the index stopped early, or one item's many vectors filled the candidate
rows), exactly and uncapped; and a search under a prefix holding more than
BOUNDED_PREFIX_ITEMS items, planned with its values (see `store._reads`).

`store._plan` validates the ops into a `Plan`; `store._reads` and `store._writes` compose its
statements, `store._decode` turns rows into results. Embeddings are computed by the shell
before any connection is taken: `plan_batch` names the texts, `Plan.operation` takes their
vectors.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, cast

from langgraph.store.base import GetOp, ListNamespacesOp, PutOp, Result

from checkpoint_pg._runtime.aead import RowBoundEncryption
from checkpoint_pg._runtime.citus import citus_installed
from checkpoint_pg._runtime.protocol import Operation, Query, Steps
from store._decode import collect
from store._index import VectorIndex
from store._reads import read_query
from store._sql import StoreNames
from store._text import Fusion, TextIndex
from store._writes import write_query

if TYPE_CHECKING:
    from store._plan import Search

Key = tuple[tuple[str, ...], str]


@dataclass
class Database:
    """What a store learns of its database once and keeps: whether it has the citus
    extension (None: not asked yet). Some statements take a second form there."""

    citus: bool | None = None

    def learn(self) -> Steps[bool]:
        """Whether the database is Citus: asked once (one catalog query), then known."""
        if self.citus is None:
            self.citus = yield from citus_installed()
        return self.citus


@dataclass
class Plan:
    """A validated batch, waiting for its embeddings."""

    size: int
    names: StoreNames
    index: VectorIndex | None
    # the store's prefixes known to hold more than BOUNDED_PREFIX_ITEMS items (shared, updated)
    broad: set[str] = field(default_factory=set)
    # the store's keyring: values are sealed on put and opened on read (store._sealed)
    encryption: RowBoundEncryption | None = None
    # the store's database, as far as known (shared, updated)
    database: Database = field(default_factory=Database)
    # full-text index and hybrid fusion settings (store._text)
    text: TextIndex | None = None
    fusion: Fusion = field(default_factory=Fusion)
    gets: list[tuple[int, GetOp]] = field(default_factory=list)
    searches: list[Search] = field(default_factory=list)
    listings: list[tuple[int, ListNamespacesOp]] = field(default_factory=list)
    puts: dict[Key, PutOp] = field(default_factory=dict)
    # each put's value as JSON text, serialised once while validating
    values: dict[Key, str] = field(default_factory=dict)
    # texts to embed: item fields (embed_documents) and search queries (embed_query)
    documents: list[tuple[tuple[str, ...], str, str, str]] = field(default_factory=list)
    queries: list[str] = field(default_factory=list)

    def operation(
        self, document_vectors: Sequence[Sequence[float]], query_vectors: Sequence[Sequence[float]]
    ) -> Operation[list[Result]]:
        """The batch's operation, given the vectors of `documents` and `queries`."""
        vectors = [
            cast(VectorIndex, self.index).check(v, "an embedding of an item's text")
            for v in document_vectors
        ]
        queries = [
            cast(VectorIndex, self.index).check(v, "a query embedding") for v in query_vectors
        ]
        return Operation(self._steps(vectors, queries), writes=bool(self.puts), name="store.batch")

    def _steps(self, vectors: list[str], queries: list[str]) -> Steps[list[Result]]:
        results: list[Result] = [None] * self.size
        if self.size:
            yield from self.database.learn()
        batch: list[Query] = []
        reads = read_query(self, queries, exact=set())
        reads_at = len(batch)
        if reads is not None:
            batch.append(reads)
        if self.puts:
            batch.append(write_query(self, vectors))
        if not batch:
            return results
        # One statement goes alone; two travel together in one pipeline: one round trip.
        answers = (yield batch) if len(batch) > 1 else [(yield batch[0])]
        if reads is not None:
            short = collect(self, answers[reads_at], results)
            if short:
                again = read_query(self, queries, exact=short, only=short)
                if again is not None:
                    collect(self, (yield again), results, only=short)
        return results
