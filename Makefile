# The two commands: `make demo` and `make test`. Both set everything up first (system packages
# and TimescaleDB via infra/install.sh, the virtualenv from constraints.txt), idempotently.
SHELL := /bin/bash
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)

BINANCE_CAPTURES := \
	tests/data/binance_usdm/rest_exchangeInfo+config.cryptofeed.BINANCE_FUTURES.0.txt \
	tests/data/binance_usdm/ws_depth100ms+aggTrade+bookTicker+kline.cryptofeed.BINANCE_FUTURES.ws.1.0.txt \
	tests/data/binance_usdm/rest_depth_snapshot.cryptofeed.BINANCE_FUTURES.http.0.0.txt

.PHONY: setup system demo test bench lint lock

setup: system $(STAMP)

system:
	$(SUDO) bash infra/install.sh

$(STAMP): pyproject.toml constraints.txt
	[ -x $(BIN)/python ] || python3 -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q -c constraints.txt -e '.[dev]'
	touch $(STAMP)

demo: setup
	$(BIN)/ticklake up
	$(BIN)/ticklake db migrate
	$(BIN)/ticklake selfcheck
	$(BIN)/ticklake normalize binance-usdm $(BINANCE_CAPTURES) --out .ticklake/demo-offline --top-depth 10
	port=$$($(BIN)/python -c 'from ticklake.stack.ports import free_port; print(free_port())'); \
	$(BIN)/ticklake replay-server binance-usdm $(BINANCE_CAPTURES) --port $$port --speed 20 & server=$$!; \
	$(BIN)/python -c "from ticklake.stack.ports import wait_listening; assert wait_listening($$port, 30)"; \
	$(BIN)/ticklake run --venue binance-usdm --symbols SUSHIUSDT,AKROUSDT,KEEPUSDT,CTKUSDT \
	    --ws-url ws://127.0.0.1:$$port --rest-url http://127.0.0.1:$$port --duration 5; \
	status=$$?; kill $$server; exit $$status
	$(BIN)/ticklake pipelines run --from 2021-07-22 --to 2021-07-22
	$(BIN)/ticklake db retention --dry-run
	$(BIN)/ticklake status

test: setup
	$(BIN)/ruff check .
	$(BIN)/pytest

bench: setup
	$(BIN)/python -m benchmarks.bench_codec
	$(BIN)/python -m benchmarks.bench_normalize
	$(BIN)/python -m benchmarks.bench_okx
	$(BIN)/python -m benchmarks.bench_bybit
	$(BIN)/python -m benchmarks.bench_hyperliquid
	$(BIN)/python -m benchmarks.bench_sink
	$(BIN)/python -m benchmarks.bench_bars
	$(BIN)/python -m benchmarks.bench_query
	$(BIN)/python -m benchmarks.bench_compaction
	$(BIN)/python -m benchmarks.bench_ws

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/mypy normalize storage ticklake

# Refresh the pinned set after changing dependencies in pyproject.toml.
lock: $(STAMP)
	$(BIN)/python -m pip freeze --exclude-editable | grep -v '^ticklake' > constraints.txt
