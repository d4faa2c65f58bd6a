"""The console's templates escape every value as Jinja's own autoescape does, byte for byte.

`service.http.escaping` swaps the function Jinja's compiled templates call on each value
for a cheaper one; a page must not show one character differently, nor let markup through.
"""

from __future__ import annotations

import jinja2
from hypothesis import given
from hypothesis import strategies as st
from markupsafe import Markup

from service.http.escaping import Environment

_TEMPLATE = """\
{% macro cell(v) %}<td title="{{ v }}">{{ v }}</td>{% endmacro -%}
<p class="{{ value }}">{{ value }}</p>{{ cell(value) }}
{% for item in items %}<li data-x='{{ item }}'>{{ item }}</li>{% endfor %}
{% autoescape false %}{{ raw }}{% endautoescape %}{{ raw | safe }}{{ raw }}
"""


class _Shown:
    """A value that is neither text nor a number: shown through its `str`."""

    def __str__(self) -> str:
        return "<b>&'\"</b>"


class _Html:
    """A value that renders itself (`__html__`), as `Markup` does."""

    def __html__(self) -> str:
        return "<em>kept</em>"


def _both(**values: object) -> tuple[str, str]:
    ours = Environment(autoescape=True).from_string(_TEMPLATE)
    stock = jinja2.Environment(autoescape=True).from_string(_TEMPLATE)
    return ours.render(**values), stock.render(**values)


@given(value=st.text(), items=st.lists(st.text() | st.integers(), max_size=5), raw=st.text())
def test_any_text_or_number_is_shown_as_stock_jinja_shows_it(
    value: str, items: list[str | int], raw: str
) -> None:
    ours, stock = _both(value=value, items=items, raw=raw)
    assert ours == stock


def test_markup_numbers_and_other_objects_are_shown_as_stock_jinja_shows_them() -> None:
    values: list[object] = [
        Markup("<i>safe</i>"),
        _Html(),
        _Shown(),
        None,
        True,
        3.5,
        -7,
        2**70,
    ]
    ours, stock = _both(
        value='<script>alert(1)</script>"><img src=x onerror=alert(1)>',
        items=values,
        raw="<u>&</u>",
    )
    assert ours == stock
    assert "<script>" not in ours and "&lt;script&gt;" in ours
    assert "<i>safe</i>" in ours and "<em>kept</em>" in ours
    assert "&lt;b&gt;&amp;&#39;&#34;&lt;/b&gt;" in ours


def test_the_templates_call_the_cheaper_escape() -> None:
    """The speed is the point: the compiled code escapes text with markupsafe's C function
    and nothing between, anything else through `escaped`, never through `escape`."""
    source = Environment(autoescape=True).compile("{{ x }}", raw=True)
    assert "environment.escape_text(_placed) if (_placed := " in source
    assert "environment.escaped(_placed)" in source
    assert "escape(" not in source.replace(".escaped(", "")
