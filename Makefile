# Everything runs from the virtualenv in .venv/; `make demo` and `make test` create it when missing.
PYTHON ?= python3.11
VENV := .venv
BIN := $(VENV)/bin
PY := $(BIN)/python
PORT ?= 8000

.PHONY: demo serve install install-dev test test-fast lint format migrate import worker training-worker beat bench browser-deps notebooks docker-smoke clean

$(BIN)/activate:
	@command -v $(PYTHON) >/dev/null || { echo "$(PYTHON) not found: install Python 3.11 or run 'make PYTHON=python3 ...'"; exit 1; }
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip

$(VENV)/.installed: requirements.txt requirements-web.txt $(BIN)/activate
	$(PY) -m pip install --quiet -r requirements.txt
	touch $@

$(VENV)/.installed-dev: requirements-dev.txt requirements.txt $(VENV)/.installed
	$(PY) -m pip install --quiet -r requirements-dev.txt
	touch $@

install: $(VENV)/.installed
install-dev: $(VENV)/.installed-dev

migrate: install
	$(PY) manage.py migrate --noinput

import: migrate
	$(PY) manage.py import_movielens data/ml-latest-small

## demo: set up on the embedded defaults (SQLite, embedded broker), import the bundled data,
## train a first recommender, create demo accounts, and serve with a worker and a scheduler.
demo: import
	$(PY) manage.py train base --if-missing
	$(PY) manage.py create_demo_users --port $(PORT)
	$(PY) manage.py collectstatic --noinput -v0
	PORT=$(PORT) bash scripts/run_all.sh

serve: install
	PORT=$(PORT) bash scripts/run_all.sh

worker: install
	$(BIN)/celery -A recsys_site worker -n default@%h -Q default --concurrency=2 -l info

training-worker: install
	$(BIN)/celery -A recsys_site worker -n training@%h -Q training --concurrency=1 --max-tasks-per-child=1 -l info

beat: install
	$(BIN)/celery -A recsys_site beat -l info

## browser-deps: Debian's Chromium for the Playwright browser tests (never `playwright install`).
browser-deps:
	@test -x /usr/bin/chromium || { apt-get update -qq && apt-get install -y -qq chromium >/dev/null; }

## test: the whole suite; DATABASE_URL and REDIS_URL, when set, point it at PostgreSQL and Redis.
test: install-dev browser-deps
	DB_CONN_MAX_AGE=0 $(PY) -m pytest

test-fast: install-dev
	DB_CONN_MAX_AGE=0 $(PY) -m pytest -m "not slow and not browser" --ignore=notebooks

## notebooks: open the analysis notebooks (notebooks/) in JupyterLab.
notebooks: install-dev
	$(BIN)/jupyter lab notebooks

lint: install-dev
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

format: install-dev
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

bench: install-dev
	$(PY) bench/bench_import.py
	$(PY) bench/bench_scoring.py

## docker-smoke: build the images, run the whole stack, train through it, check it over HTTP, remove it.
docker-smoke:
	bash scripts/docker_smoke.sh

clean:
	rm -rf var/ .pytest_cache
