"""Warm start: the manager starts local workers through a fork server, and a
worker started that way behaves as one started with ``python -m``."""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
import textwrap
import time
from pathlib import Path

import pytest
from conftest import PY, wait_for

import nowcast
from nowcast import defaults

RECORD_AFTER = """
def after_{name}(msg, config, checklist):
    with open("after.log", "a") as f:
        f.write(f"{{msg.source}} {{msg.type}}\\n")
    return []
"""

# A module the manager launches: not a NowcastWorker, so it reports nothing and
# the manager handles its exit as a silent death, whose log line has the exit code.
PROBE = """
import json, logging, os, signal, sys, threading

def dispositions():
    return {{s.name: str(signal.getsignal(s)) for s in (
        signal.SIGINT, signal.SIGTERM, signal.SIGHUP, signal.SIGCHLD, signal.SIGPIPE,
        signal.SIGUSR1)}}

with open("/proc/self/cmdline", "rb") as f:  # as ps shows it
    cmdline = f.read().rstrip(b"\\0").replace(b"\\0", b" ").decode()
seen = {{
    "argv": sys.argv,
    "orig_argv": sys.orig_argv,
    "cmdline": cmdline,
    "name": __name__,
    "file": __file__,
    "spec": __spec__.name,
    "cwd": os.getcwd(),
    "path0": sys.path[0],
    "session leader": os.getsid(0) == os.getpid(),
    "group leader": os.getpgrp() == os.getpid(),
    "stdin is /dev/null": os.fstat(0).st_rdev == os.stat("/dev/null").st_rdev,
    "signals": dispositions(),
    "threads": len(os.listdir("/proc/self/task")),
    "main globals": sorted(k for k in globals() if k.startswith("__")),
    "ppid": os.getppid(),
    # as Python leaves it: nothing of the server's or of its rehearsals
    "logging": [logging.root.level, len(logging.root.handlers), len(logging._handlerList)],
}}
with open(sys.argv[-1], "w") as f:
    json.dump(seen, f)
{tail}
"""


def record_after(system, *names: str) -> None:
    for name in names:
        system.after(RECORD_AFTER.format(name=name))


def after_calls(system) -> list[str]:
    path = system.dir / "after.log"
    return path.read_text().splitlines() if path.exists() else []


def probe(system, name: str, tail: str = "", record: bool = True, **settings) -> None:
    """A launched module that writes what it sees to the file named by its last arg."""
    system.register(name, **settings)
    (system.dir / f"{name}.py").write_text(PROBE.format(tail=textwrap.dedent(tail)))
    if record:
        record_after(system, name)


def launcher(system, *workers: tuple[str, list[str]]) -> None:
    """A `start` worker whose after_ launches ``workers``; run it to launch them."""
    system.worker_module("start")
    listed = ", ".join(f"NextWorker({m!r}, {a!r})" for m, a in workers)
    system.after(f"def after_start(msg, config, checklist):\n    return [{listed}]\n")


def server_pids(system) -> list[int]:
    return [int(p) for p in re.findall(r"fork server \(pid (\d+)\) ready", system.log())]


def start_warm(system) -> int:
    """Start the system and wait for its fork server to be ready; return its pid."""
    system.start()
    return wait_for(lambda: server_pids(system), what="fork server ready")[-1]


def launch(system) -> None:
    assert system.run_worker("start").returncode == 0


def read_json(path: Path) -> dict:
    return wait_for(lambda: path.exists() and path.read_text() and json.loads(path.read_text()))


def manager_output(system) -> str:
    return (system.dir / "nowcast.manager.out").read_text()


def running(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            return f.read().rsplit(b")", 1)[1].split()[0] != b"Z"
    except OSError:
        return False


def defaults_of_sigint_and_sighup() -> None:
    signal.signal(signal.SIGINT, signal.SIG_DFL)
    signal.signal(signal.SIGHUP, signal.SIG_DFL)


@pytest.mark.timeout(60)
def test_a_worker_sees_what_python_m_would_show_it(system):
    probe(system, "probe")
    launcher(system, ("probe", ["--x", "1", "warm.json"]))
    server = start_warm(system)
    launch(system)
    warm = read_json(system.dir / "warm.json")
    subprocess.run(
        [PY, "-m", "probe", str(system.config_file), "--x", "1", "cold.json"],
        cwd=system.dir,
        stdin=subprocess.DEVNULL,
        start_new_session=True,
        # as the manager starts a worker cold: SIGINT and SIGHUP at their defaults (the
        # manager handles HUP), even when the tests run with them ignored (from a
        # shell's background job, under nohup)
        preexec_fn=defaults_of_sigint_and_sighup,
        check=True,
        timeout=30,
    )
    cold = read_json(system.dir / "cold.json")
    assert warm.pop("ppid") == server
    cold.pop("ppid")
    warm["argv"][-1] = warm["orig_argv"][-1] = "out.json"
    cold["argv"][-1] = cold["orig_argv"][-1] = "out.json"
    warm["cmdline"] = warm["cmdline"].replace("warm.json", "out.json")
    cold["cmdline"] = cold["cmdline"].replace("cold.json", "out.json")
    assert warm == cold
    assert warm["name"] == "__main__"
    assert warm["argv"][0] == str(system.dir / "probe.py")
    assert warm["cwd"] == warm["path0"] == str(system.dir)
    assert warm["threads"] == 1 and warm["session leader"] and warm["stdin is /dev/null"]
    wait_for(lambda: "started by the fork server as pid" in system.log(), what="the launch line")


def test_the_servers_own_rehearsals_leave_no_trace_in_it_or_in_the_log(system):
    # the server runs a worker's start many times itself before it says it is
    # ready (forkserver.SERVER_WARM_UPS): nothing of it may be logged, retitle the
    # server or leave a thread in it
    server = start_warm(system)
    with open(f"/proc/{server}/cmdline", "rb") as f:
        cmdline = f.read().split(b"\0")
    assert b"nowcast.forkserver" in cmdline
    assert len(os.listdir(f"/proc/{server}/task")) == 1
    assert "rehearsing" not in system.log()
    assert "rehearsing" not in manager_output(system)


@pytest.mark.timeout(60)
def test_exit_codes_signals_and_output_reach_the_manager(system):
    probe(system, "speaks", "print('out-7f3a'); print('err-7f3a', file=sys.stderr); sys.exit(7)")
    probe(system, "signalled", "os.kill(os.getpid(), signal.SIGUSR1)")
    probe(system, "raises", "raise RuntimeError('boom-7f3a')")
    probe(
        system,
        "threaded",
        "import time\n"
        "def late():\n"
        "    time.sleep(0.3)\n"
        "    print('thread-7f3a', flush=True)\n"
        "threading.Thread(target=late).start()\n",
    )
    launcher(
        system,
        ("speaks", ["speaks.json"]),
        ("signalled", ["signalled.json"]),
        ("raises", ["raises.json"]),
        ("threaded", ["threaded.json"]),
    )
    server = start_warm(system)
    launch(system)
    wait_for(lambda: len(after_calls(system)) == 4, what="four crashes")
    assert sorted(after_calls(system)) == [
        "raises crash",
        "signalled crash",
        "speaks crash",
        "threaded crash",
    ]
    log = system.log()
    assert log.count("started by the fork server as pid") == 4
    assert re.search(r"speaks \(pid \d+.*exited with code 7 without reporting", log)
    assert re.search(r"signalled \(pid \d+.*was killed by SIGUSR1 without reporting", log)
    assert re.search(r"raises \(pid \d+.*exited with code 1 without reporting", log)
    assert re.search(r"threaded \(pid \d+.*exited with code 0 without reporting", log)
    output = manager_output(system)
    assert "out-7f3a" in output and "err-7f3a" in output and "thread-7f3a" in output
    assert "Traceback (most recent call last):" in output
    assert "RuntimeError: boom-7f3a" in output and "forkserver.py" not in output
    assert all(
        json.loads((system.dir / f"{n}.json").read_text())["ppid"] == server
        for n in ("speaks", "signalled", "raises", "threaded")
    )


@pytest.mark.timeout(60)
def test_a_worker_runs_its_module_as_it_is_on_disk_now(system):
    probe(system, "fresh", "print('version-one')")
    launcher(system, ("fresh", ["fresh.json"]))
    start_warm(system)
    launch(system)
    wait_for(lambda: after_calls(system) == ["fresh crash"], what="first run")
    path = system.dir / "fresh.py"
    path.write_text(path.read_text().replace("print('version-one')", "print('version-two!')"))
    launch(system)
    wait_for(lambda: len(after_calls(system)) == 2, what="second run")
    output = manager_output(system)
    assert output.index("version-one") < output.index("version-two!")
    assert system.log().count("started by the fork server as pid") == 2


@pytest.mark.timeout(60)
def test_a_worker_imports_a_module_written_after_the_fork_server_started(system):
    probe(system, "importer", "import written_later\nprint('helper says', written_later.WORD)")
    launcher(system, ("importer", ["importer.json"]))
    start_warm(system)
    launch(system)
    wait_for(lambda: after_calls(system) == ["importer crash"], what="first run")
    assert "No module named 'written_later'" in manager_output(system)
    (system.dir / "written_later.py").write_text("WORD = 'hello'\n")
    launch(system)
    wait_for(lambda: len(after_calls(system)) == 2, what="second run")
    assert "helper says hello" in manager_output(system)


@pytest.mark.timeout(60)
def test_a_worker_reads_the_config_file_as_it_is_on_disk_now(system):
    system.config_extra["probe value"] = "one"
    system.register("reads")
    (system.dir / "reads.py").write_text(
        "import sys\nfrom nowcast import Config\nconfig = Config()\nconfig.load(sys.argv[1])\n"
        "open('reads.log', 'a').write(config['probe value'] + '\\n')\n"
    )
    record_after(system, "reads")
    launcher(system, ("reads", []))
    start_warm(system)
    launch(system)
    wait_for(lambda: len(after_calls(system)) == 1, what="first run")
    text = system.config_file.read_text()
    system.config_file.write_text(text.replace("probe value: one", "probe value: two"))
    launch(system)
    wait_for(lambda: len(after_calls(system)) == 2, what="second run")
    assert (system.dir / "reads.log").read_text().split() == ["one", "two"]
    assert system.log().count("started by the fork server as pid") == 2


@pytest.mark.timeout(60)
def test_a_changed_preloaded_module_brings_a_fresh_fork_server(system):
    # the system runs its own copy of the framework (the directory a process runs
    # in comes first on its path), so the test can change a module the server imported
    package = Path(nowcast.__file__).parent
    shutil.copytree(package, system.dir / "nowcast", ignore=shutil.ignore_patterns("__pycache__"))
    # with the module that makes it a copy of nowcast, not a system's package named nowcast
    shutil.copy(package.parent / "_nowcast_path.py", system.dir)
    probe(
        system,
        "upgraded",
        "import nowcast.defaults; print('probe', nowcast.defaults.__dict__.get('PROBE'))",
    )
    launcher(system, ("upgraded", ["upgraded.json"]))
    first = start_warm(system)
    launch(system)
    wait_for(lambda: len(after_calls(system)) == 1, what="first run")
    with open(system.dir / "nowcast" / "defaults.py", "a") as f:
        f.write("\nPROBE = 'upgraded'\n")
    launch(system)
    wait_for(lambda: len(after_calls(system)) == 2, what="second run")
    second = wait_for(lambda: len(server_pids(system)) == 2 and server_pids(system)[-1])
    launch(system)
    wait_for(lambda: len(after_calls(system)) == 3, what="third run")
    output = manager_output(system)
    assert output.count("probe None") == 1 and output.count("probe upgraded") == 2
    log = system.log()
    assert re.search(r"starting a fresh fork server: \S*defaults.py changed", log)
    assert json.loads((system.dir / "upgraded.json").read_text())["ppid"] == second != first
    wait_for(lambda: not running(first), what="the stale fork server to exit")


@pytest.mark.timeout(60)
def test_kill_9_of_the_fork_server_loses_no_launch(system):
    probe(
        system,
        "waits",
        "import time\nwhile not os.path.exists('go'):\n    time.sleep(0.02)\nos._exit(5)",
        record=False,
    )
    probe(system, "after_death")
    launcher(system, ("waits", ["waits.json"]))
    system.after(
        "def after_waits(msg, config, checklist):\n"
        "    return [NextWorker('after_death', ['after_death.json'])]\n"
    )
    server = start_warm(system)
    launch(system)
    waits = read_json(system.dir / "waits.json")
    assert waits["ppid"] == server
    os.kill(server, signal.SIGKILL)
    wait_for(lambda: "was killed by SIGKILL" in system.log(), what="the death noticed")
    (system.dir / "go").touch()
    wait_for(lambda: after_calls(system) == ["after_death crash"], what="the chain going on")
    log = system.log()
    assert f"the fork server (pid {server}) was killed by SIGKILL" in log
    assert "1 worker(s) the fork server (pid" in log and "are watched by pid" in log
    assert re.search(r"waits \(pid \d+.*exit code unknown", log)
    after_death = json.loads((system.dir / "after_death.json").read_text())
    assert after_death["ppid"] == system.manager.pid  # started cold


@pytest.mark.timeout(60)
def test_a_timeout_stops_the_whole_process_group_of_a_forked_worker(system):
    probe(
        system,
        "hangs",
        "import subprocess, time\n"
        "child = subprocess.Popen(['sleep', '60'])\n"
        "open('grandchild', 'w').write(str(child.pid))\n"
        "time.sleep(60)\n",
        timeout=1,
        **{"timeout grace": 1},
    )
    launcher(system, ("hangs", ["hangs.json"]))
    server = start_warm(system)
    launch(system)
    assert read_json(system.dir / "hangs.json")["ppid"] == server
    grandchild = int(
        wait_for(
            lambda: (system.dir / "grandchild").exists() and (system.dir / "grandchild").read_text()
        )
    )
    wait_for(lambda: after_calls(system) == ["hangs crash"], timeout=20, what="after_hangs")
    assert "ran past its timeout of 1 s and was stopped" in system.log()
    wait_for(lambda: not running(grandchild), what="the worker's own child to be stopped")


@pytest.mark.timeout(60)
def test_warm_start_off_starts_workers_with_popen(system):
    system.config_extra["run"] = {"warm start": False}
    probe(system, "cold")
    launcher(system, ("cold", ["cold.json"]))
    system.start()
    launch(system)
    assert read_json(system.dir / "cold.json")["ppid"] == system.manager.pid
    wait_for(lambda: after_calls(system) == ["cold crash"], what="cold exit")
    log = system.log()
    assert "warm start is off" in log
    assert "fork server" not in log.replace("warm start is off", "")


def fan_out(system, members: int) -> None:
    """A `start` worker whose after_ launches ``members`` members, joined by a race
    group, then one `final` worker; each member notes its run in runs.log."""
    system.worker_module("start")
    system.worker_module(
        "member",
        """
        fds = len(os.listdir("/proc/self/fd"))  # none of its siblings' pipes
        with open("runs.log", "a") as f:
            f.write(f"{parsed_args.arg} {fds}\\n")
        return {parsed_args.arg: True}
        """,
    )
    system.worker_module("final")
    system.after(
        "def after_start(msg, config, checklist):\n"
        f"    return [NextWorker('member', ['--arg', str(i)]) for i in range({members})], "
        "{'member'}\n"
        "def after_member(msg, config, checklist):\n"
        "    return [NextWorker('final')]\n"
    )
    record_after(system, "final")


def fanned_out(system, members: int) -> None:
    """Every member ran and reported once, then the final worker once."""
    wait_for(lambda: after_calls(system), timeout=60, what="the final worker")
    runs = [line.split() for line in (system.dir / "runs.log").read_text().splitlines()]
    assert sorted(int(i) for i, _ in runs) == list(range(members))  # none lost, none twice
    assert len({fds for _, fds in runs}) == 1  # each started with the same files open
    assert system.checklist()["member"] == {str(i): True for i in range(members)}
    assert after_calls(system) == ["final success"]


@pytest.mark.timeout(60)
def test_a_fan_out_starts_each_member_once_a_window_at_a_time_through_the_fork_server(system):
    members = defaults.LAUNCH_WINDOW * 3 // 2  # more than start at once: some wait their turn
    fan_out(system, members)
    start_warm(system)
    launch(system)
    fanned_out(system, members)
    log = system.log()
    assert log.count("launching NextWorker(module='member'") == members
    assert log.count("started by the fork server as pid") == members + 1  # and final
    assert "race condition group complete" in log


@pytest.mark.timeout(60)
def test_members_beyond_the_window_start_while_those_started_are_still_running(system):
    # members that run on without reporting: nothing but the window's freeing up
    # (a second after the first launches) can start the rest, no message comes
    members = defaults.LAUNCH_WINDOW + 6
    system.worker_module("start")
    system.worker_module(
        "member",
        """
        with open("runs.log", "a") as f:
            f.write(f"{parsed_args.arg}\\n")
        while not os.path.exists("go"):
            time.sleep(0.05)
        return {parsed_args.arg: True}
        """,
    )
    system.after(
        "def after_start(msg, config, checklist):\n"
        f"    return [NextWorker('member', ['--arg', str(i)]) for i in range({members})]\n"
    )
    start_warm(system)
    launch(system)
    runs = system.dir / "runs.log"
    try:
        wait_for(
            lambda: runs.exists() and len(runs.read_text().splitlines()) == members,
            timeout=20,
            what="every member to start",
        )
    finally:
        (system.dir / "go").write_text("")
    wait_for(
        lambda: system.log().count("received message from member: (success)") == members,
        timeout=30,
        what="the reports",
    )


@pytest.mark.timeout(90)
def test_kill_9_of_the_manager_in_a_fan_out_loses_no_member_and_runs_none_twice(system):
    members = defaults.LAUNCH_WINDOW * 3 // 2
    fan_out(system, members)
    start_warm(system)
    launch(system)
    runs = system.dir / "runs.log"
    wait_for(lambda: runs.exists() and len(runs.read_text().splitlines()) >= 10, what="some runs")
    system.kill_manager()
    system.start_manager()
    fanned_out(system, members)


@pytest.mark.timeout(60)
def test_warm_start_must_be_true_or_false(system):
    system.config_extra["run"] = {"warm start": "yes"}
    system.write()
    manager = system.spawn("nowcast.manager")
    assert manager.wait(10) == 2
    output = manager_output(system)
    assert str(system.config_file) in output
    assert "'run: warm start' must be true or false, got 'yes'" in output


@pytest.mark.timeout(60)
def test_the_fork_server_ends_with_its_manager_and_leaves_workers_running(system):
    probe(system, "lasts", "import time\ntime.sleep(60)")
    launcher(system, ("lasts", ["lasts.json"]))
    server = start_warm(system)
    assert len(os.listdir(f"/proc/{server}/task")) == 1  # no threads: safe to fork
    launch(system)
    worker = read_json(system.dir / "lasts.json")
    started = wait_for(lambda: re.search(r"started by the fork server as pid (\d+)", system.log()))
    pid = int(started[1])
    assert worker["ppid"] == server
    system.kill_manager()
    wait_for(lambda: not running(server), what="the fork server to exit")
    assert running(pid)
    os.kill(pid, signal.SIGKILL)


@pytest.mark.timeout(60)
def test_a_reload_that_changes_python_replaces_the_fork_server(system):
    wrapper = system.dir / "python-wrapper"
    wrapper.write_text(f'#!/bin/sh\nexec "{PY}" "$@"\n')
    wrapper.chmod(0o755)
    first = start_warm(system)
    system.config_extra["python"] = str(wrapper)
    system.write()
    system.manager.send_signal(signal.SIGHUP)
    wait_for(lambda: len(server_pids(system)) == 2, what="a new fork server")
    assert "replacing the fork server: the config changed" in system.log()
    wait_for(lambda: not running(first), what="the old fork server to exit")
    # the old server's socket has left the manager's poll set with it: a closed
    # descriptor left in it made every poll return at once, at full CPU
    time.sleep(0.5)
    before = _cpu_seconds(system.manager.pid)
    time.sleep(2)
    assert _cpu_seconds(system.manager.pid) - before < 0.5


@pytest.mark.timeout(60)
def test_a_fork_server_that_cannot_start_leaves_workers_started_cold(system):
    # a link to the interpreter outside its virtual environment: no nowcast there
    outside = system.dir / "python-outside-venv"
    outside.symlink_to(PY)
    system.config_extra["python"] = str(outside)
    probe(system, "cold")
    launcher(system, ("cold", ["cold.json"]))
    system.start()
    wait_for(lambda: "before it was ready" in system.log(), what="the fork server to fail")
    launch(system)
    assert read_json(system.dir / "cold.json")["ppid"] == system.manager.pid
    log = system.log()
    assert re.search(r"the fork server \(pid \d+\) exited with code 1 before it was ready", log)
    assert "No module named 'nowcast'" in manager_output(system)


@pytest.mark.timeout(60)
def test_a_stopped_fork_server_is_replaced_and_the_worker_started_cold_at_once(system):
    """SIGSTOP made the manager wait 5 s for each launch, answering nothing."""
    probe(system, "first", record=False)
    probe(system, "second")
    launcher(system, ("first", ["first.json"]))
    system.after(
        "def after_first(msg, config, checklist):\n"
        "    return [NextWorker('second', ['second.json'])]\n"
    )
    stopped = start_warm(system)
    os.kill(stopped, signal.SIGSTOP)
    try:
        launch(system)
        first = read_json(system.dir / "first.json")
        assert first["ppid"] == system.manager.pid  # started cold
        log = system.log()
        assert f"the fork server (pid {stopped}) is stopped; starting first cold" in log
        assert "did not answer within" not in log
        wait_for(lambda: not running(stopped), what="the stopped fork server killed")
        # a fresh one, at once (not after the restart delay), starts the next worker
        fresh = wait_for(
            lambda: [p for p in server_pids(system) if p != stopped], what="a fresh one"
        )
        second = read_json(system.dir / "second.json")
        assert second["ppid"] in (fresh[-1], system.manager.pid)
        wait_for(lambda: after_calls(system) == ["second crash"], what="the chain")
    finally:
        if running(stopped):
            os.kill(stopped, signal.SIGCONT)


def _server_for_marker(tmp_path, **popen):
    """A fork server on a socket pair, in ``tmp_path``, beside a module that
    writes the file ``ran``: our end of the pair, and the server's process."""
    import socket

    (tmp_path / "marker_module.py").write_text("open('ran', 'w').write('yes')\n")
    ours, theirs = socket.socketpair()
    server = subprocess.Popen(
        [PY, "-m", "nowcast.forkserver", str(theirs.fileno()), "unused.yaml"],
        cwd=tmp_path,
        pass_fds=(theirs.fileno(),),
        **popen,
    )
    theirs.close()
    return ours, server


def _said(reader, spares: list | None = None) -> dict:
    """The server's next line, past those telling of the child it forked ahead
    (their pids are added to ``spares``)."""
    while "spare" in (said := json.loads(reader.readline())):
        if spares is not None:
            spares.append(said["spare"])
    return said


@pytest.mark.timeout(60)
def test_a_worker_whose_pid_the_manager_never_got_does_not_run(tmp_path):
    """The child runs the worker only after the server has told the manager its
    pid: if the manager is gone (or killed the server) first, it exits unrun."""
    import time

    ours, server = _server_for_marker(tmp_path, stderr=subprocess.PIPE, text=True)
    try:
        ours.settimeout(30)
        said = b""
        while b"spare" not in said:  # ready, and its child forked ahead
            said += ours.recv(65536)
        request = {"module": "marker_module", "args": [], "cwd": str(tmp_path)}
        ours.sendall(json.dumps(request).encode() + b"\n")
        ours.close()  # gone before the answer could be read
        _, stderr = server.communicate(timeout=30)
    finally:
        if server.poll() is None:
            server.kill()
            server.wait()
    deadline = time.monotonic() + 2
    while time.monotonic() < deadline and not (tmp_path / "ran").exists():
        time.sleep(0.05)
    assert not (tmp_path / "ran").exists()
    assert "not run" in stderr


@pytest.mark.timeout(60)
def test_a_forked_worker_runs_only_once_the_manager_has_noted_it(tmp_path):
    """The manager notes the pids in its launch journal, then says go: a manager
    killed before that leaves no worker running that its successor would launch
    again."""
    import time

    ours, server = _server_for_marker(tmp_path)
    reader = ours.makefile("rb")
    try:
        ours.settimeout(30)
        assert "ready" in _said(reader)
        request = {"launch": [{"module": "marker_module", "args": [], "cwd": str(tmp_path)}]}
        ours.sendall(json.dumps(request).encode() + b"\n")
        (pid,) = _said(reader)["pids"]
        deadline = time.monotonic() + 1
        while time.monotonic() < deadline:  # forked, waiting for the word
            assert not (tmp_path / "ran").exists()
            time.sleep(0.05)
        ours.sendall(b'{"go": true}\n')
        assert _said(reader) == {"exit": pid, "code": 0}
        assert (tmp_path / "ran").read_text() == "yes"
    finally:
        reader.close()
        ours.close()
        server.wait(30)


REHEARSED = """
import re
from nowcast import forkserver
from nowcast.cli import CommandLineInterface

forkserver._rehearse()
cached = set(re._cache)
for args in (["c.yaml", "nowcast", "7"], ["c.yaml", "--run-date", "2024-01-01", "forecast2", "1"],
             ["c.yaml", "nowcast", "--debug", "2", "--run-date", "2024-01-01"]):
    cli = CommandLineInterface("member", package="", description="A member")
    cli.build_parser()
    cli.parser.add_argument("--debug", action="store_true")
    cli.parser.add_argument("run_type", choices=["nowcast", "forecast2"])
    cli.parser.add_argument("index")
    cli.parser.add_argument("--run-date")
    cli.parser.parse_args(args)
print(sorted(key[1] for key in set(re._cache) - cached))
"""


def test_a_forked_worker_finds_its_command_lines_regular_expressions_compiled():
    # argparse compiles one for the positional arguments of each length it meets
    out = subprocess.run([PY, "-c", REHEARSED], capture_output=True, text=True, timeout=30)
    assert out.returncode == 0, out.stderr
    assert out.stdout.split() == ["[]"]


def _cpu_seconds(pid: int) -> float:
    with open(f"/proc/{pid}/stat", "rb") as f:
        fields = f.read().rsplit(b")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _children(pid: int) -> list[int]:
    with open(f"/proc/{pid}/task/{pid}/children") as f:
        return [int(p) for p in f.read().split()]


def _launch_marker(ours, reader, tmp_path) -> int:
    """Ask for one launch of the marker module, say go, and return its pid once
    the server has reported its exit (the next line it says: nothing else)."""
    request = {"launch": [{"module": "marker_module", "args": [], "cwd": str(tmp_path)}]}
    ours.sendall(json.dumps(request).encode() + b"\n")
    (pid,) = _said(reader)["pids"]
    ours.sendall(b'{"go": true}\n')
    assert _said(reader) == {"exit": pid, "code": 0}
    assert (tmp_path / "ran").read_text() == "yes"
    (tmp_path / "ran").unlink()
    return pid


@pytest.mark.timeout(60)
def test_a_launch_goes_to_a_child_forked_ahead_and_a_dead_one_is_replaced(tmp_path):
    """The server forks a child before the launch that will use it, so the fork
    is off the launch's path; one that dies waiting is replaced, and its end is
    not reported to the manager as a worker's."""
    ours, server = _server_for_marker(tmp_path)
    reader = ours.makefile("rb")
    try:
        ours.settimeout(30)
        assert "ready" in _said(reader)
        (spare,) = wait_for(lambda: _children(server.pid), what="a child forked ahead")
        assert _launch_marker(ours, reader, tmp_path) == spare
        (spare,) = wait_for(lambda: _children(server.pid), what="the next one")
        os.kill(spare, signal.SIGKILL)
        wait_for(lambda: spare not in _children(server.pid), what="the dead one reaped")
        (replacement,) = wait_for(lambda: _children(server.pid), what="its replacement")
        assert _launch_marker(ours, reader, tmp_path) == replacement
    finally:
        reader.close()
        ours.close()
        server.wait(30)


@pytest.mark.timeout(60)
def test_a_child_forked_ahead_is_ended_unrun_when_the_server_retires(tmp_path):
    ours, server = _server_for_marker(tmp_path, stderr=subprocess.PIPE, text=True)
    try:
        ours.settimeout(30)
        assert b"ready" in ours.recv(65536)
        (spare,) = wait_for(lambda: _children(server.pid), what="a child forked ahead")
        ours.sendall(b'{"retire": true}\n')
        _, stderr = server.communicate(timeout=30)  # it ends: no worker of its own runs
        wait_for(lambda: not running(spare), what="the child forked ahead to end")
        assert server.returncode == 0
        assert stderr == ""  # ended quietly: not a worker the manager failed to note
        assert not (tmp_path / "ran").exists()
    finally:
        ours.close()
        if server.poll() is None:
            server.kill()
            server.wait()


def _watching(path: Path, changes: bool):
    """The fork server's freshness check of one file, as it stands after its start."""
    from nowcast import forkserver

    server = forkserver._Server.__new__(forkserver._Server)  # no socket, no signals
    server.changes = forkserver._Changes.open({str(path)}) if changes else None
    server.stamps = {str(path): forkserver._stamp(str(path))}
    server.changes_found = None
    server._checked_at = time.monotonic()
    return server


def test_a_changed_file_is_seen_at_the_next_launch_without_comparing_every_file(tmp_path):
    from nowcast import forkserver

    path = tmp_path / "module.py"
    path.write_text("x = 1\n")
    server = _watching(path, changes=True)
    assert server.changes is not None  # inotify, on Linux
    try:
        server.stamps[str(path)] = ("as if", "changed", "unseen")
        assert server._stale() is None  # nothing seen: no file compared on the launch's path
        server._checked_at -= forkserver.RECHECK_AFTER
        assert server._stale() == str(path)  # a change inotify misses waits this long at most
        server.stamps[str(path)] = forkserver._stamp(str(path))
        server._checked_at = time.monotonic()
        path.write_text("x = 222\n")  # another size: a change its stamp shows at once
        assert server._stale() == str(path)  # seen at once
    finally:
        server.changes.close()


def test_without_inotify_every_launch_compares_the_files(tmp_path):
    path = tmp_path / "module.py"
    path.write_text("x = 1\n")
    server = _watching(path, changes=False)
    assert server._stale() is None
    path.write_text("x = 22\n")
    assert server._stale() == str(path)


@pytest.mark.timeout(60)
def test_a_launch_noted_ahead_in_the_child_forked_ahead_runs_without_the_word_to_go(tmp_path):
    """The server tells the manager the pid of the child it forked ahead; a launch
    the manager noted under that pid before asking runs at once. One noted under
    another pid still waits for the word."""
    ours, server = _server_for_marker(tmp_path)
    reader = ours.makefile("rb")
    try:
        ours.settimeout(30)
        assert "ready" in json.loads(reader.readline())
        spare = json.loads(reader.readline())["spare"]
        assert _children(server.pid) == [spare]
        launch = {"module": "marker_module", "args": [], "cwd": str(tmp_path), "noted": spare}
        ours.sendall(json.dumps(launch).encode() + b"\n")
        spares: list[int] = []
        assert _said(reader, spares) == {"pid": spare}
        assert _said(reader, spares) == {"exit": spare, "code": 0}  # no word to go was needed
        assert (tmp_path / "ran").read_text() == "yes"
        (tmp_path / "ran").unlink()
        (spare,) = spares or [json.loads(reader.readline())["spare"]]  # the next one
        launch["noted"] = spare + 100000  # not the child forked ahead
        ours.sendall(json.dumps(launch).encode() + b"\n")
        assert _said(reader) == {"pid": spare}
        time.sleep(0.5)
        assert not (tmp_path / "ran").exists()  # waiting for the word
        ours.sendall(b'{"go": true}\n')
        assert _said(reader) == {"exit": spare, "code": 0}
        assert (tmp_path / "ran").read_text() == "yes"
    finally:
        reader.close()
        ours.close()
        server.wait(30)


@pytest.mark.timeout(60)
def test_a_launch_larger_than_a_pipe_holds_reaches_its_child_whole(tmp_path):
    """The launch goes to its child over a pipe: an environment of 300 KB (far
    more than a pipe holds at once) arrives whole, to the child forked ahead and
    to one forked on demand."""
    ours, server = _server_for_marker(tmp_path)
    (tmp_path / "env_module.py").write_text(
        "import os, sys\nopen(sys.argv[1], 'w').write(str(len(os.environ['BIG'])))\n"
    )
    reader = ours.makefile("rb")
    big = "x" * 300_000
    try:
        ours.settimeout(30)
        assert "ready" in _said(reader)
        launches = [
            {
                "module": "env_module",
                "args": [f"seen{i}"],
                "cwd": str(tmp_path),
                "env": {"BIG": big},
            }
            for i in range(2)
        ]
        ours.sendall(json.dumps({"launch": launches}).encode() + b"\n")
        pids = _said(reader)["pids"]
        assert len(pids) == 2
        ours.sendall(b'{"go": true}\n')
        exits = [_said(reader), _said(reader)]
        assert sorted(e["exit"] for e in exits) == sorted(pids)
        assert all(e["code"] == 0 for e in exits)
        assert [(tmp_path / f"seen{i}").read_text() for i in range(2)] == ["300000"] * 2
    finally:
        reader.close()
        ours.close()
        server.wait(30)
