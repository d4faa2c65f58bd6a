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
            for start in range(0, len(order), _MOVED_BATCH):
                asked = order[start : start + _MOVED_BATCH]
                rows = {row[0]: row for row in stored.texts_of(log, asked, self.longest)}
                for key in asked:
                    self._put(*rows[key])
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

    def _put(
        self, key: str, title: str | None, details: str | None, updated_at: str, changed_at: int
    ) -> None:
        """One ticket's text, at its number when its activity is unchanged, else first."""
        long = title is None
        known = self.db.execute(_DOC_OF, (key,)).fetchone()
        if known is not None:
            self.db.execute(_FORGET_TEXT, (known[0],))
        if known is not None and known[1] == updated_at:
            doc = known[0]
            self.db.execute(_CHANGED, (changed_at, long, doc))
        else:
            if known is not None:
                self.db.execute(_FORGET_DOC, (known[0],))
            self.first = doc = (1 if self.first is None else self.first) - 1
            self.db.execute(_NEW_DOC, (doc, key, updated_at, changed_at, long))
            if self.latest is not None and updated_at < self.latest:
                self.ordered = False
            self.latest = max(self.latest or updated_at, updated_at)
        self.db.execute(_PUT, (doc, _searchable(title), _searchable(details)))

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
_DOC_OF = "SELECT doc, updated_at FROM docs WHERE ticket = ?"
_FORGET_TEXT = "DELETE FROM texts WHERE rowid = ?"
_FORGET_DOC = "DELETE FROM docs WHERE doc = ?"
_CHANGED = "UPDATE docs SET changed_at = ?, long = ? WHERE doc = ?"
_NEW_DOC = "INSERT INTO docs (doc, ticket, updated_at, changed_at, long) VALUES (?, ?, ?, ?, ?)"
_PUT = "INSERT INTO texts (rowid, title, details) VALUES (?, ?, ?)"
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
