"""One event as the pages show it: shortened, classed by outcome, never more than a screen.

N-central may send a megabyte with every request, so each value is cut to a few hundred
characters and the whole payload to a few thousand; what was cut links to the whole
event (`/api/events/{position}`). Events are shortened one at a time as they are read,
so a page costs the server one event's payload at most, never the page's worth.
"""

from __future__ import annotations

from typing import Any

import msgspec

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


class Entry(msgspec.Struct, frozen=True, kw_only=True):
    position: int
    ticket_id: str | None
    action: str
    outcome: str
    #: `ok`, `info`, `dup` or `bad`: how much the line should stand out.
    css: str
    #: Why it stands out, in words, for those who cannot see the colour.
    flag: str | None
    state_before: str | None
    state_after: str | None
    recorded_at: str
    actor: str
    answered: str | None
    preview: str
    #: Characters in the whole payload when the preview is shortened, else None.
    cut_from: int | None


def entry(event: Event) -> Entry:
    preview, cut = _preview(event.payload)
    css, flag = _standing(event)
    return Entry(
        position=event.position,
        ticket_id=event.ticket_id,
        action=event.action,
        outcome=event.outcome,
        css=css,
        flag=flag,
        state_before=event.state_before,
        state_after=event.state_after,
        recorded_at=event.recorded_at,
        actor=event.actor,
        answered=_answer_status(event.response),
        preview=preview,
        cut_from=len(event.payload) if cut else None,
    )


def _standing(event: Event) -> tuple[str, str | None]:
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
        status = msgspec.json.decode(response).get("status")
    except (msgspec.DecodeError, AttributeError):
        return None
    return None if status is None else str(status)


def _preview(payload: str) -> tuple[str, bool]:
    """The payload as shown, pretty-printed and shortened; True if anything was cut."""
    try:
        value = msgspec.json.decode(payload)
    except (msgspec.DecodeError, RecursionError):
        shown = _cut(payload, _SHOWN_PAYLOAD)
        return shown, len(shown) < len(payload)
    short, cut = _shortened(value, 0)
    text = msgspec.json.format(msgspec.json.encode(short), indent=2).decode()
    shown = _cut(text, _SHOWN_PAYLOAD)
    return shown, cut or len(shown) < len(text)


def _shortened(value: Any, depth: int) -> tuple[Any, bool]:
    """`value` with every string cut to SHORT characters and every container to _MOST
    items, _DEEPEST levels down at most; True if anything was cut."""
    if isinstance(value, str):
        return _cut(value, SHORT), len(value) > SHORT
    if not isinstance(value, dict | list):
        return value, False
    if depth >= _DEEPEST:
        return "…", True
    items = list(value.items()) if isinstance(value, dict) else list(enumerate(value))
    cut = len(items) > _MOST
    kept: list[tuple[Any, Any]] = []
    for key, item in items[:_MOST]:
        short, item_cut = _shortened(item, depth + 1)
        cut = cut or item_cut or (isinstance(key, str) and len(key) > SHORT)
        kept.append((_cut(key, SHORT) if isinstance(key, str) else key, short))
    if isinstance(value, dict):
        return dict(kept), cut
    return [item for _, item in kept], cut


def _cut(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[:limit] + "…"
