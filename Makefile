# The two set-up commands for a fresh machine: `make run` and `make test`.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
DB     ?= sqlite:///var/alarmdesk.db
HOST   ?= 127.0.0.1
PORT   ?= 8000
RATE   ?= 2

.PHONY: run test install lint bench clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

# Installs alarmdesk with its test and lint tools (PEP 735 groups, read by scripts/dependency_group.py).
install: $(BIN)/python
	$(BIN)/python -m pip install --quiet -e . $$($(BIN)/python scripts/dependency_group.py dev)
	@# dc09-spt, a DC-09 dialler we did not write, tests the receiver. It declares pycrypto,
	@# which no longer builds; pycryptodome (test group) provides the same Crypto module.
	$(BIN)/python -m pip install --quiet --no-deps dc09-spt==0.0.4

## Installs alarmdesk and runs it with the demo city on SQLite, fed by the simulator.
run: install
	$(BIN)/alarmdesk db upgrade --database-url $(DB)
	$(BIN)/alarmdesk demo load --database-url $(DB)
	@echo "alarmdesk on http://$(HOST):$(PORT) — API docs at /api/docs, live stream at /api/v1/stream"
	@$(BIN)/alarmdesk serve --database-url $(DB) --host $(HOST) --port $(PORT) & server=$$!; \
	  trap 'kill $$server 2>/dev/null; wait $$server' INT TERM EXIT; \
	  $(BIN)/python scripts/wait_http.py http://$(HOST):$(PORT)/api/v1/health && \
	  $(BIN)/alarmdesk simulate --url http://$(HOST):$(PORT) --rate $(RATE) --duration 0 \
	    --token-file var/demo-intake-token || true

## Installs alarmdesk and runs the whole test suite.
test: install
	$(BIN)/ruff check src tests bench scripts
	$(BIN)/ruff format --check src tests bench scripts
	$(BIN)/mypy
	$(BIN)/lint-imports --no-cache
	$(BIN)/pytest

bench: install
	$(BIN)/python bench/ingest.py

clean:
	rm -rf $(VENV) var .pytest_cache .mypy_cache .ruff_cache
