# The two commands a newcomer needs: `make run` and `make test`.
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: run test test-fast bench chaos lint compose-up asyncapi clean

$(STAMP): pyproject.toml
	@test -n "$(PYTHON)" || { echo "need Python 3.11 on PATH (or set PYTHON=/path/to/python3.11)"; exit 1; }
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip==26.3
	$(BIN)/pip install --quiet -e ".[test]"
	touch $(STAMP)

run: $(STAMP)  ## the whole system on the embedded broker and Postgres, in the foreground
	$(BIN)/warden up

test: $(STAMP)  ## the whole test suite (unit, integration, e2e) on the real embedded broker and Postgres
	$(BIN)/pytest -m "not slow"

test-fast: $(STAMP)  ## unit tests only
	$(BIN)/pytest tests/unit

chaos: $(STAMP)  ## long fault-injection runs
	$(BIN)/pytest -m slow tests/chaos

bench: $(STAMP)  ## benchmarks (never part of `make test`)
	$(BIN)/python -m bench

asyncapi: $(STAMP)  ## regenerate docs/asyncapi.yaml from the contract models
	$(BIN)/python -m warden.contract.asyncapi > docs/asyncapi.yaml

lint: $(STAMP)  ## static checks (ruff)
	$(BIN)/ruff check warden services tests bench

compose-up:  ## production-like stack on Docker (needs a Docker engine)
	docker compose -f deploy/compose/docker-compose.yml up -d

clean:
	rm -rf $(VENV) .warden .pytest_cache
