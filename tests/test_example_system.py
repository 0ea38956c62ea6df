"""The example system under a real supervisord, through a whole cycle, and
through its failure path."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml
from conftest import free_port

ROOT = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent


@pytest.fixture
def example(tmp_path):
    """A copy of the example system with free ports and its own logs and data."""
    for name in ("workers", "scripts", "config"):
        shutil.copytree(ROOT / name, tmp_path / name, ignore=shutil.ignore_patterns("__pycache__"))
    config = (tmp_path / "config" / "nowcast.yaml").read_text()
    config = config.replace("manager: 5775", f"manager: {free_port()}")
    config = config.replace("workers: 5776", f"workers: {free_port()}")
    config = config.replace("port: 5780", f"port: {free_port()}")  # the dashboard's
    (tmp_path / "config" / "nowcast.yaml").write_text(config)
    shutil.copy(ROOT / "supervisord.ini", tmp_path / "supervisord.ini")
    env = {
        **os.environ,
        "NOWCAST_ENV": str(BIN.parent),
        "NOWCAST_LOGS": str(tmp_path / "logs"),
        "NOWCAST_DATA": str(tmp_path / "data"),
        "PATH": f"{BIN}:{os.environ['PATH']}",
    }
    yield tmp_path, env
    ctl = [str(BIN / "supervisorctl"), "-c", str(tmp_path / "supervisord.ini")]
    subprocess.run([*ctl, "shutdown"], env=env, capture_output=True, timeout=30)
    subprocess.run(["pkill", "-f", str(tmp_path)], capture_output=True)


def test_supervisord_is_controlled_through_a_private_socket_file(example):
    """No TCP control port (any local user could stop the system, and two systems
    on one host would collide): a socket file in the logs directory, mode 0700."""
    import configparser
    import stat

    directory, env = example
    ini = configparser.RawConfigParser()
    ini.read(directory / "supervisord.ini")
    assert "inet_http_server" not in ini
    assert ini["unix_http_server"]["chmod"] == "0700"
    ctl = [str(BIN / "supervisorctl"), "-c", "supervisord.ini"]
    (directory / "logs").mkdir()
    started = subprocess.run(
        [str(BIN / "supervisord"), "-c", "supervisord.ini"], cwd=directory, env=env, timeout=30
    )
    assert started.returncode == 0
    sock = directory / "logs" / "supervisord.sock"
    assert stat.S_ISSOCK(sock.stat().st_mode)
    assert stat.S_IMODE(sock.stat().st_mode) == 0o700
    status = subprocess.run(
        [*ctl, "pid"], cwd=directory, env=env, capture_output=True, text=True, timeout=30
    )
    assert status.returncode == 0 and status.stdout.strip().isdigit(), status
    pid = int(status.stdout)
    fds = {os.readlink(f"/proc/{pid}/fd/{fd}") for fd in os.listdir(f"/proc/{pid}/fd")}
    assert not fds & _tcp_listeners(), "supervisord listens on a TCP port"


def _tcp_listeners() -> set[str]:
    """The ``socket:[inode]`` names of every TCP socket listening on this host."""
    found = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        with open(table) as f:
            for line in list(f)[1:]:
                fields = line.split()
                if fields[3] == "0A":  # LISTEN
                    found.add(f"socket:[{fields[9]}]")
    return found


def live_processes(directory: Path) -> list[str]:
    """Command lines of live (not zombie) processes that mention ``directory``."""
    found = []
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()
            state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
        except OSError:
            continue
        if str(directory) in cmdline and state != "Z" and int(pid) != os.getpid():
            found.append(cmdline)
    return found


@pytest.mark.timeout(120)
def test_a_whole_cycle_under_supervisord(example):
    directory, env = example
    result = subprocess.run(
        ["scripts/demo.sh"], cwd=directory, env=env, capture_output=True, text=True, timeout=110
    )
    assert result.returncode == 0, result.stdout + result.stderr
    out = result.stdout
    assert re.search(r"message_broker\s+RUNNING", out) and re.search(r"manager\s+RUNNING", out)
    assert re.search(r"web\s+RUNNING", out) and "== the dashboard: http://127.0.0.1:" in out
    assert "cycle complete: rotate_logs reported success" in out
    for worker in (
        "prepare_run",
        "get_weather",
        "get_rivers",
        "run_model",
        "make_plots",
        "clear_checklist",
        "rotate_logs",
    ):
        assert f"{worker}: success" in out
    logged = (directory / "logs" / "checklist.log").read_text()
    assert "model run:" in logged and "final temperatures:" in logged
    [day] = (directory / "data").iterdir()
    assert "<svg" in (day / "summary.html").read_text()
    checklist = yaml.safe_load((directory / "logs" / "nowcast_checklist.yaml").read_text())
    assert set(checklist) == {"checklist", "log rotation"}
    # rotate_logs rotated the files, and the manager went on writing to the new one
    rotated = (directory / "logs" / "nowcast.log.1").read_text()
    current = (directory / "logs" / "nowcast.log").read_text()
    assert "checklist updated with [model run]" in rotated
    assert "checklist updated with [log rotation] items from rotate_logs worker" in current
    assert live_processes(directory) == []


@pytest.mark.timeout(120)
def test_failing_input_takes_the_failure_path(example):
    directory, env = example
    result = subprocess.run(
        ["scripts/demo.sh", "--simulate-outage", "rivers"],
        cwd=directory,
        env=env,
        capture_output=True,
        text=True,
        timeout=110,
    )
    assert result.returncode == 1
    assert "cycle FAILED: get_rivers (failure), run_model (failure)" in result.stderr
    assert result.stdout.count("get_rivers: failure") == 2  # retried once
    assert "make_plots: success" in result.stdout
    assert "clear_checklist" not in result.stdout  # the checklist is kept for the operators
    [day] = (directory / "data").iterdir()
    assert "No forecast for" in (day / "summary.html").read_text()
    log = (directory / "logs" / "nowcast.log").read_text()
    assert "missing rivers forcing file" in log
    assert "get_rivers reported (failure) on try 1 of 2; launching it again" in log
    checklist = yaml.safe_load((directory / "logs" / "nowcast_checklist.yaml").read_text())
    assert (
        checklist["model run"] is None
        and checklist["plots"]["notice"] == "missing forcing: rivers.csv"
    )
    assert live_processes(directory) == []
    # the failure output names each cause, and the file it is in
    assert (
        "  get_rivers: ERROR [get_rivers] river gauge service unavailable (simulated outage)"
    ) in result.stderr
    assert "  run_model: ERROR [run_model] missing rivers forcing file" in result.stderr
    assert "  (from logs/nowcast.log)" in result.stderr
    assert "see the logs" not in result.stderr
    # and the next run of the day works: the notice left in the checklist's
    # plots entry does not stop this cycle at make_plots
    again = subprocess.run(
        ["scripts/demo.sh"], cwd=directory, env=env, capture_output=True, text=True, timeout=110
    )
    assert again.returncode == 0, again.stdout + again.stderr
    assert "cycle complete: rotate_logs reported success" in again.stdout
    assert live_processes(directory) == []


@pytest.mark.timeout(120)
def test_a_cycle_that_stops_early_says_where(example):
    directory, env = example
    next_workers = directory / "workers" / "next_workers.py"
    text = next_workers.read_text()
    next_workers.write_text(
        text.replace(
            'return [NextWorker("nowcast.workers.clear_checklist")]', "return []  # a mistake"
        )
    )
    started = time.monotonic()
    result = subprocess.run(
        ["scripts/demo.sh"], cwd=directory, env=env, capture_output=True, text=True, timeout=110
    )
    assert result.returncode == 1
    assert time.monotonic() - started < 60  # not the whole time limit
    assert re.search(
        r"cycle stopped before rotate_logs reported: the last message was make_plots "
        r"\(success\) at \d\d:\d\d:\d\d, and nothing is running, pending or waiting since: "
        r"after_make_plots launched nothing",
        result.stderr,
    ), result.stderr


@pytest.mark.timeout(60)
def test_a_cycle_past_its_time_limit_says_what_it_waits_for(system):
    system.worker_module("quick")
    system.worker_module("slow", "time.sleep(30)\nreturn {}")
    system.after(
        """
        def after_quick(msg, config, checklist):
            return [NextWorker("slow")]

        def after_slow(msg, config, checklist):
            return []
        """
    )
    system.start()
    since = time.time()
    assert system.run_worker("quick").returncode == 0
    result = subprocess.run(
        [sys.executable, str(ROOT / "scripts" / "wait_for_cycle.py"), str(system.config_file)]
        + ["--last", "slow", "--since", str(since), "--timeout", "3"],
        cwd=system.dir,
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert result.returncode == 2
    lines = result.stderr.splitlines()
    assert lines[0] == "cycle did not end within 3 s"
    assert re.fullmatch(r"  running: slow \(pid \d+, for \d+ s, try 1\)", lines[1]), lines
    assert re.fullmatch(r"  last message: quick \(success\) at \d\d:\d\d:\d\d", lines[2]), lines


@pytest.mark.timeout(120)
def test_stop_leaves_a_supervisord_running_other_programs_alone(example):
    directory, env = example
    ini = directory / "supervisord.ini"
    ini.write_text(ini.read_text() + "\n[program:other]\ncommand = sleep 600\n")
    (directory / "logs").mkdir()
    subprocess.run([str(BIN / "supervisord"), "-c", str(ini)], cwd=directory, env=env, check=True)
    status = subprocess.run(
        [str(BIN / "nowcast"), "status", "config/nowcast.yaml", "--timeout", "60"],
        cwd=directory,
        env=env,
        capture_output=True,
        text=True,
        timeout=90,
    )
    assert status.returncode == 0, status.stderr
    result = subprocess.run(
        [str(BIN / "nowcast"), "stop", "config/nowcast.yaml"],
        cwd=directory,
        env=env,
        capture_output=True,
        text=True,
        timeout=90,
    )
    assert result.returncode == 1
    assert "also runs processes of other systems" in result.stdout
    assert re.search(r"^\d+\s+manager\s+", result.stdout, re.M)  # still running, listed
