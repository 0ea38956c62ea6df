"""The manager records runs, messages and events in the history database, in the
same commit as the checklist: real broker, manager and workers on loopback."""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys

import pytest
import yaml
from conftest import wait_for

from nowcast import history

CHAIN = """
def after_first(msg, config, checklist):
    return [NextWorker("second", ["--arg", "x"])] if msg.type == "success" else []

def after_second(msg, config, checklist):
    return []
"""


def db_path(system) -> str:
    return f"{system.checklist_file}.history.sqlite"


def query(system, sql: str, *params) -> list[tuple]:
    conn = sqlite3.connect(f"file:{db_path(system)}?mode=ro", uri=True)
    try:
        return conn.execute(sql, params).fetchall()
    finally:
        conn.close()


def runs(system) -> list[dict]:
    conn = history.open_readonly(db_path(system))
    try:
        return history.runs_since(conn, 1)
    finally:
        conn.close()


def events(system) -> list[str]:
    return [e for (e,) in query(system, "SELECT event FROM events ORDER BY seq")]


@pytest.mark.timeout(60)
def test_a_chain_is_recorded_with_who_launched_what_and_how_it_ended(system):
    system.worker_module("first", "time.sleep(0.3); return {'n': 1}")
    system.worker_module("second", "sys.exit(3)")  # dies without reporting
    system.after(CHAIN)
    system.start()
    assert system.run_worker("first").returncode == 0
    wait_for(
        lambda: any(r["worker"] == "second" and r["exit_code"] for r in runs(system)),
        what="second's exit in the history",
    )
    first, second = runs(system)
    assert first["launched_by"] == "by hand" and first["outcome"] == "success"
    assert first["duration"] >= 0.3  # from the process's start, not from its message
    assert first["launched"] is None and first["cycle"] == first["id"]
    assert second["launched_by"] == "after_first" and second["parent"] == first["id"]
    assert second["cycle"] == first["id"] and second["day"] == first["day"]
    assert second["outcome"] == "crash" and second["exit_code"] == 3 and second["signal"] is None
    assert second["args"] == ["--arg", "x"] and second["pid"] and second["try"] == 1
    assert second["launched"] == second["started"] <= second["ended"]
    messages = query(system, "SELECT source, type, payload, reply, run FROM messages")
    assert messages == [("first", "success", '{"n": 1}', "ack", first["id"])]
    wait_for(lambda: "cycle complete" in events(system), what="cycle complete")
    assert events(system) == ["manager started", "crash", "cycle complete"]
    detail = json.loads(
        query(system, "SELECT detail FROM events WHERE event='cycle complete'")[0][0]
    )
    assert detail["failed"] == ["second (crash)"]


@pytest.mark.timeout(60)
def test_retries_timeouts_and_their_events(system):
    system.worker_module("flaky", "raise WorkerError('no data')", retries=1, **{"retry delay": 0})
    system.worker_module("slow", "time.sleep(30)", timeout=0.5, **{"timeout grace": 1})
    system.after(
        "def after_starter(msg, config, checklist):\n"
        "    return [NextWorker('flaky'), NextWorker('slow')]\n"
        "def after_flaky(msg, config, checklist):\n    return []\n"
        "def after_slow(msg, config, checklist):\n    return []\n"
    )
    system.worker_module("starter")
    system.start()
    assert system.run_worker("starter").returncode == 0
    wait_for(lambda: "cycle complete" in events(system), timeout=30, what="cycle complete")
    by_worker = {}
    for r in runs(system):
        by_worker.setdefault(r["worker"], []).append(r)
    tries = by_worker["flaky"]
    assert [(r["try"], r["outcome"], r["launched_by"]) for r in tries] == [
        (1, "failure", "after_starter"),
        (2, "failure", "retry"),
    ]
    assert tries[1]["parent"] == tries[0]["id"] and tries[1]["cycle"] == tries[0]["cycle"]
    (slow,) = by_worker["slow"]
    assert slow["outcome"] == "timeout"
    # its own exit after SIGTERM (128 + 15), or SIGTERM itself if it came before the
    # worker's handler was set (a loaded machine)
    assert (slow["exit_code"], slow["signal"]) in [(143, None), (None, 15)]
    seen = events(system)
    assert seen.count("failure") == 2 and seen.count("retry") == 1
    assert seen.count("retries exhausted") == 1 and seen.count("timeout") == 1
    assert "crash" not in seen


@pytest.mark.timeout(60)
def test_an_unexpected_stop_is_seen_at_the_next_start_a_clean_one_is_not(system):
    system.start()
    system.kill_manager()
    system.start_manager()
    wait_for(lambda: events(system).count("manager started") == 2, what="second start")
    assert events(system) == ["manager started", "manager stopped unexpectedly", "manager started"]
    system.manager.terminate()
    assert system.manager.wait(10) == 0
    system.start_manager()
    wait_for(lambda: events(system).count("manager started") == 3, what="third start")
    assert events(system)[3:] == ["manager stopped", "manager started"]


@pytest.mark.timeout(60)
def test_a_write_the_history_lacks_is_written_again_from_the_state_file(system):
    # as a manager killed between the state file's rename and the history's
    # transaction leaves things: the state file carries a write the database lacks
    system.start()
    system.manager.terminate()
    assert system.manager.wait(10) == 0
    state_file = system.checklist_file.with_name("checklist.yaml.manager-state.json")
    state = json.loads(state_file.read_text())
    answer = '{"source": "manager", "type": "ack", "payload": null, "id": "w-1.2.3"}'
    state["history commit"] = 99
    state["history rows"] = [
        [],
        [],
        [],
        [["w-1.2.3", 5.0, "w", "success", None, "ack", "w:7:4", answer]],
        [],
        [["w:7:4", "w", "by hand", None, 4.0, 5.0, "success", 7, "1970-01-01"]],
    ]
    state_file.write_text(json.dumps(state))
    system.start_manager()
    wait_for(lambda: events(system).count("manager started") == 2, what="the second start")
    assert query(system, "SELECT id, answer FROM messages") == [("w-1.2.3", answer)]
    assert query(system, "SELECT id, module, launched_by, ended, try, cycle FROM runs") == [
        ("w:7:4", "w", "by hand", 5.0, 1, "w:7:4")
    ]
    assert query(system, "SELECT value FROM meta WHERE key = 'state commit'") == [(99,)]
    assert "wrote its rows again" in system.log()


@pytest.mark.timeout(60)
def test_history_off_writes_no_database(system):
    system.config_extra["history"] = {"enabled": False}
    system.worker_module("first")
    system.after("def after_first(msg, config, checklist):\n    return []\n")
    system.start()
    assert system.run_worker("first").returncode == 0
    assert system.checklist()["first"] == {"done": True}
    assert not (system.dir / "checklist.yaml.history.sqlite").exists()


@pytest.mark.timeout(30)
def test_a_bad_history_section_stops_the_manager_naming_the_key(system):
    system.config_extra["history"] = {"keep days": "forever"}
    system.start(manager=False)
    manager = system.spawn("nowcast.manager")
    assert manager.wait(20) != 0
    out = (system.dir / "nowcast.manager.out").read_text()
    assert "history: keep days" in out and "'forever'" in out and "Traceback" not in out


@pytest.mark.timeout(120)
def test_killed_mid_burst_history_checklist_and_replies_agree(system):
    """kill -9 the manager twice while 60 workers report: every acknowledged
    message is in the history, and every message in the history is in the
    checklist (the history is written after it, in the same commit)."""
    system.zmq_extra.update({"reply timeout": 1, "give up after": 60})
    system.worker_module("reporter", "return {f'item-{parsed_args.arg}': int(parsed_args.arg)}")
    system.after("def after_reporter(msg, config, checklist):\n    return []\n")
    system.start()
    workers = [system.launch_worker("reporter", "--arg", str(i)) for i in range(60)]
    for kill in range(2):
        wait_for(
            lambda n=kill: len(system.checklist().get("reporter", {})) > 10 * (n + 1),
            timeout=60,
            what="some reports",
        )
        system.kill_manager()
        # right after the kill: journal (acked) <= history <= checklist
        checklist = set(yaml.safe_load(system.checklist_file.read_text())["reporter"])
        recorded = {
            json.loads(p).popitem()[0]
            for (p,) in query(system, "SELECT payload FROM messages WHERE source='reporter'")
        }
        # the ids acknowledged: in the reply journal, or in the history with their reply
        journal = system.checklist_file.with_name("checklist.yaml.manager-replies.jsonl")
        lines = journal.read_text().splitlines() if journal.exists() else []
        in_journal = {json.loads(line)[0] for line in lines if line}
        answered = query(system, "SELECT id, answer FROM messages WHERE answer IS NOT NULL")
        assert answered, "the history keeps the replies of a burst's messages"
        assert all(json.loads(answer)["id"] == i for i, answer in answered)
        acked_ids = {i for (i,) in query(system, "SELECT id FROM messages")}
        assert recorded <= checklist
        assert in_journal <= acked_ids
        system.start_manager()
    assert [w.wait(90) for w in workers] == [0] * 60
    checklist = system.checklist()["reporter"]
    assert checklist == {f"item-{i}": i for i in range(60)}
    rows = query(system, "SELECT id, payload FROM messages WHERE source='reporter'")
    assert len(rows) == 60 == len({i for i, _ in rows})  # each message once, re-sends not twice
    outcomes = query(
        system, "SELECT count(*) FROM runs WHERE worker='reporter' AND outcome='success'"
    )
    assert outcomes == [(60,)]
    assert events(system).count("manager stopped unexpectedly") == 2


def rows_in_database_file(path: str, directory) -> int | None:
    """The messages the database file holds without its log (a copy of it
    alone); None while a checkpoint writes it."""
    import shutil

    copy = directory / "database-file-alone.sqlite"
    for leftover in (copy, copy.with_name(copy.name + "-wal"), copy.with_name(copy.name + "-shm")):
        leftover.unlink(missing_ok=True)
    shutil.copyfile(path, copy)
    conn = sqlite3.connect(copy)
    try:
        return conn.execute("SELECT count(*) FROM messages").fetchone()[0]
    except sqlite3.DatabaseError:
        return None
    finally:
        conn.close()


def log_restarts(path: str) -> int:
    """How many times SQLite's log was written from its start again after a
    checkpoint: the checkpoint sequence number in its header (bytes 12-15)."""
    with open(f"{path}-wal", "rb") as f:
        return int.from_bytes(f.read(16)[12:16], "big")


@pytest.mark.timeout(60)
def test_the_history_log_stays_small_and_is_checkpointed_once_the_manager_is_idle(system, tmp_path):
    """400 commits of one message each: the log is checkpointed every 50 commits
    (after their replies) and written from its start again, so its file stays
    at the length it was given at start, readers see every row meanwhile, and
    once the manager is idle the database file alone holds them all."""
    from nowcast import defaults

    system.register("reporter")
    system.after("def after_reporter(msg, config, checklist):\n    return []\n")
    system.start()
    path = db_path(system)
    restarts = log_restarts(path)
    assert os.path.getsize(f"{path}-wal") == defaults.HISTORY_LOG_PREALLOCATE
    for i in range(400):
        message = {"source": "reporter", "type": "success", "payload": {f"i{i}": i}, "id": f"r-{i}"}
        assert system.request(message)["type"] == "ack"
    assert log_restarts(path) - restarts >= 6
    assert os.path.getsize(f"{path}-wal") == defaults.HISTORY_LOG_PREALLOCATE
    assert query(system, "SELECT count(*) FROM messages WHERE source = 'reporter'") == [(400,)]
    wait_for(
        lambda: (rows_in_database_file(path, tmp_path) or 0) >= 400,
        timeout=10,
        what="the rows in the database file itself",
    )


@pytest.mark.timeout(60)
def test_a_stopped_manager_leaves_an_empty_log_while_a_reader_keeps_the_database_open(system):
    # SQLite removes the log when its last connection closes; with a reader's
    # open, the manager's stop moves all of it into the database file and cuts it
    from conftest import stop

    system.register("reporter")
    system.after("def after_reporter(msg, config, checklist):\n    return []\n")
    system.start()
    path = db_path(system)
    reader = history.open_readonly(path)
    try:
        for i in range(5):
            message = {"source": "reporter", "type": "success", "payload": {}, "id": f"r-{i}"}
            assert system.request(message)["type"] == "ack"
        assert os.path.getsize(f"{path}-wal") > 0
        stop(system.manager)
        assert system.manager.returncode == 0
        assert os.path.getsize(f"{path}-wal") == 0
        assert reader.execute("SELECT count(*) FROM messages").fetchone()[0] == 5
    finally:
        reader.close()


@pytest.mark.timeout(60)
def test_a_race_groups_launch_names_every_member(system):
    system.worker_module("fork")
    system.worker_module("quick")
    system.worker_module("slow", "time.sleep(0.5); return {}")
    system.worker_module("joined")
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
    wait_for(
        lambda: any(r["worker"] == "joined" and r["outcome"] for r in runs(system)),
        what="joined to report",
    )
    by = {r["worker"]: r["launched_by"] for r in runs(system)}
    assert by == {
        "fork": "by hand",
        "quick": "after_fork",
        "slow": "after_fork",
        "joined": "after_quick+after_slow",
    }


NOTIFY = """#!{python}
import json, os, sys
with open({out!r}, "a") as f:
    f.write(json.dumps({{"stdin": json.load(sys.stdin), "event": os.environ["NOWCAST_EVENT"]}}) + "\\n")
"""


def notify_script(system) -> tuple[str, object]:
    out = system.dir / "notified.jsonl"
    script = system.dir / "notify.py"
    script.write_text(NOTIFY.format(python=sys.executable, out=str(out)))
    script.chmod(0o755)

    def seen() -> list[dict]:
        if not out.exists():
            return []
        return [json.loads(line) for line in out.read_text().splitlines()]

    return str(script), seen


@pytest.mark.timeout(60)
def test_the_manager_runs_event_actions_for_failure_late_and_cycle_complete(system):
    script, seen = notify_script(system)
    system.config_extra["events"] = [
        {"on": ["failure", "crash"], "workers": ["get_rivers"], "command": [script]},
        {"on": ["late", "cycle complete"], "command": script},
    ]
    system.worker_module("prepare", "return {}")
    system.worker_module("get_rivers", "raise WorkerError('river gauge offline')")
    system.worker_module("run_model", "time.sleep(2); return {}", **{"late after": "1s"})
    system.after(
        "def after_prepare(msg, config, checklist):\n"
        "    return [NextWorker('get_rivers'), NextWorker('run_model')]\n"
        "def after_get_rivers(msg, config, checklist):\n    return []\n"
        "def after_run_model(msg, config, checklist):\n    return []\n"
    )
    system.start()
    assert system.run_worker("prepare").returncode == 0
    wait_for(lambda: len(seen()) == 3, timeout=30, what="three notifications")
    got = {n["event"]: n["stdin"] for n in seen()}
    assert got["failure"]["worker"] == "get_rivers"
    assert got["failure"]["summary"] == "get_rivers reported failure"
    assert got["late"]["worker"] == "run_model"
    assert "after the cycle's first launch" in got["late"]["summary"]
    assert got["cycle complete"]["failed"] == ["get_rivers (failure)"]
    wait_for(
        lambda: (
            query(system, "SELECT action, outcome FROM notifications") == [("command", "sent")] * 3
        ),
        what="the notifications in the history",
    )


@pytest.mark.timeout(60)
def test_a_fork_server_that_dies_is_an_event(system):
    import os
    import signal as signals

    system.worker_module("first")
    system.after("def after_first(msg, config, checklist):\n    return []\n")
    system.start()
    status = wait_for(
        lambda: (
            (s := system.request({"source": "nowcast.status", "type": "status"}))
            and s["payload"]["manager"]["fork server"]["state"] == "ready"
            and s
        ),
        what="a ready fork server",
    )
    os.kill(status["payload"]["manager"]["fork server"]["pid"], signals.SIGKILL)
    wait_for(lambda: "fork server down" in events(system), what="fork server down")


@pytest.mark.timeout(60)
def test_turning_warm_start_off_is_no_fork_server_down_event(system):
    system.worker_module("first")
    system.after("def after_first(msg, config, checklist):\n    return []\n")
    system.start()
    wait_for(lambda: ") ready: " in system.log(), what="a ready fork server")
    system.config_extra["run"] = {"warm start": False}
    system.write()
    system.manager.send_signal(signal.SIGHUP)
    wait_for(lambda: "warm start is off" in system.log(), what="the reload")
    # a message makes a commit, which would hold the event
    assert system.run_worker("first").returncode == 0
    assert "fork server down" not in events(system)


@pytest.mark.timeout(60)
def test_a_worker_the_scheduler_started_is_recorded_as_the_schedulers(system):
    system.worker_module("first", "time.sleep(0.2); return {}")
    system.after("def after_first(msg, config, checklist):\n    return []\n")
    system.start()
    # a parent whose command line names nowcast.scheduler, as the scheduler's does
    parent = "import subprocess, sys; sys.exit(subprocess.call(sys.argv[2:]))"
    done = subprocess.run(
        [
            sys.executable,
            "-c",
            parent,
            "nowcast.scheduler",
            sys.executable,
            "-m",
            "first",
            str(system.config_file),
        ],
        cwd=system.dir,
        timeout=30,
    )
    assert done.returncode == 0
    assert system.run_worker("first").returncode == 0
    scheduled, by_hand = runs(system)
    assert scheduled["launched_by"] == "scheduler" and scheduled["launched"] is not None
    assert by_hand["launched_by"] == "by hand" and by_hand["launched"] is None
    assert scheduled["duration"] >= 0.2 and scheduled["pid"] != by_hand["pid"]


@pytest.mark.timeout(60)
def test_a_history_file_that_is_not_a_database_is_moved_aside_and_a_new_one_started(system):
    system.worker_module("first")
    system.after("def after_first(msg, config, checklist):\n    return []\n")
    (system.dir / "checklist.yaml.history.sqlite").write_bytes(b"garbage, not SQLite" * 200)
    system.start()
    assert system.run_worker("first").returncode == 0
    wait_for(lambda: runs(system), what="a run in the new database")
    aside = list(system.dir.glob("checklist.yaml.history.sqlite.unreadable-*"))
    assert len(aside) == 1 and aside[0].read_bytes().startswith(b"garbage")
    assert "moved it to" in system.log()


def test_final_messages_from_processes_not_known_are_runs_of_their_own(tmp_path):
    """Messages whose process is not known (no pid in their id) are a run each,
    even in the same millisecond: not one run updated by several workers, and no
    'cycle complete' made of them."""
    from nowcast.committer import Commit
    from nowcast.config import Config
    from nowcast.message import Message
    from nowcast.recorder import Recorder

    config = Config()
    config.file = str(tmp_path / "nowcast.yaml")
    config["checklist file"] = str(tmp_path / "checklist.yaml")
    conn = history.open_for_writing(str(tmp_path / "history.sqlite"))
    recorder = Recorder(conn, config, clock=lambda: 1000.0)
    for i in range(3):
        msg = Message("reporter", "success", {"i": i}, f"no-pid-{i}")
        recorder.reported(msg, None)
        recorder.message(msg, "ack")
    recorder.add_to(Commit(str(tmp_path))).write()
    recorder.committed()
    found = conn.execute("SELECT id, launched_by, started, ended FROM runs").fetchall()
    assert len({rid for rid, *_ in found}) == 3
    assert {tuple(rest) for _, *rest in found} == {("by hand", 1000.0, 1000.0)}
    ran = conn.execute("SELECT run FROM messages ORDER BY seq").fetchall()
    assert sorted(r for (r,) in ran) == sorted(rid for rid, *_ in found)
    assert conn.execute("SELECT event FROM events").fetchall() == []
