# Every target creates .venv and installs the project on first use, so `make run` and `make test`
# work on a fresh machine with nothing installed by hand.
VENV    := .venv
BIN     := $(VENV)/bin
PY      := $(BIN)/python
STAMP   := $(VENV)/.installed-stamp
PYTHON  ?= python3
export DAGSTER_HOME ?= $(CURDIR)/.dagster
DEMO_ENV := $(or $(ORDERLAKE_DATA_DIR),data)/demo/demo.env

.PHONY: run test test-unit ui lint bench install clean schema scale-demo test-scaled

$(STAMP): pyproject.toml
	@echo "make: installing orderlake into $(VENV) (first time only, or after pyproject.toml changed)"
	@test -x $(PY) || { echo "make:   creating the virtualenv with $(PYTHON)"; $(PYTHON) -m venv $(VENV); }
	@echo "make:   upgrading pip"
	@$(BIN)/pip install --quiet --upgrade pip
	@$(BIN)/pip uninstall --quiet --yes duckdb-engine  # older installs had it; it claims duckdb:// like the bi dialect
	@echo "make:   installing dagster, duckdb, pyarrow and the test, benchmark, BI, object-storage and Celery extras (a few minutes on a fresh machine)"
	@$(BIN)/pip install --quiet -e '.[dev,bench,bi,scale,celery]'
	@touch $(STAMP)
	@echo "make: installed"

install: $(STAMP)

$(DAGSTER_HOME)/dagster.yaml: deploy/dagster.yaml
	mkdir -p $(DAGSTER_HOME)
	cp deploy/dagster.yaml $(DAGSTER_HOME)/dagster.yaml

## make run: the whole pipeline on the built-in sandbox exchange (no keys, no network)
run: $(STAMP) $(DAGSTER_HOME)/dagster.yaml
	$(BIN)/orderlake demo

## make test [TEST_WORKERS=n]: lint, Dagster definitions check, unit and integration tests, one test file per worker
## process (pytest-xdist; default: one per core, TEST_WORKERS=0 for a single process), in collection order
test: $(STAMP) $(DAGSTER_HOME)/dagster.yaml
	$(BIN)/ruff check .
	$(BIN)/dagster definitions validate -w workspace.yaml
	$(BIN)/pytest -n $(or $(TEST_WORKERS),logical) --dist loadfile --no-loadscope-reorder

## make ui: the Dagster UI (schedules, sensors, assets) on http://127.0.0.1:3000
## make test-unit: the bottom rung only (no sockets, no sandbox), for a quick loop
test-unit: $(STAMP)
	$(BIN)/pytest tests/unit -q

# Without a key configured, the demo of `make run` (data/demo/demo.env: its data dir, start date and instance).
# exec: SIGINT and SIGTERM reach `orderlake ui`, which stops dagster dev and everything it started.
ui: $(STAMP) $(DAGSTER_HOME)/dagster.yaml
	@if [ -z "$$BINANCE_API_KEY$$BINANCE_PRIVATE_KEY_FILE" ] && [ -f $(DEMO_ENV) ]; then \
		echo "make ui: the demo of make run ($(DEMO_ENV)); set BINANCE_API_KEY to see your account"; \
		set -a; . "$(abspath $(DEMO_ENV))"; set +a; fi; \
	exec $(BIN)/orderlake ui

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

## make schema: regenerate docs/schema.md (every table and view column) after a schema or view change
schema: $(STAMP)
	$(BIN)/orderlake schema --output docs/schema.md

## make bench [QUICK=1] [POSTGRES_URL=...]: side-by-side benchmarks, written to bench/results.md (P5 on PostgreSQL
## too with a server URL, e.g. `eval "$$(deploy/services.sh start)"; make bench POSTGRES_URL=$$ORDERLAKE_TEST_POSTGRES_URL`)
bench: $(STAMP)
	$(PY) -m bench $(if $(QUICK),--quick,) $(if $(POSTGRES_URL),--postgres-url '$(POSTGRES_URL)',)

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache

## make scale-demo [N=3] [WORKERS=2]: N sandbox accounts backfilled in parallel on Celery workers, Dagster on
## PostgreSQL, the shared budget and the broker on loopback services (deploy/services.sh); README, Deploying
scale-demo: $(STAMP)
	$(BIN)/orderlake scale-demo --accounts $(or $(N),3) --workers $(or $(WORKERS),2)

## make test-scaled [TEST_WORKERS=n] [ARGS=...]: the whole suite (tests/, slow included) with every lake on the
## loopback S3 server, the budget and Dagster's runs and events in PostgreSQL, in the test and in the processes it
## starts (tests/support/scaled.py; starts deploy/services.sh's servers if they are down), one test file per worker
## like make test, each test's hang ceiling 900 s (S3 and PostgreSQL cost each test more). Not the scale demo: it
## brings its own S3 lake and PostgreSQL, and runs in make test. Not in CI (docs/design/scale.md).
test-scaled: $(STAMP)
	eval "$$(deploy/services.sh start)" && ORDERLAKE_TEST_SERVICES=required \
		$(PY) -m pytest -p tests.support.scaled -n $(or $(TEST_WORKERS),logical) --dist loadfile --no-loadscope-reorder \
		--timeout=900 \
		$(or $(ARGS),tests --ignore=tests/integration/test_scale_demo.py) -q
