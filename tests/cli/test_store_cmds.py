"""store ls, get and search."""

from __future__ import annotations

import pytest
from langchain_core.embeddings import Embeddings

from store import PostgresStore
from tests.cli.conftest import Seeded, parsed


def test_store_ls_lists_namespaces_dotted(seeded: Seeded) -> None:
    result = seeded.run("store", "ls")
    assert result.exit_code == 0
    assert [line.strip() for line in result.stdout.splitlines()[2:]] == [
        "docs",
        "users.42",
        "users.43",
    ]
    data = parsed(seeded.run("store", "ls", "users", "--json"))
    assert data == {"namespaces": [["users", "42"], ["users", "43"]]}


def test_store_get_prints_the_whole_item(seeded: Seeded) -> None:
    result = seeded.run("store", "get", "users.42", "prefs")
    assert result.exit_code == 0
    assert '"text": "likes short answers"' in result.stdout
    data = parsed(seeded.run("store", "get", "users.42", "prefs", "--json"))
    assert data["namespace"] == ["users", "42"]
    assert data["value"] == {"text": "likes short answers", "score": 7}
    assert data["created_at"]


def test_store_get_of_a_missing_item_is_not_found(seeded: Seeded) -> None:
    result = seeded.run("store", "get", "users.42", "nope")
    assert result.exit_code == 3
    assert "no item 'nope' in namespace users.42" in result.stderr


def test_store_search_filters_values(seeded: Seeded) -> None:
    data = parsed(
        seeded.run("store", "search", "users", "--filter", '{"score": {"$gte": 5}}', "--json")
    )
    assert sorted((tuple(i["namespace"]), i["key"]) for i in data["items"]) == [
        (("users", "42"), "prefs"),
        (("users", "43"), "prefs"),
    ]
    table = seeded.run("store", "search", "users.42")
    assert "likes short answers" in table.stdout
    assert "formal" in table.stdout


def test_store_search_with_a_bad_filter_is_a_usage_error(seeded: Seeded) -> None:
    assert seeded.run("store", "search", "users", "--filter", "{nope").exit_code == 2


def test_store_search_query_needs_embeddings(seeded: Seeded) -> None:
    result = seeded.run("store", "search", "users", "--query", "short")
    assert result.exit_code == 2
    assert "--embed" in result.stderr


class KeywordEmbeddings(Embeddings):
    """3 dims: does the text mention cats, dogs, birds."""

    def _vector(self, text: str) -> list[float]:
        return [float(word in text) + 0.01 for word in ("cat", "dog", "bird")]

    def embed_documents(self, texts: list[str]) -> list[list[float]]:
        return [self._vector(t) for t in texts]

    def embed_query(self, text: str) -> list[float]:
        return self._vector(text)


EMBEDDINGS = KeywordEmbeddings()


@pytest.mark.pgvector
def test_store_search_query_ranks_by_similarity(dsn: str, seeded: Seeded) -> None:
    index = {"dims": 3, "embed": EMBEDDINGS, "fields": ["text"]}
    with PostgresStore.from_conn_string(dsn, index=index) as memory:  # type: ignore[arg-type]
        memory.setup()
        memory.put(("pets",), "a", {"text": "a dog barks"})
        memory.put(("pets",), "b", {"text": "a cat sleeps"})
    embed = f"{__name__}:EMBEDDINGS"
    data = parsed(
        seeded.run("store", "search", "pets", "--query", "cat", "--embed", embed, "--json")
    )
    assert [i["key"] for i in data["items"]] == ["b", "a"]
    assert data["items"][0]["score"] > data["items"][1]["score"]
