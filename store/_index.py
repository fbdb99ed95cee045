"""The `index=` configuration of semantic search, checked once and turned into SQL pieces."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

from langchain_core.embeddings import Embeddings
from langgraph.store.base import ensure_embeddings, get_text_at_path, tokenize_path
from psycopg import sql

from store.errors import InvalidIndexConfigError

Distance = Literal["cosine", "l2", "inner_product"]

_OPCLASS_SUFFIX = {"cosine": "cosine_ops", "l2": "l2_ops", "inner_product": "ip_ops"}
_OPERATOR = {"cosine": "<=>", "l2": "<->", "inner_product": "<#>"}


@dataclass(frozen=True)
class VectorIndex:
    """A validated index configuration."""

    dims: int
    embeddings: Embeddings
    fields: tuple[tuple[str, Literal["$"] | list[str]], ...]
    distance: Distance
    vector_type: Literal["vector", "halfvec"]
    kind: Literal["hnsw", "ivfflat", "flat"]
    params: tuple[tuple[str, int], ...]
    # pgvector settings for the ANN searches (GUC, value), from index["ann_search"]
    search_settings: tuple[tuple[str, str], ...] = ()

    @property
    def operator(self) -> str:
        return _OPERATOR[self.distance]

    def score_sql(self, distance_expr: str) -> str:
        """Similarity (higher is better) from a distance, as the official store reports it."""
        if self.distance == "cosine":
            return f"1 - ({distance_expr})"
        return f"-({distance_expr})"

    def ddl_pieces(self) -> dict[str, sql.Composable]:
        opclass = f"{self.vector_type}_{_OPCLASS_SUFFIX[self.distance]}"
        with_params = (
            sql.SQL(" WITH ({})").format(
                sql.SQL(", ").join(
                    sql.SQL("{} = {}").format(sql.Identifier(k), sql.Literal(v))
                    for k, v in self.params
                )
            )
            if self.params
            else sql.SQL("")
        )
        return {
            "vector_type": sql.SQL(self.vector_type),
            "dims": sql.Literal(self.dims),
            "index_kind": sql.SQL(self.kind),
            "opclass": sql.SQL(opclass),
            "index_params": with_params,
        }

    def texts_for(
        self, value: Mapping[str, Any], index: Literal[False] | Sequence[str] | None
    ) -> list[tuple[str, str]]:
        """(field_name, text) pairs to embed for an item, named as the official store names them."""
        if index is False:
            return []
        paths = (
            list(self.fields)
            if index is None
            else [(p, "$" if p == "$" else tokenize_path(p)) for p in index]
        )
        out: list[tuple[str, str]] = []
        for path, tokens in paths:
            texts = get_text_at_path(value, tokens)
            for i, text in enumerate(texts):
                out.append((f"{path}.{i}" if len(texts) > 1 else path, text))
        return out

    def check(self, vector: Sequence[float], what: str) -> str:
        """The vector as pgvector text, after checking its dimensions."""
        if len(vector) != self.dims:
            raise InvalidIndexConfigError(
                f"{what} has {len(vector)} dimensions; the index was configured with {self.dims}"
            )
        return "[" + ",".join(repr(float(x)) for x in vector) + "]"


def vector_index(config: Mapping[str, Any] | None) -> VectorIndex | None:
    """Validate an official-style `PostgresIndexConfig` dict (None: no semantic search)."""
    if not config:
        return None
    if "text" in config and config.get("dims") is None and config.get("embed") is None:
        return None  # full-text search only (store._text)
    dims = config.get("dims")
    if not isinstance(dims, int) or isinstance(dims, bool) or not 0 < dims <= 16000:
        raise InvalidIndexConfigError(f"index['dims'] must be a positive int, got {dims!r}")
    embeddings = ensure_embeddings(config.get("embed"))
    if embeddings is None:
        raise InvalidIndexConfigError("index['embed'] is required: an Embeddings or a function")
    fields = config.get("fields") or ["$"]
    if isinstance(fields, str):
        fields = [fields]
    tokenized = tuple((f, "$" if f == "$" else tokenize_path(f)) for f in fields)
    distance = config.get("distance_type", "cosine")
    if distance not in _OPERATOR:
        raise InvalidIndexConfigError(
            f"index['distance_type'] must be cosine, l2 or inner_product, not {distance!r}"
        )
    ann = dict(config.get("ann_index_config") or {})
    vector_type = ann.pop("vector_type", "vector")
    if vector_type not in ("vector", "halfvec"):
        raise InvalidIndexConfigError(f"vector_type must be vector or halfvec, not {vector_type!r}")
    kind = ann.pop("kind", "hnsw")
    if kind not in ("hnsw", "ivfflat", "flat"):
        raise InvalidIndexConfigError(f"index kind must be hnsw, ivfflat or flat, not {kind!r}")
    allowed = {"m", "ef_construction"} if kind == "hnsw" else {"lists", "nlist"}
    params: list[tuple[str, int]] = []
    for key, value in ann.items():
        if key not in allowed:
            continue
        if not isinstance(value, int) or isinstance(value, bool) or value <= 0:
            raise InvalidIndexConfigError(f"index parameter {key} must be a positive int")
        params.append(("lists" if key == "nlist" else key, value))
    settings = ann_search(config.get("ann_search"), kind)
    return VectorIndex(
        search_settings=settings,
        dims=dims,
        embeddings=embeddings,
        fields=tokenized,  # type: ignore[arg-type]
        distance=distance,
        vector_type=vector_type,
        kind=kind,
        params=tuple(params) if kind != "flat" else (),
    )


_ITERATIVE = ("off", "relaxed_order", "strict_order")


def ann_search(config: object, kind: str) -> tuple[tuple[str, str], ...]:
    """``index["ann_search"]``: how far the ANN index searches (``ef_search`` for hnsw,
    ``probes`` for ivfflat) and pgvector 0.8's ``iterative_scan``; each optional, the
    server's setting when absent. As (GUC, value) pairs set for each search statement."""
    if config is None:
        return ()
    if not isinstance(config, Mapping):
        raise InvalidIndexConfigError(f"index['ann_search'] must be a dict, got {config!r}")
    unknown = set(config) - {"ef_search", "probes", "iterative_scan"}
    if unknown:
        raise InvalidIndexConfigError(f"index['ann_search'] has unknown keys {sorted(unknown)}")
    prefix = "ivfflat" if kind == "ivfflat" else "hnsw"
    settings: list[tuple[str, str]] = []
    for key, guc, top in (
        ("ef_search", "hnsw.ef_search", 1000),
        ("probes", "ivfflat.probes", 32768),
    ):
        value = config.get(key)
        if value is None:
            continue
        if not isinstance(value, int) or isinstance(value, bool) or not 0 < value <= top:
            raise InvalidIndexConfigError(
                f"index['ann_search']['{key}'] must be an int from 1 to {top}, got {value!r}"
            )
        if guc.startswith(prefix):
            settings.append((guc, str(value)))
    iterative = config.get("iterative_scan")
    if iterative is not None:
        if iterative not in _ITERATIVE:
            raise InvalidIndexConfigError(
                f"index['ann_search']['iterative_scan'] must be one of {', '.join(_ITERATIVE)}, "
                f"got {iterative!r}"
            )
        settings.append((f"{prefix}.iterative_scan", str(iterative)))
    return tuple(settings)
