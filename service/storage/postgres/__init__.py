"""The PostgreSQL backend: the same tables and the same function names over PostgreSQL's SQL.

A folder of its own rather than `postgres_*.py` files beside the SQLite ones, because the
backend is a parallel set of modules with the SQLite modules' names (`schema` here,
`connections` for `sqlite`, and later `appends`, `events`, `tickets`, `outbox`): a caller
picks the package by the URL's scheme and calls the same names, and a reviewer reads one
dialect in one folder.
"""
