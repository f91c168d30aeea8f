# Setup is two commands: `make run` starts the service, `make test` runs the tests.
# Both create the virtual environment and install what they need first.

PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
INSTALLED := $(VENV)/.installed

.PHONY: run test lint bench install clean

$(INSTALLED): pyproject.toml scripts/install-system-packages
	scripts/install-system-packages
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --disable-pip-version-check -e '.[dev]'
	touch $@

install: $(INSTALLED)

run: $(INSTALLED)
	$(BIN)/python -m app.devstack

# Runs the suite on SQLite, then on PostgreSQL when WORKLANE_TEST_POSTGRES_URL is set.
test: $(INSTALLED)
	$(BIN)/python -m tests.legs

lint: $(INSTALLED)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy app worker.py worklane_client tests bench

bench: $(INSTALLED)
	$(BIN)/python -m bench.run

clean:
	rm -rf $(VENV) .mypy_cache .ruff_cache .pytest_cache
