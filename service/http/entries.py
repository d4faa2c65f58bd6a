"""One event as the pages show it: shortened, classed by outcome, never more than a screen.

N-central may send a megabyte with every request, so each value is cut to a few hundred
characters and the whole payload to a few thousand; what was cut links to the whole
event (`/api/events/{position}`). Events are shortened one at a time as they are read,
so a page costs the server one event's payload at most, never the page's worth.

Each line's cells are worked out here, in the read's worker thread, as plain strings in a
tuple the template unpacks: Jinja pays for every attribute it looks up and every filter it
calls, fifty lines at a time. Values stay text; the template escapes every one of them.
"""

from __future__ import annotations

from itertools import islice
from typing import Any, NamedTuple

import msgspec

from service.http.templating import cut, in_path, shown_time
from service.storage.events import Shown
from statemachine.events import Event

__all__ = ["SHORT", "Entry", "entry"]

#: Characters shown of any one value N-central sent (a title, a tag, a field of a payload).
SHORT = 300
#: Characters shown of one event's payload.
_SHOWN_PAYLOAD = 3_000
#: Items shown of one JSON object or array in a payload, and levels of nesting.
_MOST = 50
_DEEPEST = 20

_GOOD = "ok"
_PLAIN = "info"
_BAD = "bad"
_OUTCOME_CLASS = {
    "accepted": _GOOD,
    "recorded": _GOOD,
    "duplicate": "dup",
    "existing": _PLAIN,
    "connection_test": _PLAIN,
    "rejected": _BAD,
    "not_found": _BAD,
    "mismatch": _BAD,
    "invalid": _BAD,
}


class Entry(NamedTuple):
    """One line of a timeline (a tuple, so that the template unpacks it in its loop).

    The cells hold what was sent and recorded; the words and marks between them (`→`,
    `·`) are the template's, written there as character references. A page of ASCII text
    is a string of one byte a character: one `→` among the cells made the review page a
    string of two, and joining and encoding that took a fifth of its render (callgrind).
    """

    position: int
    #: `ok`, `info`, `dup` or `bad`: how much the line should stand out.
    css: str
    action: str
    outcome: str
    #: `ticket 1234` on pages that span tickets (else empty), and where the ticket is
    #: known, its page as it was after this event and its externalTicketId.
    ticket: str
    ticket_href: str
    external: str
    #: The ticket's state before and after (`open`, `closed`), both empty for an event
    #: that moved no ticket. The page puts the arrow between them.
    state_before: str
    state_after: str
    #: Why it stands out, in words, for those who cannot see the colour (or empty).
    flag: str
    #: When it was recorded, as the log writes it and as people read it (`<time>`).
    at: str
    shown_at: str
    #: Who sent it, and the status it was answered with (or empty): the page writes
    #: `#12 · by ncentral · answered 200`.
    actor: str
    answered: str
    preview: str
    #: Characters in the whole payload (`1,234`) when the preview is shortened, else empty.
    cut_from: str


def entry(event: Event | Shown, names: dict[str, tuple[str, str]] | None = None) -> Entry:
    """`event`'s line; `names` (ncentralTicketId -> (externalTicketId, title)) is given on
    pages that span tickets, so that each line names and links its own."""
    preview, shortened = _preview(event.payload)
    css, flag = _standing(event)
    position = event.position
    ticket = href = external = ""
    if names is not None and event.ticket_id:
        ticket = f"ticket {cut(event.ticket_id, 40)}"
        known = names.get(event.ticket_id)
        if known is not None:
            external = known[0]
            href = f"/tickets/{in_path(external)}?as_of={position}"
    before = after = ""
    if event.state_before and event.state_after:
        before, after = event.state_before, event.state_after
    answered = _answer_status(event.response)
    # Positional, in the fields' order: keywords cost a NamedTuple a dict a line.
    return Entry(
        position,
        css,
        event.action,
        event.outcome,
        ticket,
        href,
        external,
        before,
        after,
        flag or "",
        event.recorded_at,
        shown_time(event.recorded_at),
        cut(event.actor, 60),
        answered or "",
        preview,
        f"{len(event.payload):,}" if shortened else "",
    )


def _standing(event: Event | Shown) -> tuple[str, str | None]:
    """Refusals, repeats and failed callbacks stand out, in colour and in words."""
    if event.action == "callback_dead_lettered":
        return _BAD, "callback dead-lettered"
    if event.action == "callback_attempted" and _attempt_failed(event.payload):
        return _BAD, "callback failed"
    css = _OUTCOME_CLASS.get(event.outcome, _PLAIN)
    if css == _BAD:
        return css, "refused"
    if css == "dup":
        return css, "repeated request"
    return css, None


def _attempt_failed(payload: str) -> bool:
    try:
        attempt = msgspec.json.decode(payload)
    except msgspec.DecodeError:
        return True
    if not isinstance(attempt, dict):
        return True
    status = attempt.get("status")
    return attempt.get("error") is not None or not (isinstance(status, int) and status < 300)


def _answer_status(response: str | None) -> str | None:
    if response is None:
        return None
    try:
        status = _read_answer(response).status
    except msgspec.DecodeError:  # not JSON, or not an object
        return None
    return None if status is None else str(status)


class _Answer(msgspec.Struct):
    """The one field of a stored answer the line shows (the body is not built)."""

    status: Any = None


_read_answer = msgspec.json.Decoder(_Answer).decode


def _preview(payload: str) -> tuple[str, bool]:
    """The payload as shown, pretty-printed and shortened; True if anything was cut."""
    try:
        value = msgspec.json.decode(payload)
    except (msgspec.DecodeError, RecursionError):
        shown = cut(payload, _SHOWN_PAYLOAD)
        return shown, len(shown) < len(payload)
    if _uncuttable(payload):
        short, was_cut = value, False
    else:
        short, was_cut = _shortened(value, 0)
    text = msgspec.json.format(msgspec.json.encode(short), indent=2).decode()
    shown = cut(text, _SHOWN_PAYLOAD)
    return shown, was_cut or len(shown) < len(text)


def _uncuttable(payload: str) -> bool:
    """Whether `payload` is too small to hold anything `_shortened` cuts, judged from its
    text without decoding it: a string over SHORT characters (its JSON text is longer
    still), a container of over _MOST items (_MOST commas at least) or one _DEEPEST levels
    down (_DEEPEST + 1 opening brackets). Commas and brackets inside strings are counted
    too, which only sends more payloads the long way. Most requests N-central sends are
    this small, and for them the walk cost more than the decoding and formatting
    together (2.4 µs against 0.9 for a 171-character CREATE)."""
    return (
        len(payload) <= SHORT + 2
        and payload.count(",") < _MOST
        and payload.count("{") + payload.count("[") <= _DEEPEST
    )


def _shortened(value: Any, depth: int) -> tuple[Any, bool]:
    """`value` with every string cut to SHORT characters and every container to _MOST
    items, _DEEPEST levels down at most; True if anything was cut.

    Strings and numbers are handled in their container's loop, not by a call each: most
    payloads are one flat object of short values."""
    if isinstance(value, str):
        return cut(value, SHORT), len(value) > SHORT
    if not isinstance(value, dict | list):
        return value, False
    if depth >= _DEEPEST:
        return "…", True
    was_cut = len(value) > _MOST
    if isinstance(value, dict):
        kept = {}
        for key, item in islice(value.items(), _MOST):
            if len(key) > SHORT:  # a JSON object's keys are strings
                key, was_cut = cut(key, SHORT), True
            kept[key], was_cut = _item(item, depth, was_cut)
        return kept, was_cut
    items = []
    for item in islice(value, _MOST):
        short, was_cut = _item(item, depth, was_cut)
        items.append(short)
    return items, was_cut


def _item(item: Any, depth: int, was_cut: bool) -> tuple[Any, bool]:
    """One item of a container at `depth`, shortened; `was_cut` or'ed with whether it was."""
    if item.__class__ is str:
        return (item, was_cut) if len(item) <= SHORT else (cut(item, SHORT), True)
    if isinstance(item, dict | list):
        short, item_cut = _shortened(item, depth + 1)
        return short, was_cut or item_cut
    return item, was_cut
