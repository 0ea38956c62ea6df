"""python -m nowcast.status against a running system."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
from conftest import wait_for


@pytest.mark.timeout(60)
def test_status_in_both_forms(system):
    system.worker_module("start")
    system.worker_module("long", "time.sleep(30)", timeout=60)
    system.after(
        "def after_start(msg, config, checklist):\n"
        "    return [NextWorker('long', ['--arg', 'x'])]\n"
        "def after_long(msg, config, checklist):\n    return []\n"
    )
    system.start()
    assert system.run_worker("start").returncode == 0
    wait_for(lambda: "launching NextWorker(module='long'" in system.log(), what="long launched")
    wait_for(lambda: "fork server (pid" in system.log(), what="the fork server ready")
    command = [sys.executable, "-m", "nowcast.status", str(system.config_file)]
    text = subprocess.run(command, capture_output=True, text=True, timeout=20)
    assert text.returncode == 0, text.stderr
    lines = text.stdout.splitlines()
    as_json = subprocess.run([*command, "--json"], capture_output=True, text=True, timeout=20)
    status = json.loads(as_json.stdout)
    [running] = status["running"]
    assert running["name"] == "long"
    assert running["args"] == ["--arg", "x"]
    assert running["timeout"] == 60
    assert running["host"] == "localhost"
    assert status["recent messages"][-1]["source"] == "start"
    assert status["recent messages"][-1]["type"] == "success"
    assert status["checklist keys"] == ["start"]
    manager = status["manager"]
    assert manager["pid"] == system.manager.pid
    assert manager["fork server"]["state"] == "ready"
    # the text form: the same facts, each in its own line and column
    assert lines[0] == f"manager pid {system.manager.pid}, config {system.config_file}"
    server_pid = manager["fork server"]["pid"]
    assert lines[1] == f"fork server pid {server_pid}: ready, workers start warm"
    assert lines[lines.index("Running workers: 1") + 1].split() == [
        "NAME", "ARGS", "HOST", "PID", "RUNNING", "FOR", "TRY", "TIMEOUT"
    ]  # fmt: skip
    row = lines[lines.index("Running workers: 1") + 2].split("  ")
    cells = [cell.strip() for cell in row if cell.strip()]
    assert cells[:4] == ["long", "--arg x", "localhost", str(running["pid"])]
    assert cells[5:] == ["1", "60s"]
    assert "Retries pending: 0" in lines
    assert "Race-condition groups waiting: 0" in lines
    recent = lines.index(f"Last {len(status['recent messages'])} messages:")
    assert lines[recent + 2].split()[2:] == ["start", "success"]
    assert lines[-1] == "Checklist keys: start"


@pytest.mark.timeout(60)
def test_status_without_a_manager_says_so_and_exits_1(system):
    system.start(manager=False)
    result = subprocess.run(
        [sys.executable, "-m", "nowcast.status", str(system.config_file), "--timeout", "0.5"],
        capture_output=True,
        text=True,
        timeout=20,
    )
    assert result.returncode == 1
    assert "no answer from the manager within 0.5 s" in result.stderr
