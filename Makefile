# Two commands set everything up: `make demo` and `make test`. Both install into .venv first.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
UV_VERSION := 0.13.8
export PREFECT_SERVER_ANALYTICS_ENABLED ?= false
export DO_NOT_TRACK ?= 1
export PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS ?= 120

.PHONY: install demo lint test bench ui-shots lock clean

install: $(VENV)/.installed

# Reinstall only when the lock or the project metadata changes. --compile-bytecode: with
# PYTHONDONTWRITEBYTECODE set (as on these machines) nothing is ever cached otherwise, and every
# start re-parses Prefect & co. from source (import prefect: 6.9 s cold vs 1.8 s compiled).
$(VENV)/.installed: requirements.lock pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check uv==$(UV_VERSION)
	$(BIN)/uv pip install --quiet --compile-bytecode --python $(BIN)/python -r requirements.lock
	$(BIN)/uv pip install --quiet --python $(BIN)/python --no-deps -e .
	$(BIN)/python -m compileall -q flows pipeline crawler extractors warehouse outcomes demo
	touch $@

demo: install
	$(BIN)/sieve demo

# House rules, before the tests (and so in .ci/run): ruff lints the packages, tests and bench; the packages
# are ruff-formatted (tests and bench are not: long literal pages); mypy checks the packages ([tool.mypy]).
LINTED := flows pipeline crawler extractors warehouse outcomes demo
lint: install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check $(LINTED)
	$(BIN)/mypy

# Two pytest workers, a test file each at a time (module fixtures stay in one process): most tests wait on
# loopback servers and child processes. On two cores: 304-311 s with two workers, 294 s with three (by then
# the suite is CPU-bound: 450 CPU-s, most of it in the Prefect servers and processes the tests start).
PYTEST_WORKERS ?= 2
test: lint
	$(BIN)/python -m pytest -n $(PYTEST_WORKERS) --dist loadfile

# The benchmark tools (Scrapy, py-spy, pyinstrument) are pinned in bench/requirements.lock, compiled against
# requirements.lock so nothing the project runs on changes: regenerate it with the command in its header.
# The crawl race alone: make bench BENCH_ARGS="--only race"
BENCH_ARGS ?=
bench: install
	$(BIN)/uv pip install --quiet --python $(BIN)/python -r bench/requirements.lock
	$(BIN)/python -m bench.run_all $(BENCH_ARGS)

# Pictures of the Prefect UI that `sieve serve` starts (docs/ui/*.png, described in docs/orchestration.md).
# Needs Debian's chromium; installed here when missing. Not part of `make test`.
ui-shots: install
	test -x /usr/bin/chromium || (apt-get update && apt-get install -y chromium)
	$(BIN)/python docs/ui_shots.py

# Regenerate the lock after editing dependencies in pyproject.toml.
lock: install
	$(BIN)/uv pip compile pyproject.toml --extra dev --extra dask --python-version 3.11 -o requirements.lock

clean:
	rm -rf $(VENV) data .pytest_cache
