"""The benchmarks still run (tiny scale); their numbers are for `make bench`, not for tests."""

from bench import http, ledger


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
