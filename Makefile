# nowcast: the two commands a new user needs are `make demo` and `make test`.

PYTHON ?= python3.11
VENV := .venv
PY := $(VENV)/bin/python
export NOWCAST_ENV ?= $(CURDIR)/$(VENV)
export NOWCAST_LOGS ?= $(CURDIR)/logs
export NOWCAST_DATA ?= $(CURDIR)/data

.PHONY: demo run cycle status test bench bench-peers mutate lint venv compile clean

# the virtual environment, made and filled once (again when pyproject.toml changes)
$(VENV)/.installed: pyproject.toml
	@test -x $(PY) || $(PYTHON) -m venv $(VENV) || python3 -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[test,dev,web]'
	@touch $@

# compile ahead, so no process pays for it at start-up (even with PYTHONDONTWRITEBYTECODE)
compile: $(VENV)/.installed
	@$(PY) -m compileall -q nowcast nemo_nowcast workers _nowcast_path.py

venv: $(VENV)/.installed compile

## make demo: run the example system through one daily cycle under supervisord, then stop
## (make demo OUTAGE=rivers: the same, with a forcing source down, to see the failure path)
## (make demo SLURM=1: run_model as a SLURM batch job on a local single-node cluster)
demo: venv
	@scripts/demo.sh $(if $(SLURM),--slurm) $(if $(OUTAGE),--simulate-outage $(OUTAGE))

## make run: run the example system in the foreground; Ctrl-C stops supervisord and what
## it runs (workers still running finish; .venv/bin/nowcast stop config/nowcast.yaml stops them too)
run: venv
	@mkdir -p $(NOWCAST_LOGS) $(NOWCAST_DATA)
	@echo "supervisord in the foreground; in another shell:"
	@echo "  NOWCAST_LOGS=$(NOWCAST_LOGS) $(VENV)/bin/supervisorctl -c supervisord.ini status"
	@echo "  (it talks to supervisord through $(NOWCAST_LOGS)/supervisord.sock, mode 0700)"
	@echo "in another shell: make cycle (start today's cycle), make status"
	$(VENV)/bin/supervisord -n -c supervisord.ini

## make cycle: start a cycle for today in the system `make run` runs
cycle: venv
	$(PY) -m workers.prepare_run config/nowcast.yaml

## make status: what the running manager is doing
status: venv
	@$(PY) -m nowcast.status config/nowcast.yaml

## make test: the whole test suite
test: venv
	$(PY) -m pytest

## make bench: speed and memory figures, each next to its floor
bench: venv
	$(PY) benchmarks/run.py

## make bench-peers: the same workloads on nowcast and on Cylc 8 (installed, the first
## time, into benchmarks/.cache), and on NEMO_Nowcast when NEMO_NOWCAST_SRC names its
## source checkout (slow: tens of minutes; QUICK=1 for one run each)
bench-peers: venv
	$(PY) benchmarks/peers.py $(if $(QUICK),--quick)

$(VENV)/.mutation: $(VENV)/.installed
	$(PY) -m pip install --quiet -e '.[test,dev,mutation]'
	@touch $@

## make mutate: mutation testing of the modules that carry guarantees (slow: hours;
## docs/testing.md). MODULES="race state" for some; BUDGET: seconds at most per module
BUDGET ?= 3600
mutate: venv $(VENV)/.mutation
	nice -n 19 $(PY) scripts/mutate.py --budget $(BUDGET) $(MODULES)

lint: venv
	$(VENV)/bin/ruff check nowcast nemo_nowcast _nowcast_path.py tests workers benchmarks scripts

clean:
	rm -rf $(VENV) logs data .pytest_cache *.egg-info
