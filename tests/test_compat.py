"""A NEMO_Nowcast system runs on nowcast with only its imports changed."""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import textwrap

import arrow
import pytest
from conftest import free_port, stop, wait_for

# The tutorial's next_workers module, with `nemo_nowcast` changed to `nowcast`,
# and after_sleep extended to launch awaken, as the tutorial's exercises suggest.
TUTORIAL_NEXT_WORKERS = '''
"""Example :py:mod:`next_workers` module."""
from nowcast import NextWorker


def after_sleep(msg, config, checklist):
    next_workers = {
        "crash": [],
        "failure": [],
        "success": [NextWorker("nowcast.workers.awaken")],
    }
    return next_workers[msg.type]


def after_awaken(msg, config, checklist):
    next_workers = {
        "crash": [],
        "failure": [],
        "success": [],
    }
    return next_workers[msg.type]
'''

TUTORIAL_CONFIG = """
# System status checklist file
checklist file: $(NOWCAST.ENV.NOWCAST_LOGS)/nowcast_checklist.yaml

# Python interpreter in environment with all dependencies installed
python: $(NOWCAST.ENV.NOWCAST_ENV)/bin/python

logging:
  version: 1
  disable_existing_loggers: False
  formatters:
    simple:
      format: '%(asctime)s %(levelname)s [%(name)s] %(message)s'
  handlers:
    console:
      class: logging.StreamHandler
      level: DEBUG
      formatter: simple
      stream: ext://sys.stdout
  root:
    level: DEBUG
    handlers:
     - console

zmq:
  host: localhost
  ports:
    manager: {manager}
    workers: {workers}

message registry:
  manager:
    ack: message acknowledged
    checklist cleared: system checklist cleared
    unregistered worker: ERROR - message received from unregistered worker
    unregistered message type: ERROR - unregistered message type received from worker
    no after_worker function: ERROR - after_worker function not found in next_workers module
  next workers module: next_workers
  workers:
    sleep:
      checklist key: sleepyhead
      success: sleep worker slept well
      failure: sleep worker slept badly
      crash: sleep worker crashed
    awaken:
      checklist key: awake
      success: awaken worker awoke
      failure: awaken worker failed to awake
      crash: awaken worker crashed
"""


@pytest.mark.timeout(60)
@pytest.mark.parametrize("package", ["nowcast", "nemo_nowcast"])
def test_tutorial_toy_system_runs_with_only_the_import_changed(tmp_path, package):
    # nemo_nowcast: the tutorial verbatim, its imports and commands included
    env_dir = os.path.dirname(os.path.dirname(sys.executable))
    env = {**os.environ, "NOWCAST_LOGS": str(tmp_path), "NOWCAST_ENV": env_dir}
    (tmp_path / "next_workers.py").write_text(
        TUTORIAL_NEXT_WORKERS.replace("from nowcast import", f"from {package} import").replace(
            '"nowcast.workers.awaken"', f'"{package}.workers.awaken"'
        )
    )
    config = tmp_path / "nowcast.yaml"
    config.write_text(TUTORIAL_CONFIG.format(manager=free_port(), workers=free_port()))
    procs = []
    try:
        for module in (f"{package}.message_broker", f"{package}.manager"):
            out = open(tmp_path / f"{module}.log", "wb")
            procs.append(
                subprocess.Popen(
                    [sys.executable, "-m", module, str(config)],
                    cwd=tmp_path,
                    env=env,
                    stdout=out,
                    stderr=subprocess.STDOUT,
                )
            )
        wait_for(
            lambda: "listening" in (tmp_path / f"{package}.manager.log").read_text(),
            what="manager",
        )
        result = subprocess.run(
            [sys.executable, "-m", f"{package}.workers.sleep", str(config), "--sleep-time", "0"],
            cwd=tmp_path,
            env=env,
            capture_output=True,
            text=True,
            timeout=30,
        )
        assert result.returncode == 0, result.stdout + result.stderr
        assert "received message from manager: (ack) message acknowledged" in result.stdout
        checklist = tmp_path / "nowcast_checklist.yaml"
        wait_for(lambda: checklist.exists() and "awake" in checklist.read_text(), what="awaken")
        import yaml

        assert yaml.safe_load(checklist.read_text()) == {
            "sleepyhead": {"sleep time": 0},
            "awake": {"awoke": True},
        }
    finally:
        for process in procs:
            stop(process)


def test_public_names_are_those_of_nemo_nowcast():
    import nowcast
    from nowcast import (
        CommandLineInterface,
        Config,
        Message,
        NextWorker,
        NowcastWorker,
        WorkerError,
        cli,
        config,
        errors,
        message,
        worker,
    )

    assert {
        "CommandLineInterface",
        "Config",
        "Message",
        "NextWorker",
        "NowcastWorker",
        "WorkerError",
    } <= set(nowcast.__all__)
    # each public name is the framework's own class, not a stand-in
    assert Config is config.Config
    assert Message is message.Message
    assert NowcastWorker is worker.NowcastWorker
    assert NextWorker is worker.NextWorker
    assert CommandLineInterface is cli.CommandLineInterface
    assert WorkerError is errors.WorkerError
    assert issubclass(WorkerError, errors.NowcastError)
    assert issubclass(WorkerError, Exception)
    next_worker = NextWorker("nowcast.workers.sleep")
    assert next_worker.args == []
    assert next_worker.host == "localhost"
    assert next_worker == NextWorker("nowcast.workers.sleep", [], "localhost")
    assert next_worker != NextWorker("nowcast.workers.sleep", ["--sleep-time", "1"])
    assert next_worker != NextWorker("nowcast.workers.sleep", host="hpc")


def test_command_line_interface_date_option():
    from nowcast import CommandLineInterface

    cli = CommandLineInterface("get_forcing", package="workers", description="get it")
    cli.build_parser()
    cli.add_date_option("--run-date", arrow.get("2026-11-24"), "Date to run for.")
    assert cli.parser.prog == "python -m workers.get_forcing"
    args = cli.parser.parse_args(["nowcast.yaml", "--run-date", "2026-03-08"])
    assert args.run_date == arrow.get("2026-03-08") and args.config_file == "nowcast.yaml"
    assert cli.parser.parse_args(["nowcast.yaml"]).run_date == arrow.get("2026-11-24")
    assert "Defaults to 2026-11-24" in " ".join(cli.parser.format_help().split())
    with pytest.raises(argparse.ArgumentTypeError):
        CommandLineInterface.arrow_date("24/11/2026")


def test_worker_package_appears_in_usage():
    code = textwrap.dedent(
        """
        from nowcast import NowcastWorker
        w = NowcastWorker("sleep", "a description", package="mysystem.workers")
        w.init_cli()
        print(w.cli.parser.prog)
        """
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "python -m mysystem.workers.sleep"
