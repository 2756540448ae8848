# Lifecycle: the two commands are `make run` and `make test`.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
PORT ?= 8000

# The services tier's own databases: never the ones `make run` or production use.
TEST_DATABASE_URL ?= postgres://postgres@127.0.0.1:5432/lifecycle
TEST_REDIS_URL ?= redis://127.0.0.1:6379/14
TEST_CACHE_URL ?= redis://127.0.0.1:6379/15

.PHONY: run install test test-services test-browser lint format schema check-deploy bench clean

$(VENV)/.installed: requirements.txt requirements-dev.txt
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -r requirements-dev.txt
	touch $@

install: $(VENV)/.installed

## make run: set everything up and serve the app with demo data on 127.0.0.1:$(PORT)
run: install
	$(BIN)/python manage.py migrate --noinput
	$(BIN)/python manage.py seed_demo
	$(BIN)/python manage.py run --port $(PORT)

## make test: the fast tier (embedded SQLite, in-process tasks, in-memory channel layer)
test: install
	env -u DATABASE_URL -u REDIS_URL -u CACHE_URL $(BIN)/pytest -m "not services and not browser" -q

## make test-services: the whole suite on PostgreSQL and Redis, with a real worker and ASGI server
test-services: install
	DATABASE_URL=$(TEST_DATABASE_URL) REDIS_URL=$(TEST_REDIS_URL) CACHE_URL=$(TEST_CACHE_URL) \
		$(BIN)/pytest -m "not browser" -q --create-db

## make test-browser: Playwright driving Debian's Chromium against the real stack
test-browser: install
	env -u DATABASE_URL -u REDIS_URL -u CACHE_URL $(BIN)/pytest -m browser -q

lint: install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

format: install
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

schema: install
	$(BIN)/python manage.py spectacular --validate --fail-on-warn --file var/openapi.yaml

check-deploy: install
	DEBUG=0 SECRET_KEY=check-deploy-$$(date +%s)-not-a-real-key-0123456789abcdefghij \
		LIFECYCLE_ENCRYPTION_KEYS=$$($(BIN)/python -c 'from cryptography.fernet import Fernet; print(Fernet.generate_key().decode())') \
		LIFECYCLE_HASH_KEY=check-deploy-hash-key ALLOWED_HOSTS=lifecycle.example.com \
		$(BIN)/python manage.py check --deploy --fail-level WARNING

## make bench: the benchmarks; each prints its ratio against a baseline measured in the same run
BENCHMARKS := bench/promote.py bench/ws.py bench/gateway.py bench/analysis.py bench/routing.py
bench: install
	@for script in $(BENCHMARKS); do echo "== $$script"; $(BIN)/python $$script || exit 1; done

clean:
	rm -rf var .pytest_cache .ruff_cache
