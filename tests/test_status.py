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
    assert "Running workers: 1" in text.stdout
    assert "long" in text.stdout and "--arg x" in text.stdout
    assert "start" in text.stdout and "success" in text.stdout
    assert "Checklist keys: start" in text.stdout
    assert "fork server pid" in text.stdout and "ready" in text.stdout
    as_json = subprocess.run([*command, "--json"], capture_output=True, text=True, timeout=20)
    status = json.loads(as_json.stdout)
    [running] = status["running"]
    assert (
        running["name"] == "long" and running["args"] == ["--arg", "x"] and running["timeout"] == 60
    )
    assert status["recent messages"][-1]["source"] == "start"
    assert status["checklist keys"] == ["start"]


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
