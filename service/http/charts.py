"""The review page's two charts as geometry for inline SVG, drawn on the server.

No script and no library: a step line of open tickets and bars of actions stacked by
outcome are a few rectangles and one path. The numbers drawn are the `Review`'s, and the
page puts the same numbers in a table under each chart for people who cannot see it.
"""

from __future__ import annotations

import msgspec

from service.audit.window import OUTCOME_ORDER, Review

__all__ = ["COLOURS", "HEIGHT", "WIDTH", "Bar", "Charts", "Segment", "charts"]

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


class Segment(msgspec.Struct, frozen=True):
    outcome: str
    count: int
    y: float
    height: float
    colour: str


class Bar(msgspec.Struct, frozen=True):
    x: float
    width: float
    segments: list[Segment]


class Charts(msgspec.Struct, frozen=True, kw_only=True):
    open_path: str
    #: The height of the line at each bucket's end, where its point is drawn.
    open_y: list[float]
    open_most: int
    actions_most: int
    bars: list[Bar]
    #: (y, label) of the horizontal grid lines of each chart.
    open_ticks: list[tuple[float, int]]
    action_ticks: list[tuple[float, int]]
    outcomes: list[str]
    left: int


def charts(review: Review) -> Charts:
    buckets = review.buckets
    count = max(len(buckets), 1)
    step = (WIDTH - _LEFT) / count
    plot = HEIGHT - _BOTTOM - _TOP
    open_most = max([review.open_at_start, *(b.open_after for b in buckets)], default=0)
    open_scale = plot / max(open_most, 1)

    def open_y(value: int) -> float:
        return round(HEIGHT - _BOTTOM - value * open_scale, 1)

    path = [f"M{_LEFT},{open_y(review.open_at_start)}"]
    for index, bucket in enumerate(buckets):
        x = round(_LEFT + (index + 1) * step, 1)
        path.append(f"H{x}V{open_y(bucket.open_after)}")
    actions_most = max((b.total for b in buckets), default=0)
    bar_scale = plot / max(actions_most, 1)
    bars = []
    for index, bucket in enumerate(buckets):
        y = float(HEIGHT - _BOTTOM)
        segments = []
        for outcome in _stacked(bucket.outcomes):
            height = bucket.outcomes[outcome] * bar_scale
            y -= height
            colour = COLOURS.get(outcome, "#37474f")
            segments.append(
                Segment(outcome, bucket.outcomes[outcome], round(y, 1), round(height, 1), colour)
            )
        bars.append(Bar(round(_LEFT + index * step + 1, 1), round(max(step - 2, 1), 1), segments))
    present = {o for b in buckets for o in b.outcomes}
    return Charts(
        open_path="".join(path),
        open_y=[open_y(b.open_after) for b in buckets],
        open_most=open_most,
        actions_most=actions_most,
        bars=bars,
        open_ticks=[(open_y(v), v) for v in _ticks(open_most)],
        action_ticks=[
            (round(HEIGHT - _BOTTOM - v * bar_scale, 1), v) for v in _ticks(actions_most)
        ],
        outcomes=[o for o in _stacked(dict.fromkeys(present, 1))],
        left=_LEFT,
    )


def _stacked(outcomes: dict[str, int]) -> list[str]:
    known = [o for o in OUTCOME_ORDER if outcomes.get(o)]
    return known + sorted(o for o in outcomes if o not in OUTCOME_ORDER and outcomes[o])


def _ticks(most: int) -> list[int]:
    """0, the top, and a middle line when it is a whole number."""
    if most <= 0:
        return [0]
    return sorted({0, most // 2, most})
