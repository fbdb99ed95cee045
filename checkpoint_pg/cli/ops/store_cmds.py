"""`store ls`, `store get`, `store search`: look at the long-term memory store.

Namespaces are written dotted, as the store's own ``prefix`` column holds them: ``users.42``
is ``("users", "42")`` (LangGraph forbids dots inside a namespace label, so this is
unambiguous); an empty string is the root. Reads never refresh an item's TTL.

Semantic search (``--query``) needs the embedding function the items were indexed with:
``--embed module.path:attribute`` (an `Embeddings` object or a function) or a LangChain
``provider:model`` string. Dimensions, vector type and distance are read from the database.
"""

from __future__ import annotations

import importlib
import json
import re
from typing import Any

import click

from checkpoint_pg.cli.ops.common import (
    NotFoundError,
    OperationFailedError,
    Session,
    json_object_option,
    operator_command,
)
from checkpoint_pg.cli.ops.output import emit_json, kv_table, preview, table, timestamp

__all__ = ["COMMANDS", "parse_namespace"]


def parse_namespace(text: str, *, allow_root: bool = True) -> tuple[str, ...]:
    """``"users.42"`` -> ``("users", "42")``; ``""`` -> ``()`` (the root)."""
    if text in ("", "."):
        if not allow_root:
            raise click.BadParameter("a namespace is needed, e.g. users.42")
        return ()
    labels = tuple(text.split("."))
    if not all(labels):
        raise click.BadParameter(
            f"{text!r}: a namespace is dot-separated labels, none empty (e.g. users.42)"
        )
    return labels


def _dotted(namespace: tuple[str, ...] | list[str]) -> str:
    return ".".join(namespace)


def _require_store(session: Session) -> None:
    if not session.fetchone("table_exists", {"table": session.qualified("store")})[0]:
        raise OperationFailedError(
            "the store tables do not exist here: run `checkpoint-pg setup` first"
        )


@click.group("store")
def store() -> None:
    """Look at the long-term memory store (namespaces are dotted: users.42)."""


@operator_command("ls", short_help="List namespaces.")
@click.argument("prefix", default="")
@click.option("--max-depth", type=click.IntRange(min=1), default=None, help="Truncate deeper ones.")
@click.option("--limit", type=click.IntRange(min=1), default=100, show_default=True)
@click.option("--offset", type=click.IntRange(min=0), default=0)
def ls(session: Session, prefix: str, max_depth: int | None, limit: int, offset: int) -> None:
    """Namespaces under PREFIX (dotted; default: all)."""
    _require_store(session)
    found = session.store().list_namespaces(
        prefix=parse_namespace(prefix) or None, max_depth=max_depth, limit=limit, offset=offset
    )
    if session.json:
        emit_json({"namespaces": [list(ns) for ns in found]})
        return
    if not found:
        click.echo("no namespaces")
        return
    table(["namespace"], [(_dotted(ns),) for ns in found])


@operator_command("get", short_help="One item, whole.")
@click.argument("namespace")
@click.argument("key")
def get(session: Session, namespace: str, key: str) -> None:
    """The item KEY in NAMESPACE (dotted, e.g. users.42), with its whole value."""
    _require_store(session)
    ns = parse_namespace(namespace, allow_root=False)
    item = session.store().get(ns, key, refresh_ttl=False)
    if item is None:
        raise NotFoundError(f"no item {key!r} in namespace {namespace}")
    if session.json:
        emit_json(item.dict())
        return
    kv_table(
        [
            ("namespace", _dotted(item.namespace)),
            ("key", item.key),
            ("created", timestamp(item.created_at)),
            ("updated", timestamp(item.updated_at)),
        ]
    )
    click.echo(json.dumps(item.value, indent=2, ensure_ascii=False, default=str))


def _embeddings(spec: str) -> Any:
    """``module.path:attribute`` imported, else the string as is (LangChain provider:model)."""
    module_name, _, attribute = spec.partition(":")
    if attribute and re.fullmatch(r"[\w.]+", module_name) and attribute.isidentifier():
        try:
            return getattr(importlib.import_module(module_name), attribute)
        except (ImportError, AttributeError):
            pass
    return spec


def _index_config(session: Session, embed: str) -> dict[str, Any]:
    """An `index=` configuration matching the vectors already stored."""
    row = session.execute(
        "vector_column_type", {"table": session.qualified("store_vectors")}
    ).fetchone()
    match = re.fullmatch(r"(\w+)\((\d+)\)", row[0]) if row and row[0] else None
    if match is None:
        raise OperationFailedError(
            "no vectors here (store_vectors is missing): the store was set up without index="
        )
    vector_type, dims = match.group(1), int(match.group(2))
    defs = session.execute("vector_index_definitions", {"schema": session.schema}).fetchall()
    distance = "cosine"
    for (definition,) in defs:
        if "_l2_ops" in definition:
            distance = "l2"
        elif "_ip_ops" in definition:
            distance = "inner_product"
    return {
        "dims": dims,
        "embed": _embeddings(embed),
        "distance_type": distance,
        "ann_index_config": {"kind": "flat", "vector_type": vector_type},
    }


@operator_command("search", short_help="Items under a namespace: filter, semantic query.")
@click.argument("namespace", default="")
@click.option("--query", default=None, help="Rank by similarity to this text (needs --embed).")
@click.option(
    "--embed",
    metavar="SPEC",
    default=None,
    help="For --query: module.path:attribute of the embeddings, or provider:model.",
)
@click.option(
    "--filter",
    "value_filter",
    metavar="JSON",
    help='Match values, e.g. \'{"score": {"$gte": 5}}\'.',
)
@click.option("--limit", type=click.IntRange(min=1), default=10, show_default=True)
@click.option("--offset", type=click.IntRange(min=0), default=0)
def search(
    session: Session,
    namespace: str,
    query: str | None,
    embed: str | None,
    value_filter: str | None,
    limit: int,
    offset: int,
) -> None:
    """Items under NAMESPACE (dotted prefix; default: all), newest first, or by similarity
    to --query."""
    from store.sync import PostgresStore

    if query is not None and embed is None:
        raise click.UsageError(
            "--query needs the embeddings the items were indexed with: --embed "
            "module.path:attribute (or provider:model)"
        )
    filter_value = json_object_option(value_filter)
    _require_store(session)
    memory = session.store()
    if query is not None and embed is not None:
        memory = PostgresStore(
            session.conn, index=_index_config(session, embed), schema=session.schema
        )
    found = memory.search(
        parse_namespace(namespace),
        query=query,
        filter=filter_value,
        limit=limit,
        offset=offset,
        refresh_ttl=False,
    )
    if session.json:
        emit_json({"items": [item.dict() for item in found]})
        return
    if not found:
        click.echo("no items")
        return
    scored = any(item.score is not None for item in found)
    table(
        ["namespace", "key", "updated", *(["score"] if scored else []), "value"],
        [
            (
                _dotted(item.namespace),
                item.key,
                timestamp(item.updated_at),
                *([f"{item.score:.3f}" if item.score is not None else ""] if scored else []),
                preview(item.value, 60),
            )
            for item in found
        ],
        right=("score",),
    )


for _command in (ls, get, search):
    store.add_command(_command)

COMMANDS: list[click.Command] = [store]
