"""The store search benchmark and the relevance check, run at smoke size: structure only.

No timing or score is asserted: these tests prove both run and report what RESULTS.md quotes.
"""

from __future__ import annotations

import pytest

from benchmarks import relevance, search_bench
from tests.harness import TestServer


def test_the_search_benchmark_reports_text_latency_and_with_pgvector_recall(
    dsn: str, pg_server: TestServer
) -> None:
    result = search_bench.run(dsn, 300, 3)
    assert result["items"] == 300
    assert {"text", "text, filter status (25%)", "text, filter topic (0.1%)"} <= set(
        result["p50_ms"]
    )
    if pg_server.has_extension("vector"):
        assert {"hybrid", "vector, official", "vector, ours"} <= set(result["p50_ms"])
        assert all(0 <= r <= 1 for r in result["recall@10"].values())
        assert "bare hnsw, filter topic, ef_search=40" in result["recall@10"]


@pytest.mark.pgvector
def test_the_relevance_check_scores_every_ranking_on_the_docstring_corpus(dsn: str) -> None:
    result = relevance.run(dsn, documents=40)
    assert result["documents"] == 40
    scored = [v for v in result.values() if isinstance(v, dict)]
    assert len(scored) == 5
    assert all(0 <= s["nDCG@10"] <= s["recall@10"] <= 1 for s in scored)


def test_the_relevance_corpus_is_labelled_standard_library_text() -> None:
    docs = relevance.corpus()
    assert len(docs) > 500
    assert len({key for key, _, _ in docs}) == len(docs)
    assert all(summary and body for _, summary, body in docs)
