# nowcast: the two commands a new user needs are `make demo` and `make test`.

PYTHON ?= python3.11
VENV := .venv
PY := $(VENV)/bin/python
export NOWCAST_LOGS ?= $(CURDIR)/logs

.PHONY: demo test bench run lint venv compile clean

$(VENV)/.installed: pyproject.toml
	@test -x $(PY) || $(PYTHON) -m venv $(VENV) || python3 -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[test,dev]' --config-settings editable_mode=compat
	@touch $@

# compile ahead, so no process pays for it at start-up (even with PYTHONDONTWRITEBYTECODE)
compile: $(VENV)/.installed
	@$(PY) -m compileall -q nowcast

venv: $(VENV)/.installed compile

test: venv
	$(PY) -m pytest

lint: venv
	$(VENV)/bin/ruff check nowcast tests workers benchmarks

clean:
	rm -rf $(VENV) logs .pytest_cache *.egg-info
