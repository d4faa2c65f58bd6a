"""The operator console on a large log: the ticket list and a day's review page.

A million events spread over a year (about 2,700 a day, ~100,000 tickets), served by a
real `psa-ledger serve`. Ratios are against baselines measured in the same run, never a
pass/fail on time:

- the full scan of the log that `bench.audit` uses (SQLite counting an unindexed filter
  over every row: the cheapest possible look at every event);
- a full scan through the read side (every event read and decoded, as a replay or an
  unindexed page would have to), the cost the console exists to avoid;
- `GET /healthz`, what HTTP alone costs.

The issue asks for each page in <= 0.05x "a full scan of the log"; both scans are shown.
Rounds alternate: in each round every page is timed right after a SQL scan of its own,
and a page's figure is the median over rounds of its ratio to that scan, so that a busy
moment on a shared machine weighs on both sides of a ratio alike. (Until the twelfth
round of issue 11 a round scanned once, then timed every page over the next ten seconds:
the host's speed drifts within seconds, and a page's ratio moved with the scan's.)

Each page (and `/healthz`) is timed by wrk (`page.lua`): one thread, one connection,
`--seconds` a page a round, its median latency. Until the seventh round of issue 11 an
httpx client in this process timed them, a request at a time: that client spent
0.5-0.8 ms of every request on its own work (of 0.7 ms for `/healthz`, the server spent
0.2), on the same two cores as the server, which is a quarter of a page's 0.05x budget.
wrk (C) costs a few tens of µs a request, so the figure is the server's.
bench/results-console.md shows both instruments on the same code, so that the
instrument's gain is not read as the server's. The single cold requests below are
still timed by httpx: they take hundreds of ms.

Building the log takes minutes; `--db PATH` keeps it at PATH (built when missing) for
the next run. The first review of a window mid-log, asked for as soon as the server
answers, may still wait for the `OpenTally`'s one sum of the log that the server makes
as it starts; that cold request is timed and shown on its own, and so is the first
review of another day (its hours counted from the events, before the server keeps them:
`Rollups`); the rounds then time pages whose hours are kept. The day windows run from
midnight to midnight, whole days the server also keeps merged; a window from 09:30 to
09:30 holds none, and counts its two cut-short hours from the events at every request:
it is timed too. The rounds also wait for the server's text index (`storage.textindex`,
built in the background as it starts: the list walks every ticket for a text until
then); how long after the start it was built is shown.
"""

from __future__ import annotations

import argparse
import re
import sqlite3
import statistics
import tempfile
import time
from datetime import datetime, timedelta
from pathlib import Path
from urllib.parse import urlencode

from bench import wrk
from bench.biglog import build_log
from bench.timing import median_seconds
from service.storage.events import iter_after
from service.storage.sqlite import connect_sync
from tests.support.harness import Server
from tests.support.live import OPERATOR
from tests.support.ncentral_fake import basic_auth

__all__ = ["main"]

TARGET = 0.05
SCRIPT = Path(__file__).with_name("page.lua")
AUTHORIZATION = basic_auth(*OPERATOR)


def main(argv: list[str]) -> dict[str, float] | None:
    """Each page's ratio to the SQL scan, by name; None when wrk cannot be had."""
    options = _parse(argv)
    try:
        wrk.ensure_wrk()
    except wrk.WrkMissing as exc:
        print(f"console: cannot run: {exc}")
        return None
    if options.db is not None:
        return _run(Path(options.db), options)
    with tempfile.TemporaryDirectory(prefix="psa-ledger-bench-") as folder:
        return _run(Path(folder) / "big.db", options)


def _run(db: Path, options: argparse.Namespace) -> dict[str, float]:
    if db.exists():
        print(f"log kept at {db} (delete it to build it again)")
    else:
        spacing = timedelta(days=options.days) / options.events
        count = build_log(db, options.events, spacing=spacing)
        print(
            f"built {count:,} events over {options.days} days ({count / options.days:,.0f} a day)"
        )
    decoded = median_seconds(lambda: _read_side_scan(db), 1)
    print(f"baseline: full scan through the read side (events decoded) {decoded * 1000:.0f} ms")
    return _pages(db, decoded, options.rounds, options.seconds)


def _parse(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench console")
    parser.add_argument("--events", type=int, default=1_000_000, help="size of the log")
    parser.add_argument("--days", type=int, default=365, help="the time the log spans")
    parser.add_argument("--rounds", type=int, default=5, help="alternating rounds, median taken")
    parser.add_argument("--seconds", type=int, default=1, help="wrk's run per page in a round")
    parser.add_argument("--db", help="keep the log here (built when missing) for later runs")
    return parser.parse_known_args(argv)[0]


def _pages(db: Path, decoded: float, rounds: int, seconds: int) -> dict[str, float]:
    last, middle, unseen = _days(db)
    # 09:30 to 09:30: no whole day inside, two cut-short hours counted at every request.
    off_the_clock = _day_to(_shifted(last["to"], timedelta(hours=-14, minutes=-30)))
    server = Server(db)
    started = time.monotonic()
    cases = [
        ("ticket list /", "/", {}),
        ("ticket list, state=open", "/", {"state": "open"}),
        ("ticket list, tag=site:York", "/", {"tag": "site:York"}),
        ("ticket list, text=host-12", "/", {"text": "host-12"}),
        ("review, the last day", "/review", last),
        ("review, a day mid-log", "/review", middle),
        ("review, 24 h from 09:30", "/review", off_the_clock),
        ("review, last day, outcome=rejected", "/review", {**last, "outcome": "rejected"}),
        ("callbacks", "/callbacks", {}),
    ]
    try:
        cold = median_seconds(lambda: _get(server, "/review", middle), 1)
        print(f"the first review mid-log, at once after start: {cold * 1000:.0f} ms")
        first = median_seconds(lambda: _get(server, "/review", unseen), 1)
        print(f"the first review of another day (counts its hours): {first * 1000:.1f} ms")
        built = _text_index_built(server) - started
        print(f"the text index built {built:.1f} s after the server answered")
        for _, path, params in cases:
            _get(server, path, params)
        scans: dict[str, list[float]] = {name: [] for name, _, _ in cases}
        bare: list[float] = []
        times: dict[str, list[float]] = {name: [] for name, _, _ in cases}
        for _ in range(rounds):
            bare.append(_latency(server, "/healthz", {}, seconds))
            for name, path, params in cases:
                scans[name].append(median_seconds(lambda: _sql_scan(db), 3))
                times[name].append(_latency(server, path, params, seconds))
    finally:
        server.stop()
    scan = statistics.median(s for page in scans.values() for s in page)
    print(f"baseline: full scan of the log (SQL, unindexed filter) {scan * 1000:.1f} ms")
    print(f"{rounds} alternating rounds; each figure is the median of the rounds' own")
    print(f"each page timed by wrk, one connection, {seconds} s a round: its median latency")
    print(f"baseline: GET /healthz {statistics.median(bare) * 1000:.2f} ms")
    print(f"{'page':<38}{'median ms':>10}{'x scan':>9}{'x read-side':>13}{'x healthz':>11}")
    results: dict[str, float] = {}
    for name, samples in times.items():
        ratio = statistics.median(t / s for t, s in zip(samples, scans[name], strict=True))
        took = statistics.median(samples)
        results[name] = ratio
        verdict = "ok" if ratio <= TARGET else f"over {TARGET}x scan"
        print(
            f"  {name:<36}{took * 1000:>10.2f}{ratio:>9.3f}{took / decoded:>13.4f}"
            f"{took / statistics.median(bare):>11.1f}  {verdict}"
        )
    return results


def _text_index_built(server: Server) -> float:
    """When the server's text index was first seen built (`/metrics`): the rounds time the
    text filter through it, not the walk it takes until then."""
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline:
        found = re.search(_GAUGE, server.operator.get("/metrics").text, re.MULTILINE)
        if found is not None and float(found[1]) >= 0:
            return time.monotonic()
        time.sleep(0.1)
    raise SystemExit("the text index was not built within 300 s")


_GAUGE = r"^psa_ledger_text_index_position (\S+)$"


def _latency(server: Server, path: str, params: dict[str, str], seconds: int) -> float:
    """The median latency of `path` asked for by wrk for `seconds` on one connection."""
    url = f"{server.url}{path}?{urlencode(params)}" if params else f"{server.url}{path}"
    found = wrk.run(url, SCRIPT, [AUTHORIZATION], connections=1, threads=1, seconds=seconds)
    if found.errors:
        raise SystemExit(f"{url} failed under wrk: {found}")
    return found.p50_us / 1e6


def _get(server: Server, path: str, params: dict[str, str]) -> None:
    answer = server.operator.get(path, params=params)
    answer.raise_for_status()


def _days(db: Path) -> tuple[dict[str, str], dict[str, str], dict[str, str]]:
    """The window of the log's last day, of a day in its middle, and of one a quarter in."""
    with sqlite3.connect(f"file:{db}?mode=ro", uri=True) as conn:
        end = str(conn.execute("SELECT MAX(recorded_at) FROM events").fetchone()[0])
        count = int(conn.execute("SELECT MAX(position) FROM events").fetchone()[0])
        mid, quarter = (
            str(conn.execute(_TIME_AT, (position,)).fetchone()[0])
            for position in (count // 2, count // 4)
        )
    return _day_to(end), _day_to(mid), _day_to(quarter)


def _day_to(moment: str) -> dict[str, str]:
    return {"from": _day_before(moment), "to": moment}


_TIME_AT = "SELECT recorded_at FROM events WHERE position = ?"


def _day_before(iso: str) -> str:
    return _shifted(iso, timedelta(days=-1))


def _shifted(iso: str, by: timedelta) -> str:
    moment = datetime.fromisoformat(iso.replace("Z", "+00:00")) + by
    return moment.isoformat(timespec="microseconds").replace("+00:00", "Z")


def _sql_scan(db: Path) -> None:
    with sqlite3.connect(f"file:{db}?mode=ro", uri=True) as conn:
        # `+action` keeps SQLite off the index: the cost of a filter with no index.
        conn.execute("SELECT COUNT(*) FROM events WHERE +action = 'REOPEN'").fetchone()


def _read_side_scan(db: Path) -> None:
    conn = connect_sync(db)
    try:
        sum(1 for _ in iter_after(conn))
    finally:
        conn.close()
