"""The benchmarks still run (tiny scale); their numbers are for `make bench`, not for tests."""

from bench import ledger


def test_ledger_benchmark_runs_and_writes_every_request(capsys) -> None:
    result = ledger.main(scale=0.01)
    assert result["serial"] > 0 and result["grouped"] > 0
    assert "group commit" in capsys.readouterr().out
