"""``nowcast ps`` and ``nowcast stop``: what of a system runs, and stopping all of it."""

from __future__ import annotations

import json
import os
import subprocess

import pytest
from conftest import PY, wait_for


def nowcast(system, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [PY, "-m", "nowcast", *args],
        cwd=system.dir,
        capture_output=True,
        text=True,
        timeout=90,
    )


def alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


@pytest.mark.timeout(90)
def test_stop_ends_everything_and_the_next_manager_does_not_call_it_a_crash(system):
    system.worker_module("start")
    system.worker_module("slow", "time.sleep(120)\nreturn {}")
    system.after(
        """
        def after_start(msg, config, checklist):
            return [NextWorker("slow")]

        def after_slow(msg, config, checklist):
            open("after.log", "a").write(msg.type + "\\n")
            return []
        """
    )
    system.start()
    by_hand = system.launch_worker("slow")  # an operator's run, outside the manager
    assert system.run_worker("start").returncode == 0
    wait_for(lambda: "launching NextWorker(module='slow'" in system.log(), what="the launch")

    listed = json.loads(nowcast(system, "ps", system.config_file.name, "--json").stdout)
    roles = sorted((p["role"], p["name"]) for p in listed)
    assert ("broker", "broker") in roles and ("manager", "manager") in roles
    assert roles.count(("worker", "slow")) == 2, roles
    pids = {p["pid"] for p in listed}
    assert {system.broker.pid, system.manager.pid, by_hand.pid} <= pids
    text = nowcast(system, "ps", system.config_file.name).stdout
    assert text.splitlines()[0].split() == ["PID", "ROLE", "RUNNING", "FOR", "COMMAND"]

    result = nowcast(system, "stop", system.config_file.name, "--grace", "3")
    assert result.returncode == 0, result.stdout + result.stderr
    assert "stopping the manager" in result.stdout and "stopping worker slow" in result.stdout
    assert result.stdout.splitlines()[-1] == (
        f"nothing of the system of {system.config_file.name} is running"
    )
    assert not any(alive(pid) for pid in pids)
    assert by_hand.wait(5) == 143  # stopped by SIGTERM
    again = nowcast(system, "ps", system.config_file.name)
    assert again.stdout.strip() == f"nothing of the system of {system.config_file.name} is running"

    # a new manager forgets the workers stop stopped, instead of handling them as crashes
    system.processes.clear()
    system.start()
    wait_for(lambda: "was stopped by nowcast stop" in system.log(), what="the manager's note")
    assert "slow (pid" in system.log().split("was stopped by nowcast stop")[0].splitlines()[-1]
    assert "handling it as a crash" not in system.log()
    status = json.loads(nowcast(system, "status", system.config_file.name, "--json").stdout)
    assert status["running"] == []
    assert not (system.dir / "after.log").exists()
    assert not os.path.exists(f"{system.checklist_file}.stopped-workers.json")
