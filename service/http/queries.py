"""Query strings read by hand, so that every refusal is a 400 naming the parameter.

Shared by the audit API and the console's pages: an auditor who types `?tiket=` must hear
about it, not get the whole log back, whichever door they typed it at.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TypeVar

from litestar import Response
from litestar.datastructures import MultiDict

from service.audit.events import MAX_LIMIT
from service.audit.moments import BadMoment, parse_moment, parse_time
from service.digits import NotAWholeNumber, shown, whole_number
from service.http.responses import problem_response

__all__ = ["BadParameter", "Params"]

T = TypeVar("T")


class BadParameter(Exception):
    """A query parameter that cannot be used; `name` is the parameter."""

    def __init__(self, name: str, detail: str) -> None:
        super().__init__(detail)
        self.name = name
        self.detail = detail

    def response(self) -> Response[bytes]:
        return problem_response(400, "Bad query parameter", self.detail, parameter=self.name)


class Params:
    """The query string, checked: only `allowed` names, each at most once unless repeatable."""

    def __init__(
        self,
        params: MultiDict[str],
        *,
        allowed: set[str],
        repeatable: frozenset[str] = frozenset(),
        blank_is_absent: bool = False,
    ) -> None:
        # An HTML form sends every field, the ones left empty too: for a page, empty is unset.
        if blank_is_absent:
            params = MultiDict([(k, v) for k, v in params.items() if v.strip()])
        self._params = params
        for name in params:
            if name not in allowed:
                expected = ", ".join(sorted(allowed))
                raise BadParameter(
                    name, f"unknown parameter {shown(name)}; expected one of {expected}"
                )
            if name not in repeatable and len(params.getall(name)) > 1:
                raise BadParameter(name, f"{name!r} may be given once")

    def text(self, name: str) -> str | None:
        value = self._params.get(name)
        if value is not None and not value.strip():
            raise BadParameter(name, f"{name!r} is empty")
        return value

    def all(self, name: str) -> list[str]:
        return list(self._params.getall(name, []))

    def tags(self, name: str) -> tuple[tuple[str, str], ...]:
        """Every `key:value` given as `name`, as (key, value) pairs."""
        pairs = []
        for value in self.all(name):
            key, colon, tag_value = value.partition(":")
            if not colon or not key:
                raise BadParameter(
                    name, f"{name}={shown(value)}; expected key:value, e.g. {name}=site:A"
                )
            pairs.append((key, tag_value))
        return tuple(pairs)

    def choice(
        self, name: str, choices: frozenset[str] | set[str], convert: Callable[[str], str]
    ) -> str | None:
        value = self.text(name)
        if value is None:
            return None
        converted = convert(value)
        if converted not in choices:
            raise BadParameter(
                name, f"{name}={shown(value)}; expected one of {', '.join(sorted(choices))}"
            )
        return converted

    def limit(self) -> int:
        value = self.text("limit")
        if value is None:
            return 100
        try:
            limit = whole_number(value, largest=MAX_LIMIT)
        except NotAWholeNumber:
            limit = 0
        if limit < 1:
            raise BadParameter(
                "limit", f"limit={shown(value)}; expected a whole number 1..{MAX_LIMIT}"
            )
        return limit

    def time(self, name: str) -> str | None:
        return self._convert(name, parse_time)

    def moment(self, name: str) -> int | str | None:
        return self._convert(name, parse_moment)

    def _convert(self, name: str, parse: Callable[[str], T]) -> T | None:
        value = self.text(name)
        if value is None:
            return None
        try:
            return parse(value)
        except BadMoment as exc:
            raise BadParameter(name, f"{name}: {exc}") from None
