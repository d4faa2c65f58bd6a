"""Tickets as a review window's start left them, kept in memory for the next page of it.

*What changed* folds each shown ticket's own stream up to the window's start, then on to
its end (`audit.window.changes`). Up to the start that is the ticket's whole history:
on the bench's log seven events of every eight it reads. Paging the window's timeline,
or reloading it, shows the same tickets at the same start again; a later window shows
them at a later start. So each ticket's record at the start it was last folded to is
kept, keyed by that log position, as a checkpoint of one ticket: a fold from it reads
only the events after it.

What the events up to a position did never changes (the log is append-only and its
positions gapless), so a kept record is never stale; one for a later position than a
window's start is not used for it. A ticket not kept (never shown, or dropped: at most
`most` are kept, the least recently used dropped first) is folded from its first event,
as before. The kept records are copies, and are copied again on the way out: the fold
changes the records it is handed, and must never change those kept.
"""

from __future__ import annotations

import threading
from collections import OrderedDict

import msgspec

from statemachine.projection import Record

__all__ = ["Startpoints"]


class Startpoints:
    """Each ticket's record (None when it did not exist yet) as of a log position."""

    def __init__(self, *, most: int = 20_000) -> None:
        self._most = most
        self._lock = threading.Lock()
        self._kept: OrderedDict[str, tuple[int, Record | None]] = OrderedDict()

    def before(self, ticket_ids: list[str], position: int) -> dict[str, tuple[int, Record | None]]:
        """Of `ticket_ids`, those kept as of `position` or earlier: each one's position
        and its record then (a copy, for the caller to fold on)."""
        found = {}
        with self._lock:
            for ticket_id in ticket_ids:
                kept = self._kept.get(ticket_id)
                if kept is not None and kept[0] <= position:
                    self._kept.move_to_end(ticket_id)
                    found[ticket_id] = kept
        return {
            ticket_id: (at, None if record is None else msgspec.structs.replace(record))
            for ticket_id, (at, record) in found.items()
        }

    def keep(self, position: int, records: dict[str, Record | None]) -> None:
        """Keep `records` (copied), each ticket as the first `position` events left it."""
        copies = {
            ticket_id: (position, None if record is None else msgspec.structs.replace(record))
            for ticket_id, record in records.items()
        }
        with self._lock:
            for ticket_id, kept in copies.items():
                self._kept[ticket_id] = kept
                self._kept.move_to_end(ticket_id)
            while len(self._kept) > self._most:
                self._kept.popitem(last=False)
