"""The ```sql blocks of docs/audit.md, by the `-- name` on their first line."""

from __future__ import annotations

import re
from pathlib import Path

DOC = Path(__file__).parents[2] / "docs" / "audit.md"


def blocks() -> dict[str, str]:
    found = re.findall(r"```sql\n(.*?)```", DOC.read_text(), flags=re.S)
    named = {}
    for sql in found:
        name = re.match(r"-- ([a-z-]+)\n", sql)
        assert name, f"every cookbook query starts with `-- name`: {sql[:60]!r}"
        named[name.group(1)] = sql
    assert len(named) == len(found), "cookbook query names must be unique"
    return named
