# Euro Prospects: `make run` for a development server, `make test` for the checks.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
PORT ?= 8000
export PORT
# Links in emails point at the development server unless SITE_URL says otherwise.
SITE_URL ?= http://127.0.0.1:$(PORT)
export SITE_URL
# Tests use their own Redis database so a running `make run` worker never takes their tasks.
TEST_REDIS_URL ?= redis://127.0.0.1:6379/15

.PHONY: install install-dev run test lint typecheck migrations-check pytest ci clean

$(BIN)/python:
	$(PYTHON) -c 'import sys; sys.exit("Python 3.11 or newer is needed") if sys.version_info < (3, 11) else None'
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip

$(VENV)/.installed: requirements.txt $(BIN)/python
	$(BIN)/pip install --quiet -r requirements.txt
	touch $@

$(VENV)/.installed-dev: requirements.txt requirements-dev.txt $(BIN)/python
	$(BIN)/pip install --quiet -r requirements-dev.txt
	touch $(VENV)/.installed $@

install: $(VENV)/.installed

install-dev: $(VENV)/.installed-dev

run: install
	@mkdir -p var
	$(BIN)/python manage.py migrate --noinput
	$(BIN)/python manage.py load_demo
	@echo "Starting web on http://127.0.0.1:$(PORT)/ with a Celery worker and beat. Ctrl-C stops them all."
	@# Web and worker processes add up their metrics in one directory, emptied at each start.
	@rm -rf var/metrics && mkdir -p var/metrics
	@PROMETHEUS_MULTIPROC_DIR=$(CURDIR)/var/metrics bash scripts/with-redis.sh $(BIN)/honcho start -f Procfile

lint: install-dev
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

typecheck: install-dev
	$(BIN)/mypy .

migrations-check: install-dev
	$(BIN)/python manage.py makemigrations --check --dry-run

pytest: install-dev
	@mkdir -p var
	@# Like `make run`: a private Redis on TEST_REDIS_URL's port when nothing answers there.
	REDIS_URL=$(TEST_REDIS_URL) CELERY_BROKER_URL=$(TEST_REDIS_URL) bash scripts/with-redis.sh $(BIN)/pytest $(PYTEST_ARGS)

test: lint typecheck migrations-check pytest

ci:
	bash .ci/run

clean:
	rm -rf $(VENV) var staticfiles .mypy_cache .ruff_cache .pytest_cache

.PHONY: bench-web bench-web-publish
# Web benchmark (not part of `make test` or CI): needs PostgreSQL, Redis and wrk (apt-get install wrk).
bench-web: install
	$(BIN)/python bench/web.py

# The cached pages while an article is published every few seconds (bench/web.py --publish).
bench-web-publish: install
	$(BIN)/python bench/web.py --publish

# Each page's own cost, in one process without a server (bench/pages.py): for timing a change to a page.
.PHONY: bench-pages
bench-pages: install
	$(BIN)/python bench/pages.py

# Sending benchmark (needs PostgreSQL, Redis and Postfix's smtp-sink/smtp-source; see docs/performance.md).
BENCH_SEND_ARGS ?=
.PHONY: bench-send
bench-send: install
	@mkdir -p var
	$(BIN)/python bench/send.py $(BENCH_SEND_ARGS)
