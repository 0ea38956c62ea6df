"""The manager supervises the workers it launches: deaths, timeouts, retries,
race groups, restarts."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time

import attrs
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


def manager_state(system) -> dict:
    """The manager's state file, or {} while there is none whole to read."""
    path = system.dir / f"{system.checklist_file.name}.manager-state.json"
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return {}


def watched(system) -> list[str]:
    """The names of the launched workers the manager's state file holds."""
    running = manager_state(system).get("supervision", {}).get("running", [])
    return [w["module"] for w in running]


def waiting(system) -> dict | None:
    """Whom the race group in the manager's state file waits for."""
    groups = manager_state(system).get("race groups")
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
    # nothing else follows it (after_dies returns []): its handling makes a commit
    # of its own, and the state file stops listing the worker as running
    wait_for(lambda: watched(system) == [], timeout=5, what="the state file without it")


@pytest.mark.timeout(60)
def test_a_launched_worker_is_written_as_running_while_it_runs(system):
    # the launch itself waits for no message: the commit after it comes within
    # defaults.LATER_COMMIT_DELAY (0.5 s), while the worker still runs; with the
    # history off, no history row asks for that commit: the launch itself must
    system.config_extra["history"] = {"enabled": False}
    system.worker_module("sleeps", "time.sleep(30)")
    record_after(system, "sleeps")
    start_with_launcher(system, "sleeps")
    wait_for(lambda: watched(system) == ["sleeps"], timeout=5, what="the state file with it")
    assert after_calls(system) == []


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
        ("retry delay", [5, -1]),
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


# The table itself, in-process, with real processes where it looks at them.


class _Proc:
    """A launched process as the manager hands it to Supervision.add."""

    def __init__(self, pid: int, proc_start: str | None = "1") -> None:
        self.pid = pid
        self.proc_start = proc_start

    def poll(self):
        return None


def _members(pgid: int) -> list[int]:
    """The processes of group ``pgid`` that are not zombies, read from the
    kernel's process table independently of nowcast.supervision."""
    members = []
    for entry in filter(str.isdigit, os.listdir("/proc")):
        try:
            with open(f"/proc/{entry}/stat", "rb") as f:
                fields = f.read().rsplit(b")", 1)[-1].split()
        except OSError:
            continue
        if int(fields[2]) == pgid and fields[0] != b"Z":
            members.append(int(entry))
    return members


def _zombie(pid: int) -> bool:
    return not _running(pid)


@pytest.fixture
def processes():
    """Start processes; kill each one's process group and reap it at the end."""
    started = []

    def start(*args, **kwargs):
        process = subprocess.Popen(list(args), start_new_session=True, **kwargs)
        started.append(process)
        return process

    yield start
    for process in started:
        try:
            os.killpg(process.pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass
        process.wait()


def test_a_worker_is_named_by_its_module_s_last_part_and_failures_are_failure_or_crash():
    from nowcast.supervision import is_failure, worker_name

    assert worker_name("workers.get_forcing") == "get_forcing"
    assert worker_name("nowcast.workers.rotate_logs") == "rotate_logs"
    assert worker_name("get_forcing") == "get_forcing"
    assert [t for t in ("crash", "failure", "failure gfs") if not is_failure(t)] == []
    # types sorting before and after "crash" that report no failure: not retried
    assert [t for t in ("complete", "checked", "b", "success", "zzz") if is_failure(t)] == []


def test_a_message_is_matched_by_its_launch_token_else_by_name_the_oldest_first():
    from nowcast.next_worker import NextWorker
    from nowcast.supervision import Supervision

    table = Supervision()
    pids = iter(range(5000, 5100))

    def launch(module, token):
        return table.add(NextWorker(module), _Proc(next(pids)), {}, token=token)

    zed, a, t3, t1, t2 = (
        launch("workers.zed", "tz"),
        launch("workers.a", "ta"),
        launch("workers.get", "t3"),
        launch("workers.get", "t1"),
        launch("workers.get", "t2"),
    )
    assert table.claim("get", "get:99:other:1") is None  # run by hand: another token
    assert table.claim("get", "m1") is None  # another client's id, not a nowcast worker's
    assert not any(w.reported for w in table.running)
    assert table.claim("get", "get:5004:t2:3") is t2
    assert t2.reported and not (t1.reported or t3.reported or a.reported or zed.reported)
    assert table.claim("get", "get:5004:t2:4") is None  # that one has reported
    # no id (a NEMO_Nowcast worker's message): by name, the oldest first
    assert table.claim("get", None) is t3
    assert table.claim("get", None) is t1
    assert table.claim("get", None) is None
    assert table.claim("zed", None) is zed
    # a record without a token (a batch job, an earlier version) is matched by name
    table.running.append(attrs.evolve(a, pid=5050, token=None, reported=False))
    assert table.claim("a", "a:1:unknown:1") is table.running[-1]


def test_sigterm_at_the_timeout_sigkill_after_the_grace_from_the_registry():
    from nowcast import defaults
    from nowcast.next_worker import NextWorker
    from nowcast.supervision import Supervision

    table = Supervision()
    table.add(NextWorker("untimed"), _Proc(5001), {}, started=1000.0)
    timed = table.add(
        NextWorker("timed"), _Proc(5002), {"timeout": 5, "timeout grace": 3}, started=1000.0
    )
    default = table.add(NextWorker("default"), _Proc(5003), {"timeout": 7}, started=1000.0)
    assert default.grace == defaults.TIMEOUT_GRACE and timed.grace == 3
    assert table.next_deadline() == 1005.0
    assert table.overdue(1004.99) == []
    # at the very time next_deadline gave: the manager wakes for it
    assert table.overdue(1005.0) == [(timed, signal.SIGTERM)]
    assert table.next_deadline() == 1007.0
    assert table.overdue(1007.5) == [(default, signal.SIGTERM)]
    assert table.overdue(1007.99) == []
    assert table.overdue(1008.0) == [(timed, signal.SIGKILL)]
    assert table.next_deadline() == 1007.5 + defaults.TIMEOUT_GRACE
    assert table.overdue(1100.0) == [(default, signal.SIGKILL)]
    assert table.overdue(1200.0) == [] and table.next_deadline() is None


def test_describe_exit_names_the_signal_or_the_code():
    from nowcast.supervision import describe_exit

    assert describe_exit(-9) == "was killed by SIGKILL"
    assert describe_exit(-1) == "was killed by SIGHUP"
    assert describe_exit(0) == "exited with code 0"
    assert describe_exit(7) == "exited with code 7"
    assert "exit code unknown" in describe_exit(None)
    unnamed = signal.SIGRTMIN + 1  # a real-time signal: Python has no name for it
    assert describe_exit(-unnamed) == f"was killed by signal {unnamed}"


@pytest.mark.timeout(30)
def test_proc_start_is_the_kernel_s_start_time_of_the_process(processes):
    from nowcast.supervision import proc_start

    before = time.time()
    process = processes("sleep", "5")
    after = time.time()
    with open("/proc/stat") as f:
        [boot] = [int(line.split()[1]) for line in f if line.startswith("btime ")]
    started = boot + int(proc_start(process.pid)) / os.sysconf("SC_CLK_TCK")
    assert before - 1.5 < started < after + 1.5  # btime is in whole seconds
    process.kill()
    process.wait()
    assert proc_start(process.pid) is None


@pytest.mark.timeout(30)
def test_exits_are_seen_for_children_and_by_pid_without_harming_live_workers(processes):
    """What poll_exits finds: a child's exit code; by pid (a previous manager's
    workers), a live one left alone and running, and a gone one, a zombie or a
    reused pid (another start time) taken as exited. One still running before
    another never hides the other's exit."""
    from nowcast.next_worker import NextWorker
    from nowcast.supervision import Launched, Supervision, proc_start

    table = Supervision()
    batch_job = Launched("workers.on_hpc", [], "hpc", None, time.time(), job={"id": "17"})
    table.running.append(batch_job)  # watched through the batch system instead
    running_child = processes("sleep", "30")
    table.add(NextWorker("workers.busy"), running_child, {})
    live = processes("sleep", "30")

    def by_pid(name, pid, start):
        launched = Launched(f"workers.{name}", [], "localhost", pid, time.time(), proc_start=start)
        table.running.append(launched)
        return launched

    by_pid("live", live.pid, proc_start(live.pid))
    zombie = processes("true")
    zombie_start = proc_start(zombie.pid)
    gone = processes("true")
    gone.wait()
    reused = processes("sleep", "30")
    exits = processes("sh", "-c", "read line; exit 7", stdin=subprocess.PIPE)
    child = table.add(NextWorker("workers.exits"), exits, {})
    assert child.proc_start == proc_start(exits.pid) is not None
    wait_for(lambda: _zombie(zombie.pid), what="a zombie")
    dead = [
        by_pid("zombie", zombie.pid, zombie_start),
        by_pid("gone", gone.pid, "1"),
        by_pid("reused", reused.pid, str(int(proc_start(reused.pid)) + 1)),
    ]
    assert table.poll_exits() == dead and all(w.exited for w in dead)
    for launched in dead:
        table.remove(launched)
    assert table.poll_exits() == []  # the child that exits with 7 still runs
    exits.stdin.close()
    assert wait_for(table.poll_exits, what="the exit") == [child]
    assert child.exited and child.exit_code == 7
    time.sleep(0.2)
    late = by_pid("late", gone.pid, "1")
    assert table.poll_exits() == [child, late]  # noted, until the manager removes them
    table.remove(child)
    table.remove(late)
    assert table.poll_exits() == []
    assert live.poll() is None and running_child.poll() is None


@pytest.mark.timeout(30)
def test_sigterm_reaches_the_worker_s_whole_process_group(processes):
    from nowcast.supervision import Launched, signal_worker

    worker = processes("sh", "-c", "sleep 30 & wait")
    wait_for(lambda: len(_members(worker.pid)) == 2, what="the worker and its child")
    launched = Launched("workers.w", [], "localhost", worker.pid, time.time())
    signal_worker(launched, signal.SIGTERM)
    assert worker.wait(5) == -signal.SIGTERM
    wait_for(lambda: not _members(worker.pid), timeout=5, what="its child")


@pytest.mark.timeout(30)
def test_only_a_timed_out_local_worker_s_group_with_live_processes_gets_sigkill(processes):
    """The group of a worker stopped for its timeout is sent SIGKILL when the
    grace ends if something still runs in it, never before; a worker that
    exited by itself, one on another host, and a group that is empty or holds
    only zombies are not kept."""
    from nowcast.supervision import Launched, Supervision, kill_group

    zombie = processes("true")
    wait_for(lambda: _zombie(zombie.pid), what="a zombie")
    leader = processes("sh", "-c", "sleep 30 & exit 0")  # its child runs on
    assert leader.wait(5) == 0
    assert _members(leader.pid)
    gone = processes("true")
    gone.wait()
    table = Supervision()

    def exited(pid, host="localhost", term_sent=1000.0, kill_sent=None):
        launched = Launched(
            "workers.w", [], host, pid, 990.0, timeout=10, grace=3,
            term_sent=term_sent, kill_sent=kill_sent,
        )  # fmt: skip
        table.running.append(launched)
        table.remove(launched)

    exited(leader.pid, term_sent=None)  # it exited by itself
    exited(leader.pid, kill_sent=1003.0)  # sent SIGKILL already
    exited(leader.pid, host="hpc")
    exited(gone.pid)
    exited(zombie.pid)
    assert table.stopping == []
    exited(leader.pid)
    assert table.stopping == [[leader.pid, 1003.0]]
    assert table.next_deadline() == 1003.0
    assert table.groups_to_kill(1002.99) == []
    assert table.stopping == [[leader.pid, 1003.0]]
    assert table.groups_to_kill(1003.0) == [leader.pid]
    assert table.stopping == []
    kill_group(leader.pid)
    wait_for(lambda: not _members(leader.pid), timeout=5, what="the group")


STOPS_UNDER_PTRACE = """
import ctypes, os, signal, sys
if ctypes.CDLL(None, use_errno=True).ptrace(0, 0, None, None) != 0:  # PTRACE_TRACEME
    sys.exit(f"ptrace: errno {ctypes.get_errno()}")
os.kill(os.getpid(), signal.SIGSTOP)
"""


@pytest.mark.timeout(30)
def test_a_worker_stopped_under_a_debugger_still_runs(processes):
    """A process in a tracing stop (state ``t``, as under gdb or strace) has not
    exited: watched by pid it is not handled as gone, and its group is still
    sent SIGKILL after a timeout."""
    from nowcast.supervision import Launched, Supervision, proc_start

    traced = processes(sys.executable, "-c", STOPS_UNDER_PTRACE)
    try:
        wait_for(lambda: _state(traced.pid) in (b"t", b"Z"), what="the tracing stop")
        assert _state(traced.pid) == b"t", "the process could not be traced"
        table = Supervision()
        launched = Launched(
            "workers.w", [], "localhost", traced.pid, 990.0, proc_start=proc_start(traced.pid),
            timeout=10, grace=3, term_sent=1000.0,
        )  # fmt: skip
        table.running.append(launched)
        assert table.poll_exits() == []
        table.remove(launched)
        assert table.stopping == [[traced.pid, 1003.0]]
    finally:
        os.kill(traced.pid, signal.SIGKILL)  # not Popen.kill: Popen takes a stop for an exit
        while True:  # this process traces it: the stops are reported to it as well
            _, status = os.waitpid(traced.pid, 0)
            if os.WIFEXITED(status) or os.WIFSIGNALED(status):
                traced.returncode = -signal.SIGKILL
                break


def _state(pid: int) -> bytes:
    with open(f"/proc/{pid}/stat", "rb") as f:
        return f.read().rsplit(b")", 1)[-1].split()[0]


@pytest.mark.timeout(60)
def test_a_retry_that_fell_due_while_the_manager_was_down_is_launched_at_its_start(system):
    # nothing else wakes the restarted manager: no messages, no fork server, no
    # history rows to commit; its first poll must not wait for an event
    system.worker_module(
        "a",
        "with open('a.runs', 'a') as f:\n    f.write('run\\n')\nraise RuntimeError('fails')",
        retries=1,
        **{"retry delay": 2},
    )
    system.worker_module("start")
    system.after("def after_start(msg, config, checklist):\n    return [NextWorker('a')]\n")
    system.config_extra["run"] = {"warm start": False}
    system.config_extra["history"] = {"enabled": False}
    system.start()
    system.run_worker("start")
    wait_for(lambda: "launching it again in 2 s" in system.log(), what="the retry to be queued")
    wait_for(
        lambda: manager_state(system).get("supervision", {}).get("retries"),
        what="the retry in the state file",
    )
    system.kill_manager()
    time.sleep(2.5)  # the retry falls due while no manager runs
    system.start_manager()
    wait_for(lambda: (system.dir / "a.runs").read_text() == "run\nrun\n", what="the retry")
