"""Which dialect a connection speaks, so that callers never ask.

The read side (the audit functions, the pages, the shell, the courier) is handed a
connection and passes it back into `storage.events`, `storage.tickets` and
`storage.outbox`. Those modules hold SQLite's statements; each function marked
`portable` hands a PostgreSQL connection to its twin, the function of the same name in
the module of the same name under `storage.postgres`. So the backend is chosen once,
where the connection is opened (`storage.backend`), and no caller branches on it.
"""

from __future__ import annotations

import functools
import importlib
import sys
from collections.abc import Callable
from typing import Any, TypeVar

__all__ = ["is_postgres", "portable"]

F = TypeVar("F", bound=Callable[..., Any])


def is_postgres(db: object) -> bool:
    """Asked of psycopg only once it is loaded: a process that never loaded it holds no
    PostgreSQL connection, and a shell tool on a file starts without its 0.1 s import."""
    psycopg = sys.modules.get("psycopg")
    return psycopg is not None and isinstance(db, psycopg.Connection | psycopg.AsyncConnection)


def portable(function: F) -> F:
    """`function` on a SQLite connection (its first argument), its twin on a PostgreSQL one."""
    module = function.__module__.rsplit(".", 1)[-1]

    @functools.cache
    def twin() -> Callable[..., Any]:
        found: Callable[..., Any] = getattr(
            importlib.import_module(f"service.storage.postgres.{module}"), function.__name__
        )
        return found

    @functools.wraps(function)
    def call(db: Any, *args: Any, **kwargs: Any) -> Any:
        if is_postgres(db):
            return twin()(db, *args, **kwargs)
        return function(db, *args, **kwargs)

    return call  # type: ignore[return-value]
