"""The ``nowcast`` command, and every command's help text."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import PY

from nowcast import __version__
from nowcast.command import COMMANDS

ROOT = Path(__file__).resolve().parent.parent


def run(*args: str, cwd: Path = ROOT, **kwargs) -> subprocess.CompletedProcess:
    return subprocess.run(
        [PY, *args], cwd=cwd, capture_output=True, text=True, timeout=60, **kwargs
    )


def test_version():
    result = run("-m", "nowcast", "--version")
    assert result.returncode == 0
    assert result.stdout == f"nowcast {__version__}\n"


def test_the_console_script_is_installed():
    script = Path(sys.executable).parent / "nowcast"
    result = subprocess.run([script, "--version"], capture_output=True, text=True, timeout=60)
    assert result.stdout == f"nowcast {__version__}\n"


@pytest.mark.parametrize("args", [["bogus"], ["statsu", "config.yaml"], []])
def test_an_unknown_or_missing_command_exits_2_with_the_list(args):
    result = run("-m", "nowcast", *args)
    assert result.returncode == 2
    listing = result.stdout + result.stderr
    for name in COMMANDS:
        assert f"  {name} " in listing
    if args:
        assert f"nowcast: unknown command {args[0]!r}" in result.stderr


def plain(text: str) -> None:
    """Help for the terminal: one usage line, no reST markup."""
    assert text.count("usage:") == 1, text
    assert "Usage:" not in text and "``" not in text and "::" not in text, text
    assert "tutorial" not in text, text


@pytest.mark.parametrize("name", [n for n in COMMANDS if n != "run"])
def test_every_command_has_plain_help(name):
    result = run("-m", "nowcast", name, "--help")
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith(f"usage: nowcast {name} ")
    plain(result.stdout)


MODULES = [
    "nowcast.manager",
    "nowcast.message_broker",
    "nowcast.scheduler",
    "nowcast.log_aggregator",
    "nowcast.status",
    "nowcast.check",
    "nowcast.keys",
    "nowcast.workers.sleep",
    "nowcast.workers.awaken",
    "nowcast.workers.clear_checklist",
    "nowcast.workers.rotate_logs",
    "workers.prepare_run",
    "workers.get_weather",
    "workers.get_rivers",
    "workers.run_model",
    "workers.make_plots",
]


@pytest.mark.parametrize("module", MODULES)
def test_python_m_forms_keep_their_names_and_have_plain_help(module):
    result = run("-m", module, "--help")
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith(f"usage: python -m {module} ")
    plain(result.stdout)


def test_nowcast_run_help_and_an_unknown_worker():
    result = run("-m", "nowcast", "run", "--help")
    assert result.returncode == 0 and result.stdout.startswith("usage: nowcast run WORKER")
    missing = run("-m", "nowcast", "run", "workers.nothing_here", "config.yaml")
    assert missing.returncode == 2
    assert missing.stderr.startswith("nowcast run: no worker module 'workers.nothing_here'")
    assert "Traceback" not in missing.stderr


@pytest.mark.timeout(60)
def test_nowcast_run_runs_a_worker_as_python_m_does(system):
    system.worker_module("ok", "return {'argv': sys.argv[1:], 'main': __name__}")
    system.after("def after_ok(msg, config, checklist):\n    return []\n")
    system.start()
    result = run(
        "-m", "nowcast", "run", "ok", str(system.config_file), "--arg", "x", cwd=system.dir
    )
    assert result.returncode == 0, result.stderr
    assert system.checklist()["ok"] == {
        "argv": [str(system.config_file), "--arg", "x"],
        "main": "__main__",
    }


def closed_pipe_run(*args: str, cwd: Path = ROOT) -> subprocess.CompletedProcess:
    """Run with standard output a pipe nobody reads any more (``| head`` after it
    has read its lines)."""
    read, write = os.pipe()
    os.close(read)
    try:
        return subprocess.run(
            [PY, *args], cwd=cwd, stdout=write, stderr=subprocess.PIPE, text=True, timeout=60
        )
    finally:
        os.close(write)


def test_a_closed_pipe_is_no_traceback():
    result = closed_pipe_run("-m", "nowcast", "--help")
    assert "Traceback" not in result.stderr and "BrokenPipeError" not in result.stderr


@pytest.mark.timeout(60)
def test_status_into_a_closed_pipe_is_no_traceback(system):
    system.start()
    for args in (["-m", "nowcast", "status"], ["-m", "nowcast.status"]):
        result = closed_pipe_run(*args, str(system.config_file), "--json", cwd=system.dir)
        assert result.returncode == 1
        assert "Traceback" not in result.stderr and "BrokenPipeError" not in result.stderr
