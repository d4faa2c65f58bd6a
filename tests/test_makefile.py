"""`make run` installs what running needs and nothing else; the test targets add the extras."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import httpx
import pytest

from tests.support.live import free_port, wait_for

ROOT = Path(__file__).resolve().parent.parent
EXTRAS = ("pytest", "hypothesis", "schemathesis", "selenium", "ruff", "mypy")


def _make(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["make", "--no-print-directory", *args],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=600,
    )


def test_run_and_test_install_different_things() -> None:
    run = _make("-n", "run", "VENV=/nonexistent/venv").stdout
    test = _make("-n", "test", "VENV=/nonexistent/venv").stdout

    assert "pip install --quiet -e .\n" in run
    assert "[dev]" not in run and "[test]" not in run
    assert "psa-ledger serve" in run
    assert "-e '.[dev]'" in test


@pytest.mark.slow
def test_make_run_on_a_fresh_venv_serves_without_the_test_extras(tmp_path: Path) -> None:
    venv = tmp_path / "venv"
    installed = _make(f"VENV={venv}", f"{venv}/.installed-run")
    assert installed.returncode == 0, installed.stderr[-2000:]

    missing = subprocess.run(
        [str(venv / "bin" / "python"), "-c", _FIND_SPECS, *EXTRAS],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    ).stdout.split()
    assert missing == list(EXTRAS), "make run installs none of the test or dev extras"

    port = free_port()
    server = subprocess.Popen(
        [str(venv / "bin" / "psa-ledger"), "serve", "--port", str(port)],
        cwd=tmp_path,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        wait_for(lambda: _healthy(port), timeout=30, what="psa-ledger from the run-only venv")
    finally:
        server.terminate()
        server.wait(timeout=15)


_FIND_SPECS = (
    "import importlib.util, sys; "
    "print(*[m for m in sys.argv[1:] if importlib.util.find_spec(m) is None])"
)


def _healthy(port: int) -> bool:
    try:
        return httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=1).status_code == 200
    except httpx.TransportError:
        return False


def test_make_fuzz_runs_every_property_test_and_only_those_with_more_examples() -> None:
    dry = _make("-n", "fuzz", "FUZZ=7", "VENV=/nonexistent/venv").stdout
    assert "PSA_LEDGER_FUZZ=7 " in dry and "-m hypothesis" in dry

    scaled = _python("from tests.support.fuzzing import examples; print(examples(30))", "7")
    assert scaled.stdout.split() == ["210"]
    refused = _python("import tests.support.fuzzing", "many")
    assert "PSA_LEDGER_FUZZ must be a whole number" in refused.stderr

    selected = _python("import pytest; pytest.main(['-q', '--collect-only', '-m', 'hypothesis'])")
    modules = {line.split("::")[0] for line in selected.stdout.splitlines() if "::" in line}
    using = {
        str(path.relative_to(ROOT))
        for path in (ROOT / "tests").rglob("test_*.py")
        if re.search(r"^from hypothesis import", path.read_text(), re.MULTILINE)
    }
    assert using and modules == using, "a property test `make fuzz` would not run"


def _python(code: str, fuzz: str = "1") -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", code],
        cwd=ROOT,
        env={**os.environ, "PSA_LEDGER_FUZZ": fuzz},
        capture_output=True,
        text=True,
        timeout=120,
    )
