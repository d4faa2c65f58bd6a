"""The benchmarks still run (tiny scale); their numbers are for `make bench`, not for tests."""

import os
from contextlib import closing

import httpx
import pytest

from bench import ceiling, cpu, http, ingest, ledger, replay, servers
from bench.baseline import TicketShape
from service.storage.sqlite import connect_sync
from statemachine.events import TicketRequest


def test_ledger_benchmark_runs_and_writes_every_request(capsys) -> None:
    result = ledger.main(["--scale", "0.01"])
    assert result["serial"] > 0 and result["grouped"] > 0
    assert "group commit" in capsys.readouterr().out


def test_http_benchmark_runs_against_a_real_server(capsys) -> None:
    result = http.main(["--scale", "0.01"])
    assert result["healthz"] > 0 and result["writes"] > 0
    assert "PUT /ncentral/tickets" in capsys.readouterr().out


def test_audit_benchmark_runs_on_a_small_log(capsys) -> None:
    from bench import audit

    audit.main(["--events", "3000"])
    shown = capsys.readouterr().out
    assert "built 3,000 events" in shown
    assert "GET /api/events" in shown and "export" in shown and "verify" in shown


def test_baseline_app_answers_an_identity_and_refuses_a_bad_body() -> None:
    create = {"action": "CREATE", "ncentralTicketId": "42", "title": "t", "details": "a\nb"}
    with servers.baseline() as port:
        url = f"http://127.0.0.1:{port}/ncentral/tickets"
        answer = httpx.put(url, json=create)
        refused = httpx.put(url, json={"action": "CREATE"})
    assert answer.status_code == 200
    assert answer.json()["externalTicketId"] == "PSA-42"
    assert refused.status_code == 400


def test_baseline_decodes_the_same_shape_as_the_service() -> None:
    assert TicketShape.__struct_encode_fields__ == TicketRequest.__struct_encode_fields__


def test_ingest_benchmark_loads_both_servers_with_lawful_requests_only_on_both_backends(
    capsys,
) -> None:
    found = ingest.main(["--seconds", "1", "--rounds", "1", "--connections", "16"])
    if found is None:
        pytest.skip(capsys.readouterr().out.strip())
    assert list(found) == ["sqlite", "postgresql"]
    for [only] in found.values():
        assert only.baseline.per_second > 0 and only.psa.per_second > 0
        # Every CREATE, UPDATE, RESOLVE and REOPEN was answered 2xx: the mix is lawful.
        assert only.psa.errors == 0 and only.baseline.errors == 0
        # The write path alone ran on its own log, with the same lawful mix.
        assert only.alone.per_second > 0 and only.alone.errors == 0
        assert sum(only.alone.statuses.values()) > 0
    assert capsys.readouterr().out.count("psa/base") == 2


def test_ceiling_benchmark_loads_every_log_with_lawful_requests_only(capsys) -> None:
    found = ceiling.main(["--seconds", "1", "--rounds", "1", "--connections", "16"])
    if found is None:
        pytest.skip(capsys.readouterr().out.strip())
    [only] = found
    assert only.baseline.per_second > 0 and only.baseline.errors == 0
    assert list(only.psa) == list(ceiling.LOGS)
    # The lean log still takes the whole mix: what it drops, the write path does not need.
    for result in only.psa.values():
        assert result.per_second > 0 and result.errors == 0
    shown = capsys.readouterr().out
    for lean in ("lean on disk", "lean in memory"):
        assert f"{lean} dropped events_by_action" in shown and "tickets_tags_follow" in shown
    assert "on disk dropped" not in shown.replace("lean on disk dropped", "")
    assert "lean on disk/s" in shown and "lean in memory/s" in shown


def test_ceiling_drops_the_read_structures_and_keeps_what_guards_the_log(tmp_path) -> None:
    with closing(connect_sync(tmp_path / "log.db", readonly=False)) as db:
        dropped = {name for _, name in ceiling.read_structures(db)}
    assert {"tickets_tags_follow", "tickets_tags_change"} <= dropped
    assert {"events_by_action", "events_by_time", "tickets_by_state_id"} <= dropped
    # A ticket's stream stays unique, and the log refuses UPDATE and DELETE.
    assert not {"events_by_ticket", "events_refuse_update", "events_refuse_delete"} & dropped


def test_cpu_benchmark_reads_each_servers_cpu_a_request(capsys) -> None:
    pairs = cpu.main(["--quick", "--cpu-connections", "16"])
    if pairs is None:
        pytest.skip(capsys.readouterr().out.strip())
    [(baseline, psa)] = pairs
    assert baseline.requests > 0 and psa.requests > 0
    assert baseline.per_request() > 0
    # psa-ledger's event loop, and its SQLite writer on a thread of its own, both worked.
    assert psa.per_request("event loop") > 0 and psa.per_request("other threads") > 0
    assert psa.per_request() > psa.per_request("event loop")
    # The machine's busy cores: wrk and the server at least kept some busy, and no more
    # than the machine has.
    assert 0 < baseline.cores <= (os.cpu_count() or 1) and 0 < psa.cores <= (os.cpu_count() or 1)
    assert "the baseline's CPU a request is" in capsys.readouterr().out


def test_replay_benchmark_times_the_tools_against_raw_reads_on_both_backends(capsys) -> None:
    result = replay.main(["--events", "3000", "--rounds", "1"])
    for backend in ("", "postgresql "):
        assert result[f"{backend}fold"] > 0 and result[f"{backend}verify"] > 0
        assert result[f"{backend}verify ratio"] > 0
    shown = capsys.readouterr().out
    assert "built 3,000 events" in shown and "on PostgreSQL (the same log, copied" in shown
    assert shown.count("psa-ledger replay --at") == 2 and shown.count("psa-ledger verify") == 2


def test_console_benchmark_renders_each_page_on_a_small_log(capsys) -> None:
    from bench import console

    ratios = console.main(["--events", "3000", "--days", "30", "--rounds", "1"])
    shown = capsys.readouterr().out
    if ratios is None:
        pytest.skip(shown.strip())
    assert "built 3,000 events over 30 days" in shown
    assert set(ratios) >= {"ticket list /", "review, the last day", "review, a day mid-log"}
    assert "timed by wrk" in shown


def test_memory_benchmark_samples_a_real_server_under_load_on_both_backends(capsys) -> None:
    from bench import memory

    found = memory.main(["--requests", "1500", "--slice", "1"])
    if found is None:
        pytest.skip(capsys.readouterr().out.strip())
    assert list(found) == ["sqlite", "postgresql"]
    for samples in found.values():
        assert samples[-1].requests >= 1500 and all(s.rss_mb > 0 for s in samples)
    assert capsys.readouterr().out.count("after warm-up") == 2


def test_postgres_benchmark_runs_one_replica_then_two(capsys) -> None:
    from bench import postgres

    result = postgres.main(["--scale", "0.03", "--http-seconds", "0"])
    assert result["raw"] > 0 and result["ledger"] > 0 and result["two"] > 0
    assert "two replicas" in capsys.readouterr().out
