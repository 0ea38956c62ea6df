# nowcast: the two commands a new user needs are `make demo` and `make test`.

PYTHON ?= python3.11
VENV := .venv
PY := $(VENV)/bin/python
export NOWCAST_LOGS ?= $(CURDIR)/logs

.PHONY: demo test bench run lint venv clean

$(VENV)/.installed: pyproject.toml
	@test -x $(PY) || $(PYTHON) -m venv $(VENV) || python3 -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[test,dev]'
	@touch $@

venv: $(VENV)/.installed

test: venv
	$(PY) -m pytest

lint: venv
	$(VENV)/bin/ruff check nowcast tests workers benchmarks

clean:
	rm -rf $(VENV) logs .pytest_cache *.egg-info
