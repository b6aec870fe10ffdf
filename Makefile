# Two commands on a fresh machine: `make demo` and `make test`. Both build .venv themselves.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
INSTALLED := $(VENV)/.installed
PYTEST_ARGS ?=
# The DynamoDB emulator the tests run (dynalite, pinned in tests/dynalite/package-lock.json).
DYNALITE := tests/dynalite
DYNALITE_INSTALLED := $(DYNALITE)/node_modules/.installed

.PHONY: demo dynalite test test-unit test-integration lint typecheck docs benchmarks clean

$(INSTALLED): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[redis,postgres,mysql,dynamodb,dashboard,metrics,test,lint,docs]'
	touch $(INSTALLED)

demo: $(INSTALLED)
	$(BIN)/python examples/demo/run.py

# `npm ci` again only when the lock changed; without npm the DynamoDB tests skip (fail in CI).
$(DYNALITE_INSTALLED): $(DYNALITE)/package.json $(DYNALITE)/package-lock.json
	@if command -v npm >/dev/null; then \
	  cd $(DYNALITE) && npm ci --no-audit --no-fund --loglevel=error && touch node_modules/.installed; \
	else echo "npm not found: the DynamoDB tests need Node.js >= 20 and npm"; fi

dynalite: $(DYNALITE_INSTALLED)

test: $(INSTALLED) $(DYNALITE_INSTALLED)
	$(BIN)/python -m pytest -n 2 --dist loadgroup --durations=20 $(PYTEST_ARGS)

test-unit: $(INSTALLED)
	$(BIN)/python -m pytest -n 2 tests/unit tests/contract -k "not contract or memory or sqlite" $(PYTEST_ARGS)

lint: $(INSTALLED)
	$(BIN)/ruff check celery_pyncette tests examples benchmarks
	$(BIN)/ruff format --check celery_pyncette

typecheck: $(INSTALLED)
	$(BIN)/mypy celery_pyncette

# The benchmark harness builds its own benchmarks/.venv (the peers live only there). ~25 min;
# BENCH_ARGS=--quick for a ~4 min development run.
BENCH_ARGS ?=
benchmarks:
	BENCH_COMMAND="make benchmarks $(BENCH_ARGS)" $(PYTHON) -m benchmarks $(BENCH_ARGS)

docs: $(INSTALLED)
	$(BIN)/mkdocs build --strict --site-dir build/site

clean:
	rm -rf $(VENV) $(DYNALITE)/node_modules .demo .pytest_cache .mypy_cache .ruff_cache build/site
