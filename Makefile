# One entry point for every routine job. `make demo` and `make test` do all the set-up themselves.
VENV ?= .venv
PY := $(VENV)/bin/python

.PHONY: setup demo test test-fast check fmt bench bench-day fuzz clean

setup:
	bash scripts/setup.sh

demo: setup
	$(VENV)/bin/warmcard demo

test: setup
	$(PY) -m pytest $(PYTEST_ARGS)

# The unit layer: no Mosquitto, InfluxDB or browser (tests marked `servers` are left out).
test-fast: setup
	$(PY) -m pytest -m "not servers" $(PYTEST_ARGS)

check: setup
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/ruff check .
	$(VENV)/bin/mypy .
	$(VENV)/bin/lint-imports

fmt: setup
	$(VENV)/bin/ruff format .
	$(VENV)/bin/ruff check --fix .

bench: setup
	$(PY) -m bench.ingest_throughput

# A whole Dali day on the whole stack, played in 10 minutes (docs/benchmarks.md).
bench-day: setup
	$(PY) -m bench.dali_day

# Bad input must give a TapEvent or a named reason, never a crash or a stall (docs/protocol.md).
fuzz: setup
	$(PY) bench/fuzz_contract.py -n $(or $(FUZZ_N),100000) --seed $(or $(FUZZ_SEED),1)

clean:
	rm -rf run .pytest_cache .mypy_cache .ruff_cache build *.egg-info
