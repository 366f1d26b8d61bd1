# The two commands a newcomer needs: `make run` and `make test`.
#
# Every install is hash-checked against the lock files in requirements/: build.txt (pip, setuptools),
# test.txt (what `make` installs: the runtime, the embedded broker and PostgreSQL, the test tools),
# runtime.txt (what the production image installs), sbom.txt (the image's SBOM tool); then the
# project itself with --no-deps. After changing a pin in pyproject.toml, regenerate them with
#     make lock
# (uv, pinned below, resolves against PyPI and keeps every other pin as it was).
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
LOCK_TOOL := uv==0.13.8
LOCK_VENV := .venv-lock
COMPILE = $(LOCK_VENV)/bin/uv pip compile --quiet --universal --python-version 3.11 --generate-hashes \
          --custom-compile-command "make lock"

.PHONY: run test test-fast bench chaos lint compose-up asyncapi lock clean

$(STAMP): pyproject.toml requirements/build.txt requirements/test.txt
	@test -n "$(PYTHON)" || { echo "need Python 3.11 on PATH (or set PYTHON=/path/to/python3.11)"; exit 1; }
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --require-hashes -r requirements/build.txt
	$(BIN)/pip install --quiet --require-hashes -r requirements/test.txt
	$(BIN)/pip install --quiet --no-deps --no-build-isolation -e .
	$(BIN)/pip check  # a pin in pyproject.toml missing from the locks stops here: `make lock` (a stale .venv: `make clean`)
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

lock:  ## regenerate the hashed lock files in requirements/ from pyproject.toml (after changing a pin; needs PyPI)
	@test -n "$(PYTHON)" || { echo "need Python 3.11 on PATH (or set PYTHON=/path/to/python3.11)"; exit 1; }
	test -x $(LOCK_VENV)/bin/pip || $(PYTHON) -m venv $(LOCK_VENV)
	$(LOCK_VENV)/bin/pip install --quiet $(LOCK_TOOL)
	$(COMPILE) pyproject.toml --extra embedded --extra test -o requirements/test.txt
	$(COMPILE) pyproject.toml --constraint requirements/test.txt -o requirements/runtime.txt
	$(COMPILE) requirements/build.in -o requirements/build.txt
	$(COMPILE) requirements/sbom.in -o requirements/sbom.txt

compose-up:  ## production-like stack on Docker (needs a Docker engine)
	docker compose -f deploy/compose/docker-compose.yml up -d

clean:
	rm -rf $(VENV) $(LOCK_VENV) .warden .pytest_cache
