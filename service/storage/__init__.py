"""The only package that speaks SQL.

Everything above it (the ledger, the audit read side, the callback worker, the shell and
the HTTP layer) calls functions named for what they read or write and never holds SQL
text. Each module here is one job on one dialect:

- `schema`: the numbered migrations and PRAGMAs;
- `sqlite`: connections (the writer's, read-only ones for the worker and the shell);
- `readpool`: read-only connections for the API's worker threads;
- `rows`: turning rows into `Event`, `Stream` and back, by column name;
- `appends`: what the single writer writes and reads back inside its batch;
- `events`, `tickets`, `outbox`: the read side's queries.

A second backend (PostgreSQL, in `postgres/`) brings its own `schema` and connections and
the same function names over its own SQL; callers receive the connection they were given and pass
it back in, so they never learn which dialect they are talking to.
"""

from __future__ import annotations

__all__ = ["StoreUnavailable"]


class StoreUnavailable(Exception):
    """The database cannot take a write now (locked, read-only, full): try again later."""
