# The two commands: `make demo` and `make test`. Both set everything up first (system packages
# and TimescaleDB via infra/install.sh, the virtualenv from constraints.txt), idempotently.
SHELL := /bin/bash
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)

.PHONY: setup system demo test bench lint lock

setup: system $(STAMP)

system:
	$(SUDO) bash infra/install.sh

$(STAMP): pyproject.toml setup.py normalize/_l2book.c constraints.txt
	[ -x $(BIN)/python ] || python3 -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q -c constraints.txt -e '.[dev]'
	touch $(STAMP)

# `ticklake demo` starts the stack, replays every venue's bundled captures through the live
# handlers, the bus and both sinks, runs the pipelines for those days and prints a report.
demo: setup
	$(BIN)/ticklake demo

# Two workers: most tests wait on servers and subprocesses. The modules that read the demo's stores
# share one worker (xdist_group "demo"), so the demo runs once.
test: setup lint
	$(BIN)/pytest -n 2 --dist loadgroup

bench: setup
	$(BIN)/python -m benchmarks.bench_codec
	$(BIN)/python -m benchmarks.bench_normalize
	$(BIN)/python -m benchmarks.bench_okx
	$(BIN)/python -m benchmarks.bench_bybit
	$(BIN)/python -m benchmarks.bench_hyperliquid
	$(BIN)/python -m benchmarks.bench_binance_spot
	$(BIN)/python -m benchmarks.bench_coinbase
	$(BIN)/python -m benchmarks.bench_deribit
	$(BIN)/python -m benchmarks.bench_bitmex
	$(BIN)/python -m benchmarks.bench_kraken
	$(BIN)/python -m benchmarks.bench_sink
	$(BIN)/python -m benchmarks.bench_bars
	$(BIN)/python -m benchmarks.bench_query
	$(BIN)/python -m benchmarks.bench_pg_read
	$(BIN)/python -m benchmarks.bench_compaction
	$(BIN)/python -m benchmarks.bench_ws

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/mypy normalize ingest storage pipelines ticklake

# Refresh the pinned set after changing dependencies in pyproject.toml.
lock: $(STAMP)
	$(BIN)/python -m pip freeze --exclude-editable | grep -v '^ticklake' > constraints.txt
