"""The ```sql blocks of docs/audit.md, by the `-- name` on their first line.

A block named `-- name (postgresql)` is the PostgreSQL dialect of `name`; every other
block runs on both backends.
"""

from __future__ import annotations

import re
from pathlib import Path

DOC = Path(__file__).parents[2] / "docs" / "audit.md"
POSTGRES = " (postgresql)"


def blocks(dialect: str = "sqlite") -> dict[str, str]:
    """Every query for `dialect` ("sqlite" or "postgresql"), by name."""
    found = re.findall(r"```sql\n(.*?)```", DOC.read_text(), flags=re.S)
    named, dialects = {}, {}
    for sql in found:
        name = re.match(r"-- ([a-z-]+(?: \(postgresql\))?)\n", sql)
        assert name, f"every cookbook query starts with `-- name`: {sql[:60]!r}"
        named[name.group(1)] = sql
    assert len(named) == len(found), "cookbook query names must be unique"
    for name, sql in named.items():
        if name.endswith(POSTGRES):
            assert name.removesuffix(POSTGRES) in named, f"{name} has no SQLite original"
            dialects[name.removesuffix(POSTGRES)] = sql
    common = {name: sql for name, sql in named.items() if not name.endswith(POSTGRES)}
    return common | dialects if dialect == "postgresql" else common


def for_log(db: Path | str) -> dict[str, str]:
    """The queries in the dialect of the log `db` (a file, or a PostgreSQL URL)."""
    return blocks("postgresql" if isinstance(db, str) else "sqlite")
