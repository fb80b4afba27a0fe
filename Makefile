# Keygate — `make run` to start, `make test` to run the whole suite.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python

.PHONY: run test test-fast mutation lint bench bench-quick clean

$(VENV)/.installed: requirements.txt
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --disable-pip-version-check -r requirements.txt
	@touch $@

$(VENV)/.dev-installed: $(VENV)/.installed requirements-dev.txt
	$(PY) -m pip install -q --disable-pip-version-check -r requirements-dev.txt
	@touch $@

## run: install, migrate, create the operator account on first run, serve on http://$HOST:$PORT
run: $(VENV)/.installed
	@$(PY) scripts/bootstrap_env.py
	@$(PY) manage.py migrate --noinput -v0
	@$(PY) manage.py collectstatic --noinput -v0
	@$(PY) manage.py setup_operator
	@$(PY) -m config.serve

## test: the whole suite (installs Chromium, PostgreSQL and Redis from Debian packages when missing):
##   1. everything on SQLite (multi-process tests on the private PostgreSQL + Redis),
##   2. the database-facing tests again with DATABASE_URL/REDIS_URL on PostgreSQL + Redis.
test: $(VENV)/.dev-installed
	@bash scripts/install_system_deps.sh
	@bash scripts/services.sh start
	$(PY) -m pytest
	eval "$$(bash scripts/services.sh env)" && $(PY) -m pytest -p no:cacheprovider \
		-m "not live and not browser and not multi" tests/keys tests/gateway tests/limits tests/security

## test-fast: unit tests only (no live servers, browser, PostgreSQL or Redis)
test-fast: $(VENV)/.dev-installed
	$(PY) -m pytest -m "not live and not browser and not multi"

## mutation: mutmut on the security-critical modules (setup.cfg [mutmut] only_mutate, one line each) against the
##   fast suite; prints killed / survived / total per module and every survivor. Slow, so not in `make test` / CI.
##   Start Redis first (`bash scripts/services.sh start`): a team-limit test kills one mutant only on the Redis store.
MUTATION_JOBS ?= 2
mutation: $(VENV)/.dev-installed
	rm -rf mutants && mkdir mutants
	@echo "mutmut run (log: mutants/run.log)…"
	@time $(VENV)/bin/mutmut run --max-children $(MUTATION_JOBS) > mutants/run.log 2>&1 \
		|| { tail -c 3000 mutants/run.log; exit 1; }
	$(PY) scripts/mutation_report.py $(MUTATION_ARGS)

lint: $(VENV)/.dev-installed
	$(VENV)/bin/ruff check . && $(VENV)/bin/ruff format --check .

## bench: the DESIGN §6 figures, side by side with a raw-ASGI floor and LiteLLM (bench/README.md)
bench: $(VENV)/.installed
	@bash scripts/install_system_deps.sh
	-@bash bench/litellm_setup.sh
	$(PY) bench/run.py $(BENCH_ARGS)

bench-quick:
	@$(MAKE) bench BENCH_ARGS=--quick

clean:
	rm -rf $(VENV) staticfiles .pytest_cache mutants
