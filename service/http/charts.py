"""The review page's two charts as geometry for inline SVG, drawn on the server.

No script and no library: a step line of open tickets and bars of actions stacked by
outcome. Every drawn thing is one path: the grid, the step line, its dots (each a
zero-length stroke with round caps), and each outcome's bars; the page's stylesheet
colours them (classes, not an attribute repeated on each element). Every figure is
worked out here once, so the template only places a few strings: a chart costs the page
about as much as one table row, not one element per period and outcome.

The numbers drawn are the `Review`'s. The page puts them in a table under each chart for
people who cannot see it, and on the charts themselves as space-separated lists
(`data-bounds`, `data-at`, `data-open`, `data-counts`) for machines: the tests compare
them with the API's. Time runs to scale along both charts: a period the window's ends
cut short (buckets fall on the clock) is drawn as narrow as it is short, so that its
fewer actions do not read as a lull.
"""

from __future__ import annotations

from datetime import datetime
from typing import NamedTuple

import msgspec

from service.audit.window import OUTCOME_ORDER, Review
from service.http.templating import shown_time

__all__ = ["Charts", "Series", "charts"]

#: The drawing's coordinate system; the SVG scales to the page's width.
WIDTH, HEIGHT = 640, 200
_LEFT, _BOTTOM, _TOP = 44, 24, 10
_PLOT = HEIGHT - _BOTTOM - _TOP
#: The y of the x axis.
_BASE = HEIGHT - _BOTTOM
#: Each at least 3:1 against white (WCAG 1.4.11, non-text contrast).
COLOURS = {
    "accepted": "#2e7d32",
    "recorded": "#1565c0",
    "duplicate": "#6a1b9a",
    "existing": "#00695c",
    "connection_test": "#546e7a",
    "rejected": "#c62828",
    "not_found": "#e65100",
    "mismatch": "#ad1457",
    "invalid": "#4e342e",
}
_OTHER_COLOUR = "#37474f"


class Series(NamedTuple):
    """One outcome's bars, stacked on those of the outcomes before it, as one path."""

    outcome: str
    colour: str
    path: str
    #: Its count in each period, space-separated, in the periods' order.
    counts: str


class Charts(msgspec.Struct, frozen=True, kw_only=True):
    #: Both charts' frame, as the template places it: the SVG's viewBox, the x of the
    #: ticks' labels (right-aligned), of the plot's left and right edges, the y of the
    #: labels under the x axis.
    view_box: str = f"0 0 {WIDTH} {HEIGHT}"
    tick_x: int = _LEFT - 4
    left: int = _LEFT
    right: int = WIDTH
    label_y: int = HEIGHT - 6
    #: The periods' bounds, space-separated: the window's start, each period's end.
    bounds: str
    #: The open count: its step line, a dot at the end of each period, and the dots'
    #: moments and counts, space-separated.
    open_path: str
    dots: str
    dot_times: str
    dot_counts: str
    open_most: int
    actions_most: int
    series: list[Series]
    #: Each chart's horizontal grid lines as one path, and their (y, label) texts.
    open_grid: str
    action_grid: str
    open_ticks: list[tuple[str, int]]
    action_ticks: list[tuple[str, int]]
    #: The outcomes present, in stacking order, each with its colour.
    legend: list[tuple[str, str]]
    #: The tables beneath: each period's end (as the log writes it and as people read
    #: it) and the open count then; each period's start and its count of each outcome
    #: present, then of all.
    open_rows: list[tuple[str, str, int]]
    action_rows: list[tuple[str, str, list[int]]]


def charts(review: Review) -> Charts:
    buckets = review.buckets
    bounds = [review.since, *(b.end for b in buckets)]
    # As people read them: each period's start is the one before's end.
    shown = [shown_time(moment) for moment in bounds]
    xs = _along(bounds)
    ends = bounds[1:]
    opens = [b.open_after for b in buckets]
    open_most = max([review.open_at_start, *opens], default=0)
    open_scale = _PLOT / max(open_most, 1)
    open_ys = [_y(n * open_scale) for n in opens]
    steps = "".join([f"H{x}V{y}" for x, y in zip(xs[1:], open_ys, strict=True)])
    totals = [b.total for b in buckets]
    actions_most = max(totals, default=0)
    present = _stacked({o for b in buckets for o, n in b.outcomes.items() if n})
    rows = [[b.outcomes.get(o, 0) for b in buckets] for o in present]
    open_ticks = [(_y(v * open_scale), v) for v in _ticks(open_most)]
    bar_scale = _PLOT / max(actions_most, 1)
    action_ticks = [(_y(v * bar_scale), v) for v in _ticks(actions_most)]
    return Charts(
        bounds=" ".join(bounds),
        open_path=_trimmed(f"M{_LEFT},{_y(review.open_at_start * open_scale)}{steps}"),
        dots=_trimmed("".join([f"M{x},{y}h0" for x, y in zip(xs[1:], open_ys, strict=True)])),
        dot_times=" ".join(ends),
        dot_counts=" ".join(map(str, opens)),
        open_most=open_most,
        actions_most=actions_most,
        series=_series(present, rows, xs, bar_scale),
        open_grid=_trimmed(_grid(open_ticks)),
        action_grid=_trimmed(_grid(action_ticks)),
        open_ticks=[(_number(float(y) + 4), v) for y, v in open_ticks],
        action_ticks=[(_number(float(y) + 4), v) for y, v in action_ticks],
        legend=[(o, COLOURS.get(o, _OTHER_COLOUR)) for o in present],
        open_rows=list(zip(ends, shown[1:], opens, strict=True)),
        action_rows=[
            (b.start, start, list(counts))
            for b, start, counts in zip(
                buckets, shown[:-1], zip(*rows, totals, strict=True), strict=True
            )
        ],
    )


def _along(moments: list[str]) -> list[str]:
    """Where each moment (the window's start first, its end last) falls along the x axis,
    as a path writes it before it is `_trimmed`."""
    seconds = [datetime.fromisoformat(m).timestamp() for m in moments]
    start = seconds[0]
    span = max(seconds[-1] - start, 1e-6)
    plot = WIDTH - _LEFT
    return [f"{_LEFT + plot * min(max((s - start) / span, 0), 1):.1f}" for s in seconds]


def _series(
    outcomes: list[str], rows: list[list[int]], xs: list[str], scale: float
) -> list[Series]:
    """Each outcome's bars as rectangles in one path, each on top of the earlier outcomes'.

    A bar leaves a unit free at each side of its period, so that neighbours stay apart."""
    lefts = [float(x) + 1 for x in xs[:-1]]
    widths = [
        f"{max(float(right) - left - 1, 1):.1f}" for left, right in zip(lefts, xs[1:], strict=True)
    ]
    # Each period's bars start at its left edge: written once, not once an outcome.
    moves = [f"M{left:.1f}," for left in lefts]
    stacked = [0] * len(lefts)
    # Each top (a height of stacked bars) and each bar's height written once: a day's
    # busy periods hold about as many actions each.
    tops: dict[int, str] = {}
    heights: dict[int, str] = {}
    series = []
    for outcome, counts in zip(outcomes, rows, strict=True):
        shapes = []
        for index, count in enumerate(counts):
            if count:
                stacked[index] = level = stacked[index] + count
                top = tops.get(level) or tops.setdefault(level, _y(level * scale))
                height = heights.get(count) or heights.setdefault(count, f"{count * scale:.1f}")
                width = widths[index]
                shapes.append(f"{moves[index]}{top}h{width}v{height}h-{width}z")
        colour = COLOURS.get(outcome, _OTHER_COLOUR)
        path = _trimmed("".join(shapes))
        series.append(Series(outcome, colour, path, " ".join(map(str, counts))))
    return series


def _grid(ticks: list[tuple[str, int]]) -> str:
    return "".join(f"M{_LEFT},{y}H{WIDTH}" for y, _ in ticks)


def _y(height: float) -> str:
    """The y of a height above the x axis, as a path writes it before it is `_trimmed`."""
    return f"{_BASE - height:.1f}"


def _number(value: float) -> str:
    """A coordinate to a tenth of a unit, without a trailing `.0`."""
    return f"{value:.1f}".removesuffix(".0")


def _trimmed(path: str) -> str:
    """A path whose numbers were written to a tenth (`.1f`), each as `_number` writes it.

    One replace over the path, not a call a number (a chart has a hundred): with one
    decimal, every `.0` in a path is a number's trailing one, and nothing else in a
    path (letters, commas) holds one."""
    return path.replace(".0", "")


def _stacked(outcomes: set[str]) -> list[str]:
    known = [o for o in OUTCOME_ORDER if o in outcomes]
    return known + sorted(o for o in outcomes if o not in OUTCOME_ORDER)


def _ticks(most: int) -> list[int]:
    """0, the top, and a middle line when it is a whole number."""
    if most <= 0:
        return [0]
    return sorted({0, most // 2, most})
