"""The console's links and header clock: the cheap paths make what the general ones make."""

from __future__ import annotations

import time
from datetime import datetime
from urllib.parse import urlencode

from hypothesis import given
from hypothesis import strategies as st

from service.http.templating import Pages, in_query

#: Names and values as the console's links hold them: log times, ids, filters, any text.
_TEXT = st.sampled_from(["from", "to", "2026-11-01T09:30:00.000000Z", "PSA-12", ""]) | st.text()


@given(st.lists(st.tuples(_TEXT, _TEXT), max_size=5))
def test_links_hold_the_query_urlencode_makes(pairs: list[tuple[str, str]]) -> None:
    assert in_query(pairs) == urlencode(pairs)


def test_the_header_shows_the_time_of_the_second_the_page_is_made() -> None:
    pages = Pages()
    for _ in range(3):
        before = datetime.now().astimezone()
        page = pages.render("callbacks.html", head=7, section="callbacks", owed=[], retried=None)
        after = datetime.now().astimezone()
        offset = after.strftime("%z")
        zone = f"{after.tzname()} (UTC{offset[:3]}:{offset[3:]})"
        shown = {
            f'<time datetime="{moment.isoformat(timespec="seconds")}" id="server-time">'
            f"{moment.strftime('%Y-%m-%d %H:%M:%S')}</time> {zone} &middot; log head"
            for moment in (before, after)
        }
        assert any(header.encode() in page for header in shown), page[:2000]
        assert b'<span id="head">#7</span>' in page
        time.sleep(0.6)
