"""The review page's two charts as geometry for inline SVG, drawn on the server.

No script and no library: a step line of open tickets and bars of actions stacked by
outcome. Each outcome's bars are one path (one element for the whole series, not one
per bar and outcome), and each period one transparent hover area whose title reads out
its numbers; every figure is worked out here once, so the template only places strings.
The numbers drawn are the `Review`'s, and the page puts the same numbers in a table
under each chart for people who cannot see it. Time runs to scale along both charts: a
period the window's ends cut short (buckets fall on the clock) is drawn as narrow as it
is short, so that its fewer actions do not read as a lull.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime

import msgspec

from service.audit.window import OUTCOME_ORDER, Review
from service.http.templating import shown_time, when

__all__ = ["COLOURS", "HEIGHT", "WIDTH", "Charts", "Period", "Point", "Series", "charts"]

#: The drawing's coordinate system; the SVG scales to the page's width.
WIDTH, HEIGHT = 640, 200
_LEFT, _BOTTOM, _TOP = 44, 24, 10
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


class Point(msgspec.Struct, frozen=True):
    """The open count at the end of one period, where the step line's point is drawn."""

    x: float
    y: float
    at: str
    open: int
    label: str
    #: `at` as the page's `<time>` element.
    shown: str


class Series(msgspec.Struct, frozen=True):
    """One outcome's bars, stacked on those of the outcomes before it, as one path."""

    outcome: str
    colour: str
    path: str
    #: Its count in each period, space-separated, in the periods' order.
    counts: str


class Period(msgspec.Struct, frozen=True):
    """One period's column of the bar chart: the area its title is shown over."""

    x: float
    width: float
    start: str
    end: str
    label: str
    #: `start` as the page's `<time>` element.
    shown: str
    #: Its row of the table: the count of each outcome present, then all of them.
    cells: list[int]


class Charts(msgspec.Struct, frozen=True, kw_only=True):
    open_path: str
    points: list[Point]
    open_most: int
    actions_most: int
    series: list[Series]
    periods: list[Period]
    #: (y, label) of the horizontal grid lines of each chart.
    open_ticks: list[tuple[float, int]]
    action_ticks: list[tuple[float, int]]
    #: The outcomes present, in stacking order.
    outcomes: list[str]
    #: The plot area: from `left` to the right edge, `top` down `plot` units.
    left: int
    top: int
    plot: int


def charts(review: Review) -> Charts:
    buckets = review.buckets
    x_at = _time_axis(review)
    plot = HEIGHT - _BOTTOM - _TOP
    open_most = max([review.open_at_start, *(b.open_after for b in buckets)], default=0)
    open_scale = plot / max(open_most, 1)

    def open_y(value: int) -> float:
        return round(HEIGHT - _BOTTOM - value * open_scale, 1)

    path = [f"M{_LEFT},{open_y(review.open_at_start)}"]
    points = []
    for bucket in buckets:
        x, y = x_at(bucket.end), open_y(bucket.open_after)
        path.append(f"H{x}V{y}")
        label = f"{shown_time(bucket.end)}: {bucket.open_after} open"
        points.append(Point(x, y, bucket.end, bucket.open_after, label, when(bucket.end)))
    totals = [b.total for b in buckets]
    actions_most = max(totals, default=0)
    bar_scale = plot / max(actions_most, 1)
    present = _stacked({o: 1 for b in buckets for o in b.outcomes if b.outcomes[o]})
    xs = [x_at(b.start) + 1 for b in buckets]
    widths = [round(max(x_at(b.end) - x - 1, 1), 1) for x, b in zip(xs, buckets, strict=True)]
    xs = [round(x, 1) for x in xs]
    series = _series(review, present, xs, widths, bar_scale)
    periods = [
        Period(
            x,
            width,
            b.start,
            b.end,
            _period_label(b.start, b.outcomes, present, total),
            when(b.start),
            [*(b.outcomes.get(o, 0) for o in present), total],
        )
        for x, width, b, total in zip(xs, widths, buckets, totals, strict=True)
    ]
    return Charts(
        open_path="".join(path),
        points=points,
        open_most=open_most,
        actions_most=actions_most,
        series=series,
        periods=periods,
        open_ticks=[(open_y(v), v) for v in _ticks(open_most)],
        action_ticks=[
            (round(HEIGHT - _BOTTOM - v * bar_scale, 1), v) for v in _ticks(actions_most)
        ],
        outcomes=present,
        left=_LEFT,
        top=_TOP,
        plot=plot,
    )


def _time_axis(review: Review) -> Callable[[str], float]:
    """Where a moment of the window falls along the charts' x axis."""
    start = _seconds(review.since)
    span = max(_seconds(review.until) - start, 1e-6)
    plot = WIDTH - _LEFT

    def x_at(moment: str) -> float:
        return round(_LEFT + plot * min(max((_seconds(moment) - start) / span, 0), 1), 1)

    return x_at


def _seconds(iso: str) -> float:
    return datetime.fromisoformat(iso).timestamp()


def _series(
    review: Review, outcomes: list[str], xs: list[float], widths: list[float], scale: float
) -> list[Series]:
    """Each outcome's bars as rectangles in one path, each on top of the earlier outcomes'."""
    stacked = [0] * len(review.buckets)
    series = []
    for outcome in outcomes:
        counts = [b.outcomes.get(outcome, 0) for b in review.buckets]
        shapes = []
        for index, count in enumerate(counts):
            if count:
                base = HEIGHT - _BOTTOM - stacked[index] * scale
                height = round(count * scale, 1)
                width = widths[index]
                shapes.append(f"M{xs[index]},{round(base - height, 1)}h{width}v{height}h-{width}z")
                stacked[index] += count
        colour = COLOURS.get(outcome, _OTHER_COLOUR)
        series.append(Series(outcome, colour, "".join(shapes), " ".join(map(str, counts))))
    return series


def _period_label(start: str, counted: dict[str, int], outcomes: list[str], total: int) -> str:
    parts = ", ".join(f"{counted[o]} {o}" for o in outcomes if counted.get(o))
    return f"{shown_time(start)}: {total} actions" + (f" ({parts})" if parts else "")


def _stacked(outcomes: dict[str, int]) -> list[str]:
    known = [o for o in OUTCOME_ORDER if outcomes.get(o)]
    return known + sorted(o for o in outcomes if o not in OUTCOME_ORDER and outcomes[o])


def _ticks(most: int) -> list[int]:
    """0, the top, and a middle line when it is a whole number."""
    if most <= 0:
        return [0]
    return sorted({0, most // 2, most})
