"""The ticket list's rows as the page shows them: every cell worked out once, in Python.

The list is the console's front page and the one opened most. Jinja pays for each
attribute it looks up and each filter it calls, fifty rows at a time; a row of plain
strings unpacked in the loop costs it a third of that. Values stay text: the template
still escapes every one of them (only `updated`, a `<time>` element, is markup, built
by `templating.when`, which escapes its values).
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import NamedTuple

from markupsafe import Markup

from service.http.templating import age, cut, in_path, when
from service.storage.activity import ActivityRow

__all__ = ["Listed", "shown_rows"]

#: Outcomes a person expects; any other is named after the action.
_PLAIN_OUTCOMES = frozenset({"accepted", "recorded"})


class Listed(NamedTuple):
    """One row of the list (a tuple, so that the template unpacks it in its loop)."""

    #: The ticket's page, its external id quoted for a path.
    href: str
    external: str
    #: `owed` or `dead` when a callback to N-central is still owed, else empty.
    owed: str
    title: str
    state: str
    last: str
    age: str
    ncentral: str
    updated: Markup


def shown_rows(rows: list[ActivityRow]) -> list[Listed]:
    now = datetime.now(UTC)
    return [_listed(row, now) for row in rows]


def _listed(row: ActivityRow, now: datetime) -> Listed:
    last = row.last_action or "-"
    if row.last_outcome and row.last_outcome not in _PLAIN_OUTCOMES:
        last = f"{last} ({row.last_outcome})"
    owed = ("dead" if row.callback == "dead" else "owed") if row.callback else ""
    return Listed(
        href=f"/tickets/{in_path(row.external_ticket_id)}",
        external=cut(row.external_ticket_id, 40),
        owed=owed,
        title=cut(row.title, 120),
        state=row.state,
        last=last,
        age=age(row.created_at, now),
        ncentral=cut(row.ncentral_ticket_id, 40),
        updated=when(row.updated_at),
    )
