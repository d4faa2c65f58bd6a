"""The review page's charts: paths written a whole path at a time say what a number at a
time says (`_number` on each coordinate), for any counts, widths and scales."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from service.http.charts import _BASE, _number, _series, _trimmed

_COORDINATE = st.floats(allow_nan=False, allow_infinity=False, min_value=-1e7, max_value=1e7)


@given(st.lists(st.tuples(_COORDINATE, _COORDINATE), max_size=30))
def test_a_trimmed_path_writes_each_number_as_number_does(
    points: list[tuple[float, float]],
) -> None:
    written = "".join(f"M{x:.1f},{y:.1f}h0H640" for x, y in points)
    assert _trimmed(written) == "".join(f"M{_number(x)},{_number(y)}h0H640" for x, y in points)


@given(
    rows=st.integers(1, 4).flatmap(
        lambda periods: st.lists(
            st.lists(st.integers(0, 3_000), min_size=periods, max_size=periods),
            min_size=1,
            max_size=4,
        )
    ),
    steps=st.lists(st.floats(0, 60), min_size=4, max_size=4),
    scale=st.floats(1e-3, 200),
)
def test_bars_are_drawn_as_a_coordinate_at_a_time_draws_them(
    rows: list[list[int]], steps: list[float], scale: float
) -> None:
    xs = [f"{44 + sum(steps[:index]):.1f}" for index in range(len(rows[0]) + 1)]
    outcomes = [f"outcome-{index}" for index in range(len(rows))]
    drawn = [series.path for series in _series(outcomes, rows, xs, scale)]
    assert drawn == _bars_one_number_at_a_time(rows, [_number(float(x)) for x in xs], scale)


def _bars_one_number_at_a_time(rows: list[list[int]], xs: list[str], scale: float) -> list[str]:
    """The bars as the page drew them before, each coordinate through `_number`."""
    lefts = [float(x) + 1 for x in xs[:-1]]
    widths = [
        _number(max(float(right) - left - 1, 1)) for left, right in zip(lefts, xs[1:], strict=True)
    ]
    stacked = [0] * len(lefts)
    paths = []
    for counts in rows:
        shapes = []
        for index, count in enumerate(counts):
            if count:
                top = _BASE - (stacked[index] + count) * scale
                width = widths[index]
                shapes.append(
                    f"M{_number(lefts[index])},{_number(top)}"
                    f"h{width}v{_number(count * scale)}h-{width}z"
                )
                stacked[index] += count
        paths.append("".join(shapes))
    return paths
