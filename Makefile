# nowcast: the two commands a new user needs are `make demo` and `make test`.

PYTHON ?= python3.11
VENV := .venv
PY := $(VENV)/bin/python
export NOWCAST_ENV ?= $(CURDIR)/$(VENV)
export NOWCAST_LOGS ?= $(CURDIR)/logs
export NOWCAST_DATA ?= $(CURDIR)/data

.PHONY: demo run test bench lint venv compile clean

# the virtual environment, made and filled once (again when pyproject.toml changes)
$(VENV)/.installed: pyproject.toml
	@test -x $(PY) || $(PYTHON) -m venv $(VENV) || python3 -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[test,dev]' --config-settings editable_mode=compat
	@touch $@

# compile ahead, so no process pays for it at start-up (even with PYTHONDONTWRITEBYTECODE)
compile: $(VENV)/.installed
	@$(PY) -m compileall -q nowcast workers

venv: $(VENV)/.installed compile

## make demo: run the example system through one daily cycle under supervisord, then stop
demo: venv
	@scripts/demo.sh

## make run: run the example system in the foreground; Ctrl-C stops all of it
run: venv
	@mkdir -p $(NOWCAST_LOGS) $(NOWCAST_DATA)
	@echo "supervisord in the foreground; in another shell: supervisorctl -c supervisord.ini status"
	@echo "start a cycle with: $(PY) -m workers.prepare_run config/nowcast.yaml"
	$(VENV)/bin/supervisord -n -c supervisord.ini

## make test: the whole test suite
test: venv
	$(PY) -m pytest

## make bench: speed and memory figures, each next to its floor
bench: venv
	$(PY) benchmarks/run.py

lint: venv
	$(VENV)/bin/ruff check nowcast tests workers benchmarks scripts

clean:
	rm -rf $(VENV) logs data .pytest_cache *.egg-info
