# Arena: `make run` to try it, `make test` to check it. Python 3.11+ is all a
# fresh machine needs; PostgreSQL and Redis are used when DATABASE_URL and
# REDIS_URL are set.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
PORT ?= 8000
STAMP := $(VENV)/.requirements-installed
# DEBUG is off unless set (arena/project/settings.py); a development arena sets it.
DEV := DEBUG=$${DEBUG:-true}

.PHONY: run test venv migrate demo lint clean

$(STAMP): requirements.txt
	@$(PYTHON) -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else "Arena needs Python 3.11 or newer")'
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --disable-pip-version-check -r requirements.txt
	@touch $(STAMP)

venv: $(STAMP)

migrate: venv
	$(DEV) $(PY) manage.py migrate --noinput

demo: migrate
	$(DEV) $(PY) manage.py load_demo

run: demo
	$(DEV) PORT=$(PORT) $(PY) manage.py run_arena

# The dependency direction (.importlinter), then ruff's lint and format checks.
lint: venv
	$(VENV)/bin/lint-imports
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

test: venv
	ARENA_VAR_DIR=$${ARENA_VAR_DIR:-$(CURDIR)/var/test} $(PY) -m pytest $(PYTEST_ARGS)

clean:
	rm -rf var staticfiles test-artifacts
