# One entry point for every routine job. `make demo` and `make test` do all the set-up themselves.
VENV ?= .venv
PY := $(VENV)/bin/python

.PHONY: setup demo test check fmt bench clean

setup:
	bash scripts/setup.sh

demo: setup
	$(VENV)/bin/warmcard demo

test: setup
	$(PY) -m pytest $(PYTEST_ARGS)

check: setup
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/ruff check .
	$(VENV)/bin/mypy .

fmt: setup
	$(VENV)/bin/ruff format .
	$(VENV)/bin/ruff check --fix .

bench: setup
	$(PY) bench/ingest_throughput.py

clean:
	rm -rf run .pytest_cache .mypy_cache .ruff_cache build *.egg-info
