# gascap developer commands. `make run` and `make test` are the README's quick start.
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
PY := $(VENV)/bin/python
SIZE ?= full
PEERS ?=
MINUTES ?= 30

.PHONY: run test test-fast lint format bench bench-pipeline bench-api chaos soak demo migrate clean smoke lock

$(VENV)/.installed: requirements.txt requirements-dev.txt
	$(PYTHON) -m venv $(VENV)
	$(VENV)/bin/pip install --quiet --upgrade pip
	$(VENV)/bin/pip install --quiet -r requirements-dev.txt
	touch $@

venv: $(VENV)/.installed

migrate: venv
	$(PY) manage.py migrate --noinput

# Web (port 8000), Celery worker, beat and the local PG&E sandbox (port 8443), in the
# foreground with interleaved logs; Ctrl-C stops them all.
run: venv
	$(PY) manage.py migrate --noinput
	$(PY) manage.py ensure_admin
	$(PY) manage.py run_prepare
	$(VENV)/bin/honcho start -f Procfile.dev

test: venv
	$(VENV)/bin/pytest

# Style, strict types over gascap/pge ([tool.mypy]) and the import direction between the
# packages ([tool.importlinter]), all configured in pyproject.toml.
lint: venv
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/mypy
	$(VENV)/bin/lint-imports

# The edit loop: the suite without the end-to-end, fuzz and service tiers (about a minute).
# `make test` stays the whole suite CI runs.
test-fast: venv
	$(VENV)/bin/pytest -q -x -m "not e2e and not postgres and not redis" --ignore=tests/fuzz

format: venv
	$(VENV)/bin/ruff check --fix .
	$(VENV)/bin/ruff format .

# Speed and memory of ESPI import against the bare streaming-parse floor (SIZE=small|full).
bench: venv
	$(PY) bench/espi_bench.py --size $(SIZE) $(if $(PEERS),--peers,)

# A day of SIZE customers end to end on PostgreSQL and Redis (DATABASE_URL, REDIS_URL):
# sandbox scale mode, gunicorn, two Celery workers, the daily Bulk request (docs/scale.md).
bench-pipeline: venv
	$(PY) bench/pipeline_bench.py --size $(if $(filter full small,$(SIZE)),10000,$(SIZE))

# Restarts and kills under load (bench/chaos): its own PostgreSQL and Redis on loopback, web,
# two workers, beat and the sandbox; Redis/PostgreSQL restarted and SIGKILLed, workers
# SIGKILLed, sandbox 503/slow/reset bursts. SIZE=ci: one fault of each kind (CI runs it).
chaos: venv
	$(PY) -m bench.chaos.run --size $(if $(filter ci,$(SIZE)),ci,full)

# The same stack at a steady rate for MINUTES with a fault every 3 minutes: RSS, open files
# and database sessions must stay flat after the first 5 minutes.
soak: venv
	$(PY) -m bench.chaos.run --soak-minutes $(MINUTES)

# The app API through Django's HTTP stack on the same data set (SIZE=small|full).
bench-api: venv
	$(PY) bench/api_bench.py --size $(SIZE)

# The whole job end to end on this machine: consent, notification, fetch, storage.
demo: venv
	$(PY) -m gascap.demo

# The docker compose deployment run as processes against PostgreSQL and Redis (DATABASE_URL,
# REDIS_URL) with Debian's nginx: schedules, health checks, proxy, admin (deploy/smoke.py).
smoke: venv
	$(PY) deploy/smoke.py

# requirements.lock (what the image installs): exact versions with hashes for Python 3.11.
lock: venv
	$(VENV)/bin/uv pip compile --universal --python-version 3.11 --generate-hashes \
		--custom-compile-command "make lock" --quiet requirements.txt -o requirements.lock

clean:
	rm -rf var/broker var/bench
