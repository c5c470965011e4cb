# evhub: `make run` starts the whole hub with demo data; `make test` runs the suite on PostgreSQL and Redis.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
PORT ?= 8000
export PORT

.PHONY: run test test-smoke bench install install-dev migrate demo services-stop clean help

help:
	@echo "make run        install, migrate, load demo data, start web + worker + beat + simulated cars on http://127.0.0.1:$(PORT)"
	@echo "make test       run the whole test suite on private PostgreSQL and Redis (installed if missing)"
	@echo "make bench      run the benchmarks in bench/"
	@echo "make clean      remove var/ (database, files, broker) and the virtual environment"

$(VENV)/bin/python:
	@$(PYTHON) -m venv $(VENV) 2>/dev/null || { \
	  echo "python3-venv is missing: installing it with apt-get"; \
	  . scripts/apt.sh && apt_install python3-venv >/dev/null; \
	  rm -rf $(VENV); $(PYTHON) -m venv $(VENV); }
	@$(PY) -m pip install -q --upgrade pip

$(VENV)/.installed: requirements.txt $(VENV)/bin/python
	$(PY) -m pip install -q -r requirements.txt
	@touch $@

$(VENV)/.installed-dev: requirements-dev.txt $(VENV)/.installed
	$(PY) -m pip install -q -r requirements-dev.txt
	@touch $@

install: $(VENV)/.installed

install-dev: $(VENV)/.installed-dev

migrate: install
	$(PY) manage.py migrate --noinput

demo: migrate
	$(PY) manage.py demo_load

# The demo may connect to another hub on this machine (two `make run`s on two ports): loopback allowed.
run: export EVHUB_OCPI_ALLOWED_NETWORKS ?= 127.0.0.0/8,::1/128
# Every process gives out the web's address (honcho gives each its own PORT), and `manage.py ocpi_invite`
# in another shell reads it from var/ (config/public_url.py).
run: export EVHUB_BASE_URL ?= http://127.0.0.1:$(PORT)
# GraphiQL completes queries from the schema: introspection on for the demo (off by default elsewhere).
run: export EVHUB_GRAPHQL_INTROSPECTION ?= true
run: demo
	$(PY) manage.py collectstatic --noinput -v0
	@mkdir -p "$${EVHUB_VAR_DIR:-var}" && echo "$$EVHUB_BASE_URL" > "$${EVHUB_VAR_DIR:-var}/base_url"
	@echo "Starting web + worker + beat + simulated cars on http://127.0.0.1:$(PORT)  (Ctrl-C stops them all)"
	PATH="$(CURDIR)/$(VENV)/bin:$$PATH" $(VENV)/bin/honcho -f Procfile start -p $(PORT) web worker beat simulator

test: install-dev
	scripts/test.sh

test-smoke: install-dev
	scripts/test.sh --smoke-only

bench: install-dev
	scripts/bench.sh

services-stop:
	scripts/services.sh stop

clean:
	-scripts/services.sh stop
	rm -rf var $(VENV)
