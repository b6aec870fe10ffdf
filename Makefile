# Two commands on a fresh machine: `make demo` and `make test`. Both build .venv themselves.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
INSTALLED := $(VENV)/.installed
PYTEST_ARGS ?=
# The DynamoDB emulator the tests run (dynalite, pinned in tests/dynalite/package-lock.json).
DYNALITE := tests/dynalite
DYNALITE_INSTALLED := $(DYNALITE)/node_modules/.installed

.PHONY: demo dynalite test test-oldest test-unit test-integration lint typecheck docs benchmarks clean

$(INSTALLED): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[redis,postgres,mysql,dynamodb,dashboard,metrics,otel,test,lint,docs]'
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

# The unit and contract suites (memory, SQLite, Redis) and the Redis store tests on the oldest
# celery, kombu and redis that pyproject.toml claims (.ci/floors.py reads the floors).
OLDEST := .venv-oldest
test-oldest:
	$(PYTHON) -m venv $(OLDEST)
	$(OLDEST)/bin/python -m pip install --quiet --upgrade pip
	$(OLDEST)/bin/python -m pip install --quiet $$($(PYTHON) .ci/floors.py) -e '.[redis,postgres,mysql,dynamodb,dashboard,metrics,test]'
	$(OLDEST)/bin/python -c "import celery, kombu, redis; print('oldest:', celery.__version__, kombu.__version__, redis.__version__)"
	$(OLDEST)/bin/python -m pytest -n 2 -p no:cacheprovider tests/unit tests/contract tests/stores/test_redis_scripts.py tests/stores/test_redis_claim_ahead.py tests/stores/test_redis_failures.py tests/stores/test_redis_quarantine.py -k "not contract or memory or sqlite or redis" $(PYTEST_ARGS)

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
	rm -rf $(VENV) $(OLDEST) $(DYNALITE)/node_modules .demo .pytest_cache .mypy_cache .ruff_cache build/site
