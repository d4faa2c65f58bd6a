"""The console's templates: Jinja2 through Litestar's engine, every value autoescaped.

Templates live in `service/http/templates/` (package data, so an installed wheel has
them). Every page extends `base.html`, whose header shows the navigation, the server's
time and zone, and the log's head position: an incident report printed from the console
says when it was printed and how far the log went.
"""

from __future__ import annotations

import re
import time
from collections.abc import Iterable
from datetime import UTC, datetime
from typing import Any
from urllib.parse import quote, quote_plus

from jinja2 import PackageLoader, StrictUndefined
from litestar import MediaType
from litestar.contrib.jinja import JinjaTemplateEngine
from litestar.response import Response
from litestar.template.config import TemplateConfig
from markupsafe import Markup, escape

from service.http.escaping import Environment

__all__ = [
    "Pages",
    "age",
    "cut",
    "html",
    "in_path",
    "in_query",
    "shown_time",
    "when",
]


class Pages:
    """The console's templates, loaded by Litestar's Jinja engine and rendered to bytes.

    A page is rendered in the read pool's worker thread, straight after its read
    (`ReadPool.run_then`), not by a `Template` response on the event loop. The read
    makes a page's ~1,500 cells as fresh objects; the loop, woken on the other core,
    rendered the review page in 0.6-0.8 ms against 0.33 in a tight loop. Rendered where
    they were made, the whole page came back 5-13% sooner (eight alternated pairs,
    docs/architecture.md, round nine), and the loop is free for N-central meanwhile.
    """

    def __init__(self) -> None:
        environment = Environment(
            loader=PackageLoader("service.http", "templates"),
            autoescape=True,
            undefined=StrictUndefined,
            trim_blocks=True,
            lstrip_blocks=True,
            # Templates ship inside the package: compiled once, never checked for changes.
            auto_reload=False,
        )
        environment.filters["shown_time"] = shown_time
        environment.filters["cut"] = cut
        environment.globals["when"] = when
        self.engine = JinjaTemplateEngine.from_environment(environment)

    def config(self) -> TemplateConfig[JinjaTemplateEngine]:
        """The same engine, as the app's template engine."""
        return TemplateConfig(instance=self.engine)

    def render(self, name: str, *, head: int, section: str, **context: Any) -> bytes:
        """`name` as UTF-8, with the common header's facts; `head` is the log's last
        position, `section` the navigation entry to mark as current. Any thread."""
        template = self.engine.get_template(name)
        return template.render(**_clock(), head=head, section=section, **context).encode()


def html(body: bytes) -> Response[bytes]:
    """A rendered page as the answer."""
    return Response(body, media_type=MediaType.HTML)


def shown_time(iso: str | None) -> str:
    """A log time as people read it: `2026-11-01 09:30:00 UTC`."""
    if not iso:
        return "-"
    return iso.replace("T", " ").removesuffix("Z")[:19] + " UTC"


def when(iso: str) -> Markup:
    """A log time as a `<time>` element, both of its values escaped.

    A function, not a template macro: a macro call costs Jinja ten times as much, and
    the review page shows a hundred or more. A time as the log writes it holds nothing
    to escape: that is checked, and the escaping left out (half of the cost).
    """
    if _log_time(iso):
        return Markup(f'<time datetime="{iso}">{shown_time(iso)}</time>')
    return Markup(f'<time datetime="{escape(iso)}">{escape(shown_time(iso))}</time>')


#: A time as the log writes it: digits and separators only, nothing to escape.
_log_time = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(?:\.\d*)?Z").fullmatch


def age(iso: str, now: datetime | None = None) -> str:
    """How long before `now` (default: now) a log time was, in its largest unit or two:
    `3 d 4 h`, `12 min`."""
    try:
        then = datetime.fromisoformat(iso)
    except ValueError:
        return "?"
    seconds = max(int(((now or datetime.now(UTC)) - then).total_seconds()), 0)
    days, rest = divmod(seconds, 86_400)
    hours, rest = divmod(rest, 3_600)
    if days:
        return f"{days} d {hours} h" if hours else f"{days} d"
    if hours:
        return f"{hours} h {rest // 60} min"
    return f"{rest // 60} min" if rest >= 60 else f"{rest} s"


def in_path(text: str) -> str:
    """`text` quoted for a URL's path as `urllib.parse.quote` quotes it; most ids (`PSA-12`)
    hold nothing to quote, and are checked for that at half of quote's cost."""
    return text if _unquoted(text) else quote(text)


#: What `quote` leaves as it is: ASCII letters and digits, `_.-~` and `/`.
_unquoted = re.compile(r"[A-Za-z0-9_.~/-]*").fullmatch


def in_query(pairs: Iterable[tuple[str, str]]) -> str:
    """`pairs` as a query string, the text `urllib.parse.urlencode` makes of them.

    The review page makes a dozen links of names and log times: `urlencode` quotes each
    through the general path (4 µs a pair), where most hold nothing to quote but a time's
    colons, which are checked for and replaced (a tenth of the cost).
    """
    return "&".join(f"{_in_query(name)}={_in_query(value)}" for name, value in pairs)


def _in_query(text: str) -> str:
    if _unquoted_plus(text):
        return text
    if _unquoted_but_colons(text):
        return text.replace(":", "%3A")
    return quote_plus(text)


#: What `quote_plus` leaves as it is: ASCII letters and digits and `_.-~`.
_unquoted_plus = re.compile(r"[A-Za-z0-9_.~-]*").fullmatch
#: The same and colons, as in a log time, which `quote_plus` writes as `%3A`.
_unquoted_but_colons = re.compile(r"[A-Za-z0-9_.~:-]*").fullmatch


def _clock() -> dict[str, str]:
    """The header's time and zone, made once a second: the header shows seconds."""
    second = int(time.time())
    made = _clock_made[0]  # one read of a pair, so another thread cannot mix two seconds
    if made[0] != second:
        now = datetime.fromtimestamp(second).astimezone()
        offset = now.strftime("%z")
        made = (
            second,
            {
                "server_time": now.strftime("%Y-%m-%d %H:%M:%S"),
                "server_time_iso": now.isoformat(timespec="seconds"),
                "server_zone": f"{now.tzname()} (UTC{offset[:3]}:{offset[3:]})",
            },
        )
        _clock_made[0] = made
    return made[1]


#: The second the header's clock was last made for, and its text.
_clock_made: list[tuple[int, dict[str, str]]] = [(-1, {})]


def cut(text: str | None, limit: int) -> str:
    if text is None:
        return ""
    return text if len(text) <= limit else text[:limit] + "…"
