"""Reads of the `events` table on PostgreSQL: `service.storage.events`, statement for statement.

Every query walks the primary key or a `(column, position)` index, as on SQLite.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any

from psycopg.rows import tuple_row

from service.storage.events import (
    EVERY_TICKET,
    FILTER_COLUMNS,
    Link,
    Order,
    Shown,
    TicketRange,
    ranges_between,
)
from service.storage.postgres.connections import Connection
from service.storage.postgres.nul import holds_nul
from service.storage.rows import EVENT_COLUMNS, event_from_row, event_from_values
from statemachine.events import Event
from statemachine.projection import RewindRow

__all__ = [
    "at",
    "before_first",
    "count",
    "explain",
    "first_position_from",
    "iter_after",
    "last_position",
    "last_position_at",
    "links_to_check",
    "rewind_rows",
    "rows_for_rules",
    "select",
    "select_shown",
    "stream_length",
    "stream_slice",
    "ticket_events",
    "ticket_ranges",
]


def select(
    db: Connection, equal: Mapping[str, str], low: int, high: int, order: Order, limit: int
) -> list[Event]:
    """Up to `limit` events at positions `low..high` whose columns equal `equal`, in `order`."""
    if holds_nul(*equal.values()):
        return []
    sql, params = _select(equal, low, high, order, limit)
    return [event_from_row(row) for row in db.execute(sql, params)]


def select_shown(
    db: Connection, equal: Mapping[str, str], low: int, high: int, order: Order, limit: int
) -> list[Shown]:
    """`select`'s events, only the columns a timeline shows of each."""
    if holds_nul(*equal.values()):
        return []
    sql, params = _select(equal, low, high, order, limit, _SHOWN_COLUMNS)
    return [
        Shown(*(row[name] for name in Shown.__struct_fields__)) for row in db.execute(sql, params)
    ]


def explain(
    db: Connection, equal: Mapping[str, str], low: int, high: int, order: Order
) -> list[str]:
    """PostgreSQL's plan for `select`, a line a node ("Index Scan using events_by_action on
    events"), read from `EXPLAIN (FORMAT JSON)`: the proof that it walks an index."""
    sql, params = _select(equal, low, high, order, 100)
    (plan,) = _scalar(db, "EXPLAIN (FORMAT JSON) " + sql, tuple(params))
    return list(_nodes(plan["Plan"]))


def iter_after(
    db: Connection, after: int = 0, through: int = 2**62, *, chunk: int = 5000
) -> Iterator[Event]:
    """Every event after a position (through another), in order, a chunk at a time."""
    return map(event_from_values, _tuples(db, _EVENT_ROWS, after, through, EVERY_TICKET, chunk))


def rows_for_rules(
    db: Connection, through: int, tickets: TicketRange = EVERY_TICKET
) -> Iterator[tuple[Any, ...]]:
    """Every row of `tickets` through position `through` as stored, in position order:
    plain tuples, `EVENT_COLUMNS`.

    The server narrows the rows to `tickets`, so each of `verify`'s worker processes is
    sent its own part only, and psycopg makes each row a tuple at once: a dict a row, then
    a tuple made of it, took a fifth of a one-process `verify`.
    """
    return _tuples(db, _EVENT_ROWS, 0, through, tickets, _ROWS_A_STATEMENT)


def links_to_check(db: Connection, through: int, keep: int) -> list[Link]:
    """The first `keep` rows through `through` whose link to the row before may be broken
    (see SQLite's twin): worked out inside PostgreSQL."""
    rows = db.execute(_TO_CHECK, (through, keep)).fetchall()
    return [_link(db, row["position"]) for row in rows]


def before_first(db: Connection, keep: int) -> list[int]:
    """The first `keep` positions below 1, where the writer never puts a row."""
    return [row["position"] for row in db.execute(_BEFORE_FIRST, (keep,)).fetchall()]


def last_position(db: Connection) -> int:
    """The position of the last event (0 on an empty log)."""
    return int(_scalar(db, "SELECT COALESCE(MAX(position), 0) AS n FROM events", ()))


def rewind_rows(
    db: Connection, after: int, through: int, tickets: TicketRange = EVERY_TICKET
) -> Iterator[RewindRow]:
    """What time travel folds of the events at positions `after+1..through`, in order
    (of `tickets` only, as on SQLite), as tuples made by psycopg."""
    return _tuples(db, _REWIND_ROWS, after, through, tickets, _ROWS_A_STATEMENT)


def ticket_ranges(db: Connection, parts: int) -> list[TicketRange]:
    """At most `parts` ranges of tickets with about as many events each (see SQLite's
    twin); the ids are ordered by their bytes, as Python and SQLite order them.

    The cuts are the ids at even steps of a sample of the log's pages (every page of a
    small log), not of the whole `events_by_ticket` index: walking that took 0.15 s on a
    million events, every worker waiting for it, and the sample's cuts leave parts within
    2% of even in 0.01 s.
    """
    steps = [n / parts for n in range(1, parts)]
    cuts = _scalar(db, _SAMPLED_CUTS, (steps, _SAMPLED_PAGES)) or []
    return ranges_between([cut for cut in cuts if cut is not None])


def _tuples(
    db: Connection,
    sql: str,
    after: int,
    through: int,
    tickets: TicketRange,
    chunk: int,
) -> Iterator[tuple[Any, ...]]:
    """Rows of `sql` (positions after..through, position first) of `tickets`, as tuples,
    keyset-paged by position, `chunk` a statement; in binary, which spares both sides
    writing and parsing numbers as text (verify 4% faster)."""
    narrowed, params = _of_tickets(sql, tickets)
    cursor = db.cursor(row_factory=tuple_row)
    while True:
        rows = cursor.execute(
            narrowed + " ORDER BY position LIMIT %s",
            (after, through, *params, chunk),
            binary=True,
        ).fetchall()
        yield from rows
        if len(rows) < chunk:
            return
        after = rows[-1][0]


def _of_tickets(sql: str, tickets: TicketRange) -> tuple[str, tuple[str, ...]]:
    """`sql` (a WHERE clause last) narrowed to `tickets`, ids compared byte by byte as
    Python and SQLite compare them; the events without a ticket fall in the range with
    no `low` (`TicketRange.holds`)."""
    params: tuple[str, ...] = ()
    if tickets.low is not None:
        sql, params = sql + ' AND ticket_id COLLATE "C" >= %s', (tickets.low,)
    if tickets.high is not None:
        ticketless = " OR ticket_id IS NULL" if tickets.low is None else ""
        sql = sql + f' AND (ticket_id COLLATE "C" < %s{ticketless})'
        params = (*params, tickets.high)
    return sql, params


def at(db: Connection, position: int) -> Event | None:
    row = db.execute(_SELECT_AT, (position,)).fetchone()
    return event_from_row(row) if row is not None else None


def ticket_events(db: Connection, ticket_id: str, through: int | None = None) -> Iterator[Event]:
    """One ticket's events in log order, up to position `through` when given."""
    rows = db.execute(_SELECT_TICKET, (ticket_id, through if through is not None else 2**62))
    return (event_from_row(row) for row in rows)


def stream_length(db: Connection, ticket_id: str) -> int:
    return int(_scalar(db, _STREAM_LENGTH, (ticket_id,)))


def stream_slice(db: Connection, ticket_id: str, first: int, last: int) -> Iterator[Event]:
    rows = db.execute(_SELECT_SLICE, (ticket_id, first, last))
    return (event_from_row(row) for row in rows)


def count(db: Connection) -> int:
    return int(_scalar(db, "SELECT COUNT(*) AS n FROM events", ()))


def last_position_at(db: Connection, moment: int | str) -> int:
    """The last position the log held at `moment`, a position or a time (0 before any)."""
    if isinstance(moment, int):
        found = _scalar(db, "SELECT MAX(position) AS n FROM events WHERE position <= %s", (moment,))
    else:
        found = _scalar(db, _LAST_AT_TIME, (moment,))
    return int(found or 0)


def first_position_from(db: Connection, time: str) -> int | None:
    found = _scalar(db, _FIRST_FROM_TIME, (time,))
    return None if found is None else int(found)


def _link(db: Connection, position: int) -> Link:
    prev_hash = _scalar(db, _PREV_HASH, (position,))
    before = db.execute(_ROW_BEFORE, (position,)).fetchone()
    if before is None:
        return Link(position, prev_hash, 0, None)
    return Link(position, prev_hash, before["position"], before["hash"])


def _nodes(node: dict[str, Any]) -> Iterator[str]:
    """A plan node and those below it, each as "<type>[ using <index>][ on <table>]"."""
    index = f" using {node['Index Name']}" if "Index Name" in node else ""
    table = f" on {node['Relation Name']}" if "Relation Name" in node else ""
    yield f"{node['Node Type']}{index}{table}"
    for child in node.get("Plans", ()):
        yield from _nodes(child)


def _scalar(db: Connection, sql: str, params: tuple[Any, ...]) -> Any:
    row = db.execute(sql, params).fetchone()
    return None if row is None else next(iter(row.values()))


def _select(
    equal: Mapping[str, str],
    low: int,
    high: int,
    order: Order,
    limit: int,
    columns: str | None = None,
) -> tuple[str, list[object]]:
    clauses = ["position BETWEEN %s AND %s"]
    params: list[object] = [low, high]
    for column, value in equal.items():
        if column not in FILTER_COLUMNS:
            raise ValueError(f"events cannot be filtered on {column!r}")
        clauses.append(f"{column} = %s")
        params.append(value)
    direction = "ASC" if order == "asc" else "DESC"
    sql = (
        f"SELECT {columns or _COLUMNS} FROM events WHERE {' AND '.join(clauses)}"
        f" ORDER BY position {direction} LIMIT %s"
    )
    return sql, [*params, limit]


_COLUMNS = ", ".join(EVENT_COLUMNS)
_SHOWN_COLUMNS = ", ".join(Shown.__struct_fields__)
# verify on a million events in workers took 6.1 s a chunk of 20,000 against 6.5 a chunk of
# 5,000 (4 runs each, alternated): a worker's process and its server's wait for each other
# at every statement, and the server reads from the index afresh.
_ROWS_A_STATEMENT = 20_000
_EVENT_ROWS = f"SELECT {_COLUMNS} FROM events WHERE position > %s AND position <= %s"
_REWIND_ROWS = (
    "SELECT position, ticket_id, action, outcome, recorded_at,"
    " CASE WHEN outcome = 'accepted' THEN payload END AS payload"
    " FROM events WHERE position > %s AND position <= %s"
    " AND (outcome = 'accepted' OR action IN ('identity_delivered', 'callback_delivered'))"
)
# Each row against the row before it in position order (`lag`): one walk of the primary
# key. A row whose previous is not at its position - 1 follows a gap (or is the first);
# else its prev_hash must be that row's hash. The self-join that SQLite runs, a seek of the
# row before for every row, took PostgreSQL twice as long (1.3 s against 0.7 s on a
# million events), on the cores verify's workers are using.
_TO_CHECK = (
    "SELECT position FROM (SELECT position, prev_hash, lag(position) OVER w AS previous,"
    " lag(hash) OVER w AS previous_hash FROM events WHERE position > 0 AND position <= %s"
    " WINDOW w AS (ORDER BY position)) AS linked"
    " WHERE previous IS DISTINCT FROM position - 1 OR prev_hash IS DISTINCT FROM previous_hash"
    " ORDER BY position LIMIT %s"
)
_BEFORE_FIRST = "SELECT position FROM events WHERE position < 1 ORDER BY position LIMIT %s"
_PREV_HASH = "SELECT prev_hash FROM events WHERE position = %s"
_ROW_BEFORE = (
    "SELECT position, hash FROM events WHERE position > 0 AND position < %s"
    " ORDER BY position DESC LIMIT 1"
)
#: About how many pages of `events` `ticket_ranges` reads (~20 events a page).
_SAMPLED_PAGES = 500
_SAMPLED_CUTS = (
    'SELECT percentile_disc(%s::float8[]) WITHIN GROUP (ORDER BY ticket_id COLLATE "C") AS cuts'
    " FROM events TABLESAMPLE SYSTEM (LEAST(100, 100.0 * %s / GREATEST(1,"
    " pg_relation_size('events') / current_setting('block_size')::int))) REPEATABLE (0)"
    " WHERE ticket_id IS NOT NULL"
)
_STREAM_LENGTH = "SELECT COALESCE(MAX(stream_version), 0) AS n FROM events WHERE ticket_id = %s"
_SELECT_SLICE = (
    f"SELECT {_COLUMNS} FROM events"
    " WHERE ticket_id = %s AND stream_version BETWEEN %s AND %s ORDER BY stream_version"
)
_SELECT_AT = f"SELECT {_COLUMNS} FROM events WHERE position = %s"
_SELECT_TICKET = (
    f"SELECT {_COLUMNS} FROM events WHERE ticket_id = %s AND position <= %s ORDER BY position"
)
_FIRST_FROM_TIME = (
    "SELECT position FROM events WHERE recorded_at >= %s ORDER BY recorded_at, position LIMIT 1"
)
_LAST_AT_TIME = (
    "SELECT position FROM events WHERE recorded_at <= %s"
    " ORDER BY recorded_at DESC, position DESC LIMIT 1"
)
