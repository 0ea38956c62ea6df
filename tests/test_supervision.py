"""The manager supervises the workers it launches: deaths, timeouts, retries,
race groups, restarts."""

from __future__ import annotations

import json
import time

import pytest
from conftest import wait_for

RECORD_AFTER = """
def after_{name}(msg, config, checklist):
    with open("after.log", "a") as f:
        f.write(f"{{msg.source}} {{msg.type}}\\n")
    return []
"""


def record_after(system, *names):
    for name in names:
        system.after(RECORD_AFTER.format(name=name))


def after_calls(system) -> list[str]:
    path = system.dir / "after.log"
    return path.read_text().splitlines() if path.exists() else []


def watched(system) -> list[str]:
    """The names of the launched workers the manager's state file holds."""
    path = system.dir / f"{system.checklist_file.name}.manager-state.json"
    try:
        state = json.loads(path.read_text())
    except (OSError, ValueError):
        return []
    return [w["module"] for w in state["supervision"]["running"]]


def waiting(system) -> dict | None:
    """Whom the race group in the manager's state file waits for."""
    path = system.dir / f"{system.checklist_file.name}.manager-state.json"
    try:
        groups = json.loads(path.read_text())["race groups"]
    except (OSError, ValueError, KeyError):
        return None
    return groups[0]["waiting"] if groups else None


def start_with_launcher(system, *launched: str):
    """Register a `start` worker whose after_ launches ``launched`` workers."""
    system.worker_module("start")
    workers = ", ".join(f"NextWorker({m!r})" for m in launched)
    system.after(f"def after_start(msg, config, checklist):\n    return [{workers}]\n")
    system.start()
    assert system.run_worker("start").returncode == 0


@pytest.mark.timeout(60)
def test_silent_death_reaches_after_function_as_crash(system):
    system.worker_module("dies", "os._exit(7)")
    record_after(system, "dies")
    start_with_launcher(system, "dies")
    wait_for(lambda: after_calls(system) == ["dies crash"], what="after_dies with crash")
    assert "dies (pid" in system.log() and "exited with code 7 without reporting" in system.log()


@pytest.mark.timeout(60)
def test_timeout_ends_the_worker_and_reaches_after_as_crash(system):
    system.worker_module("hangs", "time.sleep(60)", timeout=2, **{"timeout grace": 2})
    record_after(system, "hangs")
    start_with_launcher(system, "hangs")
    started = time.monotonic()
    wait_for(lambda: after_calls(system) == ["hangs crash"], timeout=20, what="after_hangs")
    assert time.monotonic() - started < 2 + 2 + 3
    log = system.log()
    assert "ran past its timeout of 2 s; sending SIGTERM" in log
    assert "stopped by signal SIGTERM; nothing more is reported" in log
    assert "ran past its timeout of 2 s and was stopped; handling it as a crash" in log


@pytest.mark.timeout(60)
def test_sigkill_after_grace_for_a_worker_that_ignores_sigterm(system):
    system.worker_module(
        "stubborn",
        "import signal\nsignal.signal(signal.SIGTERM, signal.SIG_IGN)\ntime.sleep(60)",
        timeout=1,
        **{"timeout grace": 1},
    )
    record_after(system, "stubborn")
    start_with_launcher(system, "stubborn")
    wait_for(lambda: after_calls(system) == ["stubborn crash"], timeout=20, what="after_stubborn")
    assert "sending SIGKILL" in system.log()


@pytest.mark.timeout(60)
def test_fails_twice_then_succeeds_calls_after_once_with_success(system):
    system.worker_module(
        "flaky",
        """
        import pathlib
        counter = pathlib.Path("flaky.count")
        tries = int(counter.read_text()) + 1 if counter.exists() else 1
        counter.write_text(str(tries))
        if tries <= 2:
            raise WorkerError("not yet")
        return {"tries": tries}
        """,
        retries=2,
        **{"retry delay": [0.1, 0.2]},
    )
    record_after(system, "flaky")
    start_with_launcher(system, "flaky")
    wait_for(lambda: after_calls(system), what="after_flaky")
    wait_for(
        lambda: (
            not system.request({"source": "nowcast.status", "type": "status"})["payload"]["running"]
        ),
        what="no worker running",
    )
    assert after_calls(system) == ["flaky success"]
    assert system.checklist()["flaky"] == {"tries": 3}
    assert system.log().count("launching it again") == 2


@pytest.mark.timeout(60)
def test_two_race_groups_at_once_one_with_two_instances(system):
    system.worker_module("fork")
    system.worker_module("get", "time.sleep(0.3)\nreturn {parsed_args.arg: True}")
    system.worker_module("other", "return {'other': True}")
    system.worker_module("model", "open('model.marker', 'a').write('x')\nreturn {}")
    system.worker_module("report", "open('report.marker', 'a').write('x')\nreturn {}")
    system.after(
        """
        def after_fork(msg, config, checklist):
            return [NextWorker("get", ["--arg", "gfs"]), NextWorker("get", ["--arg", "hrdps"])], {"get"}
        def after_get(msg, config, checklist):
            return [NextWorker("model")]
        def after_other(msg, config, checklist):
            return [NextWorker("report")]
        def after_start(msg, config, checklist):
            return [NextWorker("fork"), NextWorker("other")], {"other"}
        def after_model(msg, config, checklist):
            return []
        def after_report(msg, config, checklist):
            return []
        """
    )
    system.worker_module("start")
    system.start()
    assert system.run_worker("start").returncode == 0
    wait_for(
        lambda: (system.dir / "model.marker").exists() and (system.dir / "report.marker").exists(),
        timeout=30,
        what="model and report",
    )
    wait_for(
        lambda: (
            not system.request({"source": "nowcast.status", "type": "status"})["payload"]["running"]
        ),
        what="all workers done",
    )
    assert (system.dir / "model.marker").read_text() == "x"
    assert system.checklist()["get"] == {"gfs": True, "hrdps": True}
    log = system.log()
    assert log.index("checklist updated with [get]") < log.index(
        "launching NextWorker(module='model'"
    )


@pytest.mark.timeout(90)
def test_restarted_manager_notices_silent_death_of_a_worker_it_did_not_launch(system):
    system.worker_module("slow", "time.sleep(3)\nos._exit(9)")
    record_after(system, "slow")
    start_with_launcher(system, "slow")
    wait_for(lambda: watched(system) == ["slow"], what="slow launched and recorded on disk")
    system.kill_manager()
    system.start_manager()
    assert "watching 1 worker(s) launched by the previous manager: slow" in system.log()
    wait_for(
        lambda: after_calls(system) == ["slow crash"], timeout=20, what="after_slow with crash"
    )
    assert "exit code unknown" in system.log()


@pytest.mark.timeout(60)
@pytest.mark.parametrize(
    "key, value",
    [
        ("retries", "twice"),
        ("retries", -1),
        ("timeout", "soon"),
        ("timeout", 0),
        ("timeout grace", -5),
        ("retry delay", "later"),
    ],
)
def test_retries_and_timeout_settings_are_checked(system, key, value):
    system.worker_module("bad", **{key: value})
    system.write()
    manager = system.spawn("nowcast.manager")
    assert manager.wait(10) == 2
    output = (system.dir / "nowcast.manager.out").read_text()
    [line] = [
        line for line in output.splitlines() if f"'message registry: workers: bad: {key}'" in line
    ]
    assert str(system.config_file) in line
    assert repr(value) in line
    assert "Traceback" not in output


@pytest.mark.timeout(60)
def test_the_least_values_the_settings_allow_are_taken(system):
    least = {"retries": 0, "retry delay": 0, "timeout": 0.001, "timeout grace": 0.001}
    system.worker_module("edge", **least)
    system.start()  # the manager listens: it took the config
    assert system.manager.poll() is None


@pytest.mark.timeout(90)
def test_a_race_group_survives_a_manager_restart(system):
    system.worker_module("fork")
    system.worker_module("quick")
    system.worker_module("slow", "time.sleep(2)\nreturn {'slow': True}")
    system.worker_module("joined", "open('joined.marker', 'a').write('x')\nreturn {}")
    system.after(
        """
        def after_fork(msg, config, checklist):
            return [NextWorker("quick"), NextWorker("slow")], {"quick", "slow"}
        def after_quick(msg, config, checklist):
            return [NextWorker("joined")]
        def after_slow(msg, config, checklist):
            return [NextWorker("joined")]
        def after_joined(msg, config, checklist):
            return []
        """
    )
    system.start()
    assert system.run_worker("fork").returncode == 0
    wait_for(lambda: waiting(system) == {"quick": 0, "slow": 1}, what="quick's report on disk")
    system.kill_manager()
    system.start_manager()
    status = system.request({"source": "nowcast.status", "type": "status"})["payload"]
    assert status["race groups"] == [
        {
            "waiting for": {"slow": 1},
            "reported": ["quick"],
            "then launch": [{"module": "joined", "args": [], "host": "localhost"}],
        }
    ]
    wait_for(lambda: (system.dir / "joined.marker").exists(), timeout=30, what="joined")
    wait_for(lambda: "joined" in system.checklist(), what="joined to report")
    assert (system.dir / "joined.marker").read_text() == "x"


@pytest.mark.timeout(60)
def test_sigkill_reaches_the_group_when_the_leader_exits_on_sigterm(system):
    """The worker exits on SIGTERM; a child of it that ignores SIGTERM must still
    be killed when the grace period ends."""
    system.worker_module(
        "leader",
        "import subprocess\n"
        "subprocess.Popen([sys.executable, '-c', 'import os, signal, time; "
        "signal.signal(signal.SIGTERM, signal.SIG_IGN); "
        'open("child.pid", "w").write(str(os.getpid())); time.sleep(60)\'])\n'
        "time.sleep(60)",
        timeout=1,
        **{"timeout grace": 1},
    )
    record_after(system, "leader")
    start_with_launcher(system, "leader")
    pid_file = system.dir / "child.pid"
    wait_for(lambda: pid_file.exists() and pid_file.read_text(), what="the child")
    child = int(pid_file.read_text())
    wait_for(lambda: after_calls(system) == ["leader crash"], timeout=20, what="after_leader")
    wait_for(lambda: not _running(child), timeout=10, what="the child to be killed")
    assert "sending SIGKILL to it" in system.log()


def _running(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            return f.read().rsplit(b")", 1)[-1].split()[0] != b"Z"
    except OSError:
        return False


@pytest.mark.timeout(90)
def test_a_worker_run_by_hand_does_not_take_over_a_launched_ones_record(system):
    """Messages are matched to launched workers by the token the launch gave
    them, not by name: a hand-run failure is not the launched worker's try."""
    system.worker_module(
        "slow",
        """
        import os, time
        if parsed_args.arg == "fail":
            raise WorkerError("run by hand, failing")
        while not os.path.exists("go"):
            time.sleep(0.05)
        return {"launched": "done"}
        """,
        retries=1,
    )
    record_after(system, "slow")
    start_with_launcher(system, "slow")
    wait_for(lambda: "slow" in " ".join(watched(system)), what="slow to be launched")
    assert system.run_worker("slow", "--arg", "fail").returncode == 1
    (system.dir / "go").write_text("")
    wait_for(lambda: len(after_calls(system)) == 2, what="both reports")
    time.sleep(0.5)
    assert sorted(after_calls(system)) == ["slow failure", "slow success"]
    log = system.log()
    assert "launching it again" not in log
    assert log.count("launching NextWorker(module='slow'") == 1


LAUNCHED_ONCE = """
import os, time
with open("b.runs", "a") as f:
    f.write("run\\n")
while not os.path.exists("go"):
    time.sleep(0.05)
return {"b": "done"}
"""


def as_if_killed_before_the_launch_was_recorded(system, journal: bool) -> None:
    """Put the files on disk as a manager killed between launching ``b`` and the
    commit that records it leaves them: ``b`` still a pending launch (with its
    token) in the state file, and, if ``journal``, its line in the launch journal."""
    path = system.dir / "checklist.yaml.manager-state.json"
    state = json.loads(path.read_text())
    [record] = state["supervision"]["running"]
    state["supervision"]["running"] = []
    state["pending launches"] = [
        {"module": "b", "args": [], "host": "localhost", "try": 1, "token": record["token"]}
    ]
    path.write_text(json.dumps(state))
    line = {
        "token": record["token"],
        "pid": record["pid"],
        "proc start": record["proc_start"],
        "started": record["started"],
    }
    (system.dir / "checklist.yaml.manager-launches").write_text(
        json.dumps(line) + "\n" if journal else ""
    )


@pytest.mark.timeout(120)
@pytest.mark.parametrize("found_by", ["launch journal", "environment"])
def test_a_launch_the_killed_manager_made_but_did_not_record_is_not_made_again(system, found_by):
    system.worker_module("a")
    system.worker_module("b", LAUNCHED_ONCE)
    system.after("def after_a(msg, config, checklist):\n    return [NextWorker('b')]\n")
    record_after(system, "b")
    if found_by == "environment":
        system.config_extra["run"] = {"warm start": False}  # cold: the token is in /proc
    system.start()
    assert system.run_worker("a").returncode == 0
    wait_for(lambda: (system.dir / "b.runs").exists(), what="b to start")
    wait_for(lambda: watched(system) == ["b"], what="b's launch to be recorded")
    system.kill_manager()
    as_if_killed_before_the_launch_was_recorded(system, journal=found_by == "launch journal")
    system.start_manager()
    wait_for(lambda: "watching it, not launching it again" in system.log(), what="adoption")
    (system.dir / "go").write_text("")
    wait_for(lambda: system.checklist().get("b") == {"b": "done"}, what="b to report")
    assert after_calls(system) == ["b success"]
    assert (system.dir / "b.runs").read_text() == "run\n"
    wait_for(lambda: watched(system) == [], what="b's exit to be handled")


class _Process:
    """What Supervision.add reads of a launched process."""

    pid = 4242
    proc_start = "1"

    def poll(self):
        return None


def test_the_manager_wakes_for_the_nearest_timeout_grace_or_retry():
    from nowcast.next_worker import NextWorker
    from nowcast.supervision import Retry, Supervision

    table = Supervision()
    assert table.next_deadline() is None
    slow = table.add(NextWorker("slow"), _Process(), {"timeout": 30}, started=1000.0)
    table.add(NextWorker("untimed"), _Process(), {}, started=1000.0)
    assert table.next_deadline() == 1030.0
    table.retries.append(Retry(NextWorker("again"), 2, 1020.0))
    assert table.next_deadline() == 1020.0
    table.retries.clear()
    slow.term_sent = 1031.0  # SIGTERM sent: the grace period's end is next
    assert table.next_deadline() == 1031.0 + slow.grace
    slow.kill_sent = 1031.0 + slow.grace
    assert table.next_deadline() is None
    table.stopping.append([4243, 1040.0])
    assert table.next_deadline() == 1040.0
