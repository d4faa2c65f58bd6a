"""PostgreSQL's plan for a read, as the EXPLAIN tests compare it: one line a node.

The read side proves that its statements walk indexes (`explain_*` in each module); on
PostgreSQL the plan comes as JSON, flattened here to `Node on relation using index`.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from service.storage.postgres.connections import Connection

__all__ = ["plan"]


def plan(db: Connection, sql: str, params: tuple[object, ...]) -> list[str]:
    """Each node of PostgreSQL's plan (EXPLAIN (FORMAT JSON)): `Node on relation using index`."""
    found = db.execute("EXPLAIN (FORMAT JSON) " + sql, params).fetchone()
    document = next(iter(found.values())) if found is not None else []
    return list(_nodes(document[0]["Plan"]))


def _nodes(node: dict[str, Any]) -> Iterator[str]:
    relation, index = node.get("Relation Name"), node.get("Index Name")
    yield (
        node["Node Type"]
        + (f" on {relation}" if relation else "")
        + (f" using {index}" if index else "")
    )
    for child in node.get("Plans", []):
        yield from _nodes(child)
