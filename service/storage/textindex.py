"""A trigram index of tickets' titles and details, kept by the server outside the log.

The list's text filter (`text=host-12`) looks for a substring, whatever its case, in
every ticket's title and details; walking the tickets in activity order to find a page
reads all 100,000 of them when the matches are old or few. This index tells which
tickets may match, and the list then looks only those up, by key.

It is derived and private: an FTS5 table (`tokenize='trigram'`) in a temporary SQLite
database of the server's own (on disk, deleted when closed, so memory stays bounded),
never in the log's database. So no write to the log pays for it, the log's write lock is
never taken for it, and it serves SQLite and PostgreSQL logs alike, reading them
through `storage.texts`.

Exact, never stale. The index covers the log up to its bookmark (a position). A query,
in its own read snapshot, first brings the index up to that snapshot's head from the
events since the bookmark; when another caller has already taken it further, the
tickets changed after the snapshot's head are added to the candidates. Trigram matching
folds case over all of Unicode, a superset of the folding the filter does, so the
candidates hold every ticket the filter would find, and the list checks each with the
filter's own predicate. An index that is not built, broken, or far behind answers None:
the list walks, as it did before (slower, never wrong).

Bounded, whatever N-central sends: a ticket whose title and details together are longer
than `longest` characters (64 KB by default; details of a megabyte are allowed) is held
without its text and is a candidate for every text. Its text never reaches Python
(the log measures the lengths), so the index's memory is bounded by its read batches.
"""

from __future__ import annotations

import heapq
import logging
import sqlite3
import threading
from typing import NamedTuple

from service.storage import texts as stored
from service.storage.activity import head_position

__all__ = ["Chosen", "TextIndex"]

log = logging.getLogger("psa_ledger.textindex")


class Chosen(NamedTuple):
    """Candidates for a page of the list, latest activity first as far as the index knows."""

    keys: list[str]
    #: Whether these are all the candidates (else more, each less recently active, remain).
    complete: bool


class TextIndex:
    """The server's one index; every method may be called from any read thread."""

    def __init__(
        self, *, most_candidates: int = 2000, most_behind: int = 50_000, longest: int = 65_536
    ) -> None:
        #: Past this many candidates, walking the activity order finds a page sooner.
        self.most_candidates = most_candidates
        #: Past this many events behind a query's head, the walk answers and the next
        #: refresh builds the index again instead of catching up.
        self.most_behind = most_behind
        #: Past this many characters of title and details, a ticket is always a candidate.
        self.longest = longest
        self._lock = threading.Lock()
        self._kept: _Kept | None = None

    @property
    def bookmark(self) -> int | None:
        """The log position the index covers; None while there is no index."""
        with self._lock:
            return None if self._kept is None else self._kept.bookmark

    def candidates(
        self, db: sqlite3.Connection, text: str, *, before: str | None, wanted: int
    ) -> Chosen | None:
        """Tickets whose title or details may hold `text` as the list's filter looks for
        it, in `db`'s snapshot: at least the `wanted` latest active ones whose activity is
        no later than `before`, and every one as late as those; None when the list must walk.
        """
        needle = stored.needle(db, text)
        if len(needle) < _TRIGRAM or "\x00" in needle:
            return None
        head = head_position(db)
        with self._lock:
            kept = self._kept
            if kept is None or head - kept.bookmark > self.most_behind:
                return None
            try:
                kept.catch_up(db, head)
                return kept.matching(needle, head, self.most_candidates, before, wanted)
            except sqlite3.Error as exc:
                self._drop(exc)
                return None

    def refresh(self, db: sqlite3.Connection) -> None:
        """Bring the index to `db`'s head, or build it afresh when there is none or it is
        too far behind (the build holds no lock: queries walk, or use the old index)."""
        head = head_position(db)
        with self._lock:
            kept = self._kept
            if kept is not None and head - kept.bookmark <= self.most_behind:
                try:
                    kept.catch_up(db, head)
                    return
                except sqlite3.Error as exc:
                    self._drop(exc)
        built = _Kept.build(db, head, self.longest)
        with self._lock:
            old, self._kept = self._kept, built
        if old is not None:
            old.close()

    def close(self) -> None:
        with self._lock:
            if self._kept is not None:
                self._kept.close()
                self._kept = None

    def _drop(self, exc: sqlite3.Error) -> None:
        """Forget a broken index (the lock held): the list walks until it is built again."""
        log.warning("the text index failed and is dropped until built again: %r", exc)
        if self._kept is not None:
            self._kept.close()
            self._kept = None


class _Kept:
    """The private database and the log position it covers; used under the index's lock.

    Tickets are numbered newest activity first (`doc` ascending), so that the trigram
    match, read in its natural rowid order, comes in the list's order and stops after a
    page. A ticket that moves takes a number below all others; should its activity be
    earlier than the latest known (a clock set back), the numbers stop being in order
    and every match is sorted instead (`ordered`), until the next build.
    """

    def __init__(self, db: sqlite3.Connection, bookmark: int, longest: int) -> None:
        self.db = db
        self.bookmark = bookmark
        self.longest = longest
        self.first, self.latest = db.execute(_ENDS).fetchone()
        self.ordered = True

    @classmethod
    def build(cls, log: sqlite3.Connection, head: int, longest: int) -> _Kept:
        """Every ticket of `log`'s snapshot (whose head is `head`), read in key order."""
        db = sqlite3.connect("", check_same_thread=False)
        try:
            db.executescript(_SCHEMA)
            key = None
            with db:
                while batch := stored.texts_after(log, key, _BATCH, longest):
                    db.executemany(_STAGE, [_staged(*row) for row in batch])
                    key = batch[-1][0]
                db.executescript(_NUMBER_STAGED)
        except BaseException:
            db.close()
            raise
        return cls(db, head, longest)

    def catch_up(self, log: sqlite3.Connection, head: int) -> None:
        """The texts of the tickets events after the bookmark touched, as of `head`."""
        if head <= self.bookmark:
            return
        moved = sorted(set(stored.touched(log, self.bookmark, head)), key=lambda m: (m[1], m[0]))
        order = [key for key, _ in moved]
        with self.db:
            for start in range(0, len(order), _PUT_BATCH):
                batch = order[start : start + _PUT_BATCH]
                for at in range(0, len(batch), _MOVED_BATCH):
                    asked = batch[at : at + _MOVED_BATCH]
                    rows = {row[0]: row for row in stored.texts_of(log, asked, self.longest)}
                    self._stage([(at + n, rows[key]) for n, key in enumerate(asked)])
                self._put_staged()
        self.bookmark = head

    def matching(
        self, needle: str, head: int, most: int, before: str | None, wanted: int
    ) -> Chosen | None:
        """The tickets whose text holds `needle`'s trigrams, the `wanted` latest active
        first (at or before `before`), with every tie of the last.

        The index knows each ticket's last activity as of the bookmark: exact when `head`
        is the bookmark. A snapshot behind it gets every match, and every ticket changed
        since its head, to sort by what the log says (None past `most` matches)."""
        phrase = '"' + needle.replace('"', '""') + '"'
        if head < self.bookmark:
            found = self._every(phrase, most)
            if found is None:
                return None
            moved = [key for (key,) in self.db.execute(_CHANGED_AFTER, (head,))]
            return Chosen([key for key, _ in found] + moved, complete=True)
        if not self.ordered:
            return self._sorted(phrase, most, before, wanted)
        start = self.first
        if before is not None:
            (start,) = self.db.execute(_FIRST_AT_OR_BEFORE, (before,)).fetchone()
            if start is None:
                return Chosen([], complete=True)
        taken: list[str] = []
        last = ""
        matches = self.db.execute(_MATCHING_FROM, (phrase, start))
        longs = self.db.execute(_LONG_FROM, (start,))
        for key, updated_at, _ in heapq.merge(matches, longs, key=_number):
            if len(taken) >= wanted and updated_at < last:
                return Chosen(taken, complete=False)
            taken.append(key)
            last = updated_at
        return Chosen(taken, complete=True)

    def close(self) -> None:
        self.db.close()

    def _stage(self, rows: list[tuple[int, stored.Text]]) -> None:
        """Tickets' texts to put, each with its place in the order of activity."""
        self.db.executemany(_STAGE_INCOMING, [_incoming(n, row) for n, row in rows])

    def _put_staged(self) -> None:
        """The staged texts put, each ticket at its number when its activity is unchanged,
        else at a new one, the latest lowest; the stage emptied.

        A batch at a time, by a few statements (see `_PUT_BATCH`): every old text is
        removed, then every new one inserted in number order."""
        self.db.execute(_FORGET_INCOMING_TEXTS)
        self.db.execute(_MARK_UNMOVED)
        self.db.execute(_FORGET_MOVED_DOCS)
        moved, earliest, latest = self.db.execute(_MOVED_ACTIVITY).fetchone()
        if moved:
            first = 1 if self.first is None else self.first
            self.db.execute(_NUMBER_MOVED, (first,))
            self.first = first - moved
            if self.latest is not None and earliest < self.latest:
                self.ordered = False
            self.latest = max(self.latest or latest, latest)
        self.db.execute(_PUT_INCOMING)
        self.db.execute(_FORGET_INCOMING)

    def _every(self, phrase: str, most: int) -> list[tuple[str, str]] | None:
        found = self.db.execute(_MATCHING, (phrase, most + 1)).fetchall()
        found += self.db.execute(_LONG, (most + 1,)).fetchall()
        return None if len(found) > most else found

    def _sorted(self, phrase: str, most: int, before: str | None, wanted: int) -> Chosen | None:
        """Every match sorted by activity: for numbers out of activity order."""
        found = self._every(phrase, most)
        if found is None:
            return None
        if before is not None:
            found = [row for row in found if row[1] <= before]
        found.sort(key=lambda row: row[1], reverse=True)
        if len(found) <= wanted:
            return Chosen([key for key, _ in found], complete=True)
        last = found[wanted - 1][1]
        taken = [key for key, updated_at in found if updated_at >= last]
        return Chosen(taken, complete=len(taken) == len(found))


def _incoming(order: int, row: stored.Text) -> tuple[int, str, str, str, str, int, bool]:
    return (order, *_staged(*row))


def _staged(
    key: str, title: str | None, details: str | None, updated_at: str, changed_at: int
) -> tuple[str, str, str, str, int, bool]:
    return key, _searchable(title), _searchable(details), updated_at, changed_at, title is None


def _number(match: tuple[str, str, int]) -> int:
    return match[2]


def _searchable(text: str | None) -> str:
    """`text` as the tokenizer can read all of it: FTS5 stops reading a text at a NUL.
    A needle never holds one (the list walks for those), so any stand-in keeps each
    match a needle can have, and a false one is only a candidate the filter turns down.
    None, a text too long to hold, is held as nothing (its ticket is always a candidate)."""
    if text is None:
        return ""
    return text.replace("\x00", " ") if "\x00" in text else text


#: Trigrams: a needle shorter than this matches nothing in the index.
_TRIGRAM = 3
#: Tickets read from the log a statement, building and catching up: each at most
#: `longest` characters, so a batch is bounded whatever N-central sends. With every text
#: read whole, tests/service/http/test_memory.py (details of a megabyte) peaked at 161 MB
#: on PostgreSQL (limit 150, 125 without the index) catching up 16 a statement, and still
#: at 136-138 MB one a statement; held without their texts, 126-128 MB at 16 a statement.
_BATCH = 64
_MOVED_BATCH = 16
#: Tickets put in the index at once when catching up (staged in a table of the index's
#: own database, so the process holds no more than a read batch of texts). FTS5 writes
#: what it holds to its b-tree whenever a row number is lower than the last one written,
#: or a removal follows an insertion: once a ticket put one by one. A batch's removals,
#: then its insertions in number order, write twice a batch. A ticket put cost 56-123 µs
#: one by one, 49-55 in batches of 16, 37-44 of 64, 23-27 of 256 (100,000 tickets
#: indexed; bench/results.md, round 13).
_PUT_BATCH = 256
_SCHEMA = """
    CREATE TABLE docs (
        doc         INTEGER PRIMARY KEY,
        ticket      TEXT NOT NULL UNIQUE,
        -- The ticket's last activity (`updated_at`), by which the list is ordered.
        updated_at  TEXT NOT NULL,
        -- The position of the last event that changed the ticket, as far as indexed.
        changed_at  INTEGER NOT NULL,
        -- Held without its text (too long): a candidate for every text.
        long        INTEGER NOT NULL
    );
    CREATE INDEX docs_long ON docs (doc) WHERE long;
    CREATE INDEX docs_by_update ON docs (updated_at, doc);
    CREATE INDEX docs_by_change ON docs (changed_at);
    CREATE VIRTUAL TABLE texts USING fts5(title, details, tokenize='trigram', detail='full');
    CREATE TEMP TABLE incoming (
        seq INTEGER PRIMARY KEY, ticket TEXT NOT NULL UNIQUE, title TEXT, details TEXT,
        updated_at TEXT, changed_at INTEGER, long INTEGER
    );
    CREATE TEMP TABLE staged (
        ticket TEXT PRIMARY KEY, title TEXT, details TEXT, updated_at TEXT, changed_at INTEGER,
        long INTEGER
    );
"""
_STAGE = "INSERT INTO staged VALUES (?, ?, ?, ?, ?, ?)"
#: The build's numbers: 1 for the latest active ticket, then on in the list's order.
_NUMBER_STAGED = """
    INSERT INTO docs (ticket, updated_at, changed_at, long)
        SELECT ticket, updated_at, changed_at, long FROM staged
        ORDER BY updated_at DESC, ticket DESC;
    INSERT INTO texts (rowid, title, details)
        SELECT d.doc, s.title, s.details
        FROM docs AS d JOIN staged AS s ON s.ticket = d.ticket ORDER BY d.doc;
    DROP TABLE staged;
"""
_ENDS = "SELECT MIN(doc), MAX(updated_at) FROM docs"
#: A batch of tickets caught up (`_Kept._put_staged`): staged in activity order, their old texts
#: forgotten; those whose activity is unchanged keep their number (their new change
#: noted), the others lose it and are numbered afresh, the latest lowest; then every
#: text is put at its ticket's number.
_STAGE_INCOMING = "INSERT INTO incoming VALUES (?, ?, ?, ?, ?, ?, ?)"
# Each staged ticket looked up in `docs` by its key (CROSS JOIN keeps that order; the
# planner, knowing nothing of the staged few, would walk every ticket instead).
_FORGET_INCOMING_TEXTS = (
    "DELETE FROM texts WHERE rowid IN"
    " (SELECT d.doc FROM incoming AS i CROSS JOIN docs AS d ON d.ticket = i.ticket)"
)
_MARK_UNMOVED = (
    "UPDATE docs SET"
    " changed_at = (SELECT changed_at FROM incoming AS i WHERE i.ticket = docs.ticket),"
    " long = (SELECT long FROM incoming AS i WHERE i.ticket = docs.ticket)"
    " WHERE ticket IN (SELECT ticket FROM incoming)"
    " AND updated_at = (SELECT updated_at FROM incoming AS i WHERE i.ticket = docs.ticket)"
)
_FORGET_MOVED_DOCS = (
    "DELETE FROM docs WHERE ticket IN (SELECT ticket FROM incoming)"
    " AND updated_at <> (SELECT updated_at FROM incoming AS i WHERE i.ticket = docs.ticket)"
)
#: How many are numbered afresh, and their earliest and latest activity.
_MOVED_ACTIVITY = (
    "SELECT COUNT(*), MIN(updated_at), MAX(updated_at) FROM incoming"
    " WHERE ticket NOT IN (SELECT ticket FROM docs)"
)
_NUMBER_MOVED = (
    "INSERT INTO docs (doc, ticket, updated_at, changed_at, long)"
    " SELECT ? - ROW_NUMBER() OVER (ORDER BY seq), ticket, updated_at, changed_at, long"
    " FROM incoming WHERE ticket NOT IN (SELECT ticket FROM docs)"
)
_PUT_INCOMING = (
    "INSERT INTO texts (rowid, title, details) SELECT d.doc, i.title, i.details"
    " FROM incoming AS i CROSS JOIN docs AS d ON d.ticket = i.ticket ORDER BY d.doc"
)
_FORGET_INCOMING = "DELETE FROM incoming"
#: The matches in the list's order, from number `?` on (the first at or before a cursor).
_MATCHING_FROM = (
    "SELECT d.ticket, d.updated_at, d.doc FROM texts JOIN docs AS d ON d.doc = texts.rowid"
    " WHERE texts MATCH ? AND texts.rowid >= ? ORDER BY texts.rowid"
)
#: The tickets held without their text, in the same order from the same number.
_LONG_FROM = "SELECT ticket, updated_at, doc FROM docs WHERE long AND doc >= ? ORDER BY doc"
_LONG = "SELECT ticket, updated_at FROM docs WHERE long LIMIT ?"
_FIRST_AT_OR_BEFORE = (
    "SELECT MIN(doc) FROM docs"
    " WHERE updated_at = (SELECT MAX(updated_at) FROM docs WHERE updated_at <= ?)"
)
_MATCHING = (
    "SELECT ticket, updated_at FROM docs"
    " WHERE doc IN (SELECT rowid FROM texts WHERE texts MATCH ? LIMIT ?)"
)
_CHANGED_AFTER = "SELECT ticket FROM docs WHERE changed_at > ?"
