"""Server CPU per request under ingest: psa-ledger's threads against the baseline app's.

On a machine shared with other work, requests per second swing with what the others do;
the CPU time a server spends per request barely does, and it is what bounds the requests
per second once the cores are busy. So this suite runs the same wrk load as
`bench.ingest` against each server in turn, reads every thread's user and system time
from `/proc/<pid>/task/*/stat` before and after, and the time of the child processes it
waited for or still runs (psa-ledger's checkpoints) from `/proc`, and prints the
microseconds of CPU each request cost: per thread for psa-ledger (the event loop, the
other threads, the checkpoint processes), in all for both, and the baseline's share of
psa-ledger's (the ratio a CPU-bound quiet machine would approach). It also prints how many
of the machine's cores were busy meanwhile (`/proc/stat`, wrk and everything else
included): a server that leaves cores idle under wrk is held by something other than
CPU, such as a batch waiting for the one before. Linux only.
"""

from __future__ import annotations

import argparse
import itertools
import os
import statistics
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import msgspec

from bench import ingest, servers, wrk

__all__ = ["Sample", "main"]

_TICKS = os.sysconf("SC_CLK_TCK")


class Sample(msgspec.Struct, frozen=True):
    """One wrk run: requests answered, CPU seconds by thread name (user, system), and the
    machine's cores busy on average (not idle, not waiting for the disk)."""

    requests: int
    threads: dict[str, tuple[float, float]]
    cores: float

    def per_request(self, thread: str | None = None) -> float:
        """Microseconds of CPU a request, of one thread or of all."""
        chosen = [t for name, t in self.threads.items() if thread in (None, name)]
        return 1e6 * sum(user + system for user, system in chosen) / self.requests


def main(argv: list[str] | None = None) -> list[tuple[Sample, Sample]] | None:
    options = _parse(argv or [])
    if not Path("/proc/self/task").is_dir():
        print("cpu: cannot run: no /proc (Linux only)")
        return None
    try:
        wrk.ensure_wrk()
    except wrk.WrkMissing as exc:
        print(f"cpu: cannot run: {exc}")
        return None
    pairs: list[tuple[Sample, Sample]] = []
    prefixes = (str(n) for n in itertools.count(1))
    with (
        tempfile.TemporaryDirectory(prefix="psa-ledger-cpu-") as folder,
        _server(None) as (bare_port, bare_pid),
        _server(Path(folder) / "cpu.db") as (psa_port, psa_pid),
    ):
        print(f"cpu: wrk runs of {options.seconds} s at {options.cpu_connections} connections")
        print(
            f"{'round':<8} {'baseline us/req':>16} {'psa us/req':>11} {'loop':>7} {'others':>7}"
            f" {'children':>9} {'cores busy, baseline':>21} {'psa':>5}"
        )
        for number in range(options.rounds):
            prefix = next(prefixes)
            ingest.seed(psa_port, prefix, threads=min(2, options.cpu_connections))
            bare = _sample(bare_pid, bare_port, prefix, options)
            psa = _sample(psa_pid, psa_port, prefix, options)
            pairs.append((bare, psa))
            print(_row(f"{number + 1}", [(bare, psa)]))
        print(_row("median", pairs))
        share = statistics.median(b.per_request() / p.per_request() for b, p in pairs)
        print(f"cpu: the baseline's CPU a request is {share:.2f}x psa-ledger's")
    return pairs


def _row(label: str, pairs: list[tuple[Sample, Sample]]) -> str:
    def med(values: Iterator[float]) -> float:
        return statistics.median(list(values))

    return (
        f"{label:<8} {med(b.per_request() for b, _ in pairs):>16.1f}"
        f" {med(p.per_request() for _, p in pairs):>11.1f}"
        f" {med(p.per_request(_LOOP) for _, p in pairs):>7.1f}"
        f" {med(p.per_request(_OTHERS) for _, p in pairs):>7.1f}"
        f" {med(p.per_request(_CHILDREN) for _, p in pairs):>9.1f}"
        f" {med(b.cores for b, _ in pairs):>21.2f} {med(p.cores for _, p in pairs):>5.2f}"
    )


#: psa-ledger's CPU, as counted: the process's first thread runs the event loop; the other
#: threads are the SQLite writer's, the text index's and uvloop's helpers; the children
#: are the checkpoint processes the server runs.
_LOOP, _OTHERS, _CHILDREN = "event loop", "other threads", "child processes"


def _sample(pid: int, port: int, prefix: str, options: argparse.Namespace) -> Sample:
    before, children_before, machine_before = _cpu(pid), _children(pid), _machine()
    result = ingest.load(port, prefix, options.cpu_connections, options.seconds)
    after, children_after, machine_after = _cpu(pid), _children(pid), _machine()
    threads = {
        _CHILDREN: (
            children_after[0] - children_before[0],
            children_after[1] - children_before[1],
        )
    }
    for tid, (user, system) in after.items():
        was_user, was_system = before.get(tid, (0.0, 0.0))
        name = _LOOP if tid == pid else _OTHERS
        total_user, total_system = threads.get(name, (0.0, 0.0))
        threads[name] = (total_user + user - was_user, total_system + system - was_system)
    cores = _busy_cores(machine_before, machine_after)
    return Sample(max(result.requests, 1), threads, cores)


def _cpu(pid: int) -> dict[int, tuple[float, float]]:
    """User and system seconds of each thread of `pid`."""
    found: dict[int, tuple[float, float]] = {}
    for task in Path(f"/proc/{pid}/task").iterdir():
        try:
            fields = _fields(task / "stat")
        except FileNotFoundError:
            continue  # the thread ended meanwhile
        found[int(task.name)] = (fields[11] / _TICKS, fields[12] / _TICKS)
    return found


def _machine() -> list[int]:
    """The machine's CPU time so far, in ticks by kind (`/proc/stat`'s "cpu" line)."""
    with open("/proc/stat") as stat:
        return [int(field) for field in stat.readline().split()[1:]]


def _busy_cores(before: list[int], after: list[int]) -> float:
    """Cores busy on average between two `_machine` readings: all but idle and iowait."""
    spent = [later - earlier for earlier, later in zip(before, after, strict=True)]
    idle = spent[3] + spent[4]
    return (os.cpu_count() or 1) * (1 - idle / max(sum(spent), 1))


def _children(pid: int) -> tuple[float, float]:
    """User and system seconds of the children `pid` has waited for, and of those still
    running: the service keeps its checkpoint process from one checkpoint to the next."""
    user, system = _fields(Path(f"/proc/{pid}/stat"))[13:15]
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = _fields(stat)
        except (FileNotFoundError, ProcessLookupError):
            continue  # it ended meanwhile
        if fields[1] == pid:
            user, system = user + fields[11] + fields[13], system + fields[12] + fields[14]
    return user / _TICKS, system / _TICKS


def _fields(stat: Path) -> list[int]:
    """The numbers of a `/proc/<pid>/stat` after the command's name, from the state (0)
    and the parent's id (1) on; the state, a letter, is given as 0."""
    text = stat.read_text()
    return [
        int(field) if field.lstrip("-").isdigit() else 0
        for field in text[text.rindex(")") + 2 :].split()
    ]


@contextmanager
def _server(db: Path | None) -> Iterator[tuple[int, int]]:
    """psa-ledger on `db` (sync mode, as `bench.ingest` runs it), or the baseline app."""
    port = servers.free_port()
    if db is None:
        command = [sys.executable, "-m", "bench.baseline", "--port", str(port)]
        process: subprocess.Popen[bytes] = servers.start(command, port)
    else:
        process = servers.psa_ledger_process(db, port, create_mode="sync")
    with servers.stopping(process):
        yield port, process.pid


def _parse(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench cpu")
    parser.add_argument("--seconds", type=int, default=6, help="length of one wrk run")
    parser.add_argument("--rounds", type=int, default=3, help="runs of each server")
    parser.add_argument("--cpu-connections", type=int, default=64, help="wrk's connections")
    parser.add_argument("--quick", action="store_true", help="1 round of 2 s")
    options = parser.parse_known_args(argv)[0]
    if options.quick:
        options.seconds, options.rounds = 2, 1
    return options
