# The project's habits. `make run` and `make test` work on a fresh machine with Python 3.11+.
# `make run` installs what running needs and nothing more; the test, lint and type-check
# targets add the test and dev extras. Each install has its own stamp.
PYTHON    ?= python3
VENV      ?= .venv
BIN       := $(VENV)/bin
RUN_STAMP := $(VENV)/.installed-run
STAMP     := $(VENV)/.installed

.PHONY: run test fuzz lint fmt typecheck layers check bench docs clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

$(RUN_STAMP): pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet -e .
	touch $(RUN_STAMP)

$(STAMP): pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

run: $(RUN_STAMP)
	$(BIN)/psa-ledger serve

test: $(STAMP)
	$(BIN)/python -m pytest -q

# Only the property tests, each trying FUZZ times the examples `make test` gives it
# (`make fuzz FUZZ=50`; tests/support/fuzzing.py): 12 minutes at the default here.
FUZZ ?= 10
fuzz: $(STAMP)
	PSA_LEDGER_FUZZ=$(FUZZ) $(BIN)/python -m pytest -q -m hypothesis

lint: $(STAMP)
	$(BIN)/ruff check statemachine service tests bench
	$(BIN)/ruff format --check statemachine service tests bench

fmt: $(STAMP)
	$(BIN)/ruff format statemachine service tests bench
	$(BIN)/ruff check --fix statemachine service tests bench

typecheck: $(STAMP)
	$(BIN)/mypy

# The import contracts in pyproject.toml: which part may import which.
layers: $(STAMP)
	$(BIN)/lint-imports

# Everything CI checks besides the tests.
check: lint typecheck layers

# `make bench BENCH="ingest --quick"`: only some suites, or shorter runs.
bench: $(STAMP)
	$(BIN)/python -m bench $(BENCH)

docs: $(STAMP)
	$(BIN)/python -c "import pathlib; from statemachine.describe import markdown_table; \
	p = pathlib.Path('docs/architecture.md'); a, b = '<!-- state-table:start -->', '<!-- state-table:end -->'; \
	s = p.read_text(); p.write_text(s.split(a)[0] + a + '\n' + markdown_table() + '\n' + b + s.split(b)[1])"

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache
