"""The history database: schema, migrations from the first version on, the
read-only queries."""

from __future__ import annotations

import json
import sqlite3
import subprocess
import sys
import threading
import time

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from nowcast import history
from nowcast.config import Config

DAY = 86400.0


def _run(conn, run_id, worker, started, seconds, day="2026-11-25", outcome="success"):
    conn.execute(
        "INSERT INTO runs (id, worker, module, args, launched_by, launched, started, ended,"
        " outcome, day) VALUES (?, ?, ?, '[\"--x\"]', 'scheduler', ?, ?, ?, ?, ?)",
        (run_id, worker, f"workers.{worker}", started, started, started + seconds, outcome, day),
    )


def test_a_new_database_has_the_newest_schema_in_wal_mode(tmp_path):
    path = str(tmp_path / "h.sqlite")
    conn = history.open_for_writing(path)
    assert conn.execute("PRAGMA user_version").fetchone()[0] == history.VERSION
    assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    tables = {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type='table'")}
    assert {"runs", "messages", "events", "notifications"} <= tables


def _crash_image(path, into) -> str:
    """The database and its log copied as a crash of the writer would leave them."""
    import shutil

    into.mkdir()
    for suffix in ("", "-wal"):
        shutil.copyfile(f"{path}{suffix}", into / f"h.sqlite{suffix}")
    return str(into / "h.sqlite")


def test_a_log_extended_with_zeros_keeps_every_commit_across_a_crash(tmp_path):
    # commits before and after the log is extended (and after a checkpoint that
    # starts it again from its beginning, over older frames): a writer that
    # stops without closing leaves them all readable, and nothing else
    import os

    path = str(tmp_path / "h.sqlite")
    conn = history.open_for_writing(path)
    conn.execute("PRAGMA wal_autocheckpoint=0")
    conn.execute("INSERT INTO meta (key, value) VALUES ('before', 1)")
    history.preallocate_log(conn, 1 << 20)
    assert os.path.getsize(f"{path}-wal") == 1 << 20
    for i in range(30):
        conn.execute("INSERT INTO meta (key, value) VALUES (?, ?)", (f"k{i}", "x" * 3000))
    image = _crash_image(path, tmp_path / "first")
    conn.execute("PRAGMA wal_checkpoint(PASSIVE)")
    conn.execute("INSERT INTO meta (key, value) VALUES ('after', 2)")
    second = _crash_image(path, tmp_path / "second")
    history.preallocate_log(conn, 1 << 10)  # long enough already: unchanged
    assert os.path.getsize(f"{path}-wal") == 1 << 20
    for copy, keys in ((image, 31), (second, 32)):
        reader = history.open_for_writing(copy)  # recovers the log
        assert reader.execute("SELECT count(*) FROM meta").fetchone()[0] == keys
        assert reader.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
        reader.close()


@pytest.mark.parametrize("start", range(1, history.VERSION))
def test_every_older_version_migrates_and_keeps_its_rows(tmp_path, start):
    path = str(tmp_path / "old.sqlite")
    old = _made_with(path, [s for ss in history.MIGRATIONS[:start] for s in ss], start)
    _run(old, "r1", "run_model", 1000.0, 60)
    old.close()
    conn = history.open_for_writing(path)
    assert conn.execute("PRAGMA user_version").fetchone()[0] == history.VERSION
    assert conn.execute("SELECT worker FROM runs").fetchall() == [("run_model",)]
    conn.execute("INSERT INTO events (time, event) VALUES (1, 'late')")  # the newest tables work
    # the same tables, columns and indexes as a database made new
    fresh = history.open_for_writing(str(tmp_path / "fresh.sqlite"))
    assert _schema(conn) == _schema(fresh)


def _made_with(path: str, statements: list[str], version: int) -> sqlite3.Connection:
    """A database made by ``statements``, marked as schema ``version``."""
    old = sqlite3.connect(path, isolation_level=None)
    for statement in statements:
        old.execute(statement)
    old.execute(f"PRAGMA user_version={version}")
    return old


def _schema(conn) -> list[tuple]:
    return conn.execute(
        "SELECT type, name, tbl_name, sql FROM sqlite_master ORDER BY name"
    ).fetchall()


def test_an_index_a_migration_drops_may_be_gone_already(tmp_path):
    # dropped by hand, say: the migration does not fail on it (a failed one
    # would have the manager set the whole file aside)
    path = str(tmp_path / "old.sqlite")
    old = _made_with(path, [s for ss in history.MIGRATIONS[:3] for s in ss], 3)
    old.execute("DROP INDEX runs_by_day")
    old.close()
    conn = history.open_for_writing(path)
    assert conn.execute("PRAGMA user_version").fetchone()[0] == history.VERSION


def test_a_version_3_made_without_its_meta_table_gets_one(tmp_path):
    # version 3's first form added the answer column only; a database made then
    # and migrated on to version 5 had no meta table, and the manager stopped at
    # its start when it read it
    path = str(tmp_path / "old.sqlite")
    first_form = [history.MIGRATIONS[2][0]]  # the answer column, no meta
    made = [*history.MIGRATIONS[:2], first_form, *history.MIGRATIONS[3:5]]
    old = _made_with(path, [s for ss in made for s in ss], 5)
    old.close()
    conn = history.open_for_writing(path)
    assert conn.execute("SELECT count(*) FROM meta").fetchone() == (0,)
    fresh = history.open_for_writing(str(tmp_path / "fresh.sqlite"))
    assert _schema(conn) == _schema(fresh)


def test_a_newer_schema_is_refused_with_a_clear_error(tmp_path):
    path = str(tmp_path / "new.sqlite")
    sqlite3.connect(path).execute(f"PRAGMA user_version={history.VERSION + 1}")
    with pytest.raises(history.HistoryError, match="newer than this nowcast knows"):
        history.open_for_writing(path)
    with pytest.raises(history.HistoryError, match="newer"):
        history.open_readonly(path)


def test_a_file_that_is_not_a_database_is_a_clear_error(tmp_path):
    path = tmp_path / "junk.sqlite"
    path.write_bytes(b"not a database at all" * 100)
    with pytest.raises(history.HistoryError, match="junk.sqlite"):
        history.open_for_writing(str(path))
    with pytest.raises(history.HistoryError, match="no history database"):
        history.open_readonly(str(tmp_path / "absent.sqlite"))


def test_a_reader_opens_read_only_and_sees_committed_rows_while_a_writer_holds_a_transaction(
    tmp_path,
):
    path = str(tmp_path / "h.sqlite")
    writer = history.open_for_writing(path)
    _run(writer, "r1", "get_weather", 1000.0, 5, day="1970-01-01")
    reader = history.open_readonly(path)
    writer.execute("BEGIN IMMEDIATE")
    _run(writer, "r2", "get_weather", 2000.0, 5, day="1970-01-01")
    assert [r["id"] for r in history.runs_for_day(reader, "1970-01-01")] == ["r1"]
    writer.execute("COMMIT")
    assert [r["id"] for r in history.runs_for_day(reader, "1970-01-01")] == ["r1", "r2"]
    with pytest.raises(sqlite3.OperationalError, match="readonly"):
        reader.execute("DELETE FROM runs")


def test_queries_return_plain_rows_with_durations(tmp_path):
    path = str(tmp_path / "h.sqlite")
    writer = history.open_for_writing(path)
    now = 100 * DAY
    for i, seconds in enumerate([10, 20, 30, 40, 100]):
        _run(writer, f"m{i}", "run_model", now - (5 - i) * DAY, seconds, day=f"d{i}")
    _run(writer, "old", "run_model", now - 40 * DAY, 1000, day="old")
    _run(writer, "w", "get_weather", now - DAY, 3, day="d4")
    messages = [("x", now - DAY + 100, "m4"), ("y", now - DAY + 3, "w"), ("z", 7.0, "gone")]
    for msg_id, when, run_id in messages:
        writer.execute(
            "INSERT INTO messages (id, time, source, type, payload, reply, run) "
            "VALUES (?, ?, 'run_model', 'success', '{}', 'ack', ?)",
            (msg_id, when, run_id),
        )
    conn = history.open_readonly(path)
    day = history.runs_for_day(conn, "d4")
    assert [r["worker"] for r in day] == ["run_model", "get_weather"]
    assert day[0]["args"] == ["--x"] and day[0]["duration"] == 100
    runs = history.runs_for_worker(conn, "run_model", days=30, now=now)
    assert [r["id"] for r in runs] == ["m0", "m1", "m2", "m3", "m4"]
    stats = history.duration_stats(conn, days=30, now=now)
    assert stats["run_model"] == {"count": 5, "median": 30, "p90": 76.0, "last": 100}
    assert stats["get_weather"]["count"] == 1
    assert history.is_slow(runs[-1], stats["run_model"]["median"])
    assert not history.is_slow(runs[-2], stats["run_model"]["median"])
    assert history.run(conn, "m4")["outcome"] == "success"
    assert [m["id"] for m in history.messages_of_run(conn, "m4")] == ["x"]
    assert history.messages_of_run(conn, "m4")[0]["reply"] == "ack"
    assert [m["id"] for m in history.messages_of_run(conn, "w")] == ["y"]
    assert history.messages_of_run(conn, "m0") == []
    assert [m["id"] for m in history.messages_of_run(conn, "gone")] == ["z"]  # no run row
    assert history.recent_messages(conn, since=now - DAY + 100) == []
    assert len(history.recent_messages(conn)) == 3


def test_the_database_goes_beside_the_checklist_unless_the_config_names_it(tmp_path):
    config = Config()
    config["checklist file"] = str(tmp_path / "checklist.yaml")
    assert history.history_path(config) == f"{tmp_path}/checklist.yaml.history.sqlite"
    config["history"] = {"file": "/elsewhere/h.sqlite"}
    assert history.history_path(config) == "/elsewhere/h.sqlite"


def test_percentile_interpolates_between_ranks():
    assert history.percentile([], 0.9) is None
    assert history.percentile([5], 0.9) == 5
    assert history.percentile([1, 2, 3, 4, 5, 6, 7, 8, 9, 10], 0.9) == pytest.approx(9.1)


def test_prune_deletes_only_what_is_older_than_keep_days_in_batches(tmp_path):
    conn = history.open_for_writing(str(tmp_path / "h.sqlite"))
    now = 1000 * DAY
    for i in range(25):
        _run(conn, f"old{i}", "w", now - 500 * DAY + i, 1)
        conn.execute(
            "INSERT INTO messages (time, source, type) VALUES (?, 'w', 'success')",
            (now - 500 * DAY,),
        )
    _run(conn, "new", "w", now - 399 * DAY, 1)
    conn.execute("INSERT INTO events (time, event) VALUES (?, 'late')", (now - 401 * DAY,))
    conn.execute("INSERT INTO events (time, event) VALUES (?, 'late')", (now - 1,))
    assert history.prune(conn, 400, now=now, batch=10) == 51
    assert conn.execute("SELECT id FROM runs").fetchall() == [("new",)]
    assert conn.execute("SELECT count(*) FROM messages").fetchone() == (0,)
    assert conn.execute("SELECT count(*) FROM events").fetchone() == (1,)


def test_prune_keeps_the_messages_whose_ids_the_manager_still_remembers(tmp_path):
    """``keep days`` can be shorter than the time the manager remembers applied
    ids for; the rows it reads them back from are kept that long."""
    conn = history.open_for_writing(str(tmp_path / "h.sqlite"))
    now = 1000 * DAY
    for age in (10, 300, 500):
        conn.execute(
            "INSERT INTO messages (id, time, source, type, answer) VALUES (?, ?, 'w', 'success', 'a')",
            (f"m{age}", now - age),
        )
    assert history.prune(conn, 0.001, now=now, keep_answers_for=360) == 1
    assert [i for i, _, _ in history.answers_since(conn, now - 360)] == ["m300", "m10"]


@pytest.mark.timeout(10)
def test_the_pruner_thread_prunes_in_the_background(tmp_path):
    from nowcast.recorder import Pruner

    path = str(tmp_path / "h.sqlite")
    conn = history.open_for_writing(path)
    _run(conn, "old", "w", 1000.0, 1)
    pruner = Pruner(path, keep_days=1, every=0.05)
    pruner.start()
    try:
        wait = 0
        while conn.execute("SELECT count(*) FROM runs").fetchone() != (0,) and wait < 100:
            threading.Event().wait(0.05)
            wait += 1
        assert conn.execute("SELECT count(*) FROM runs").fetchone() == (0,)
    finally:
        pruner.stop()
    assert not pruner.is_alive()


def _cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "nowcast.history", *args], capture_output=True, text=True, timeout=30
    )


@pytest.mark.timeout(60)
def test_nowcast_history_shows_runs_durations_and_marks_a_slow_run(tmp_path):
    config = tmp_path / "nowcast.yaml"
    config.write_text(f"checklist file: {tmp_path}/checklist.yaml\nscheduler: {{timezone: UTC}}\n")
    conn = history.open_for_writing(f"{tmp_path}/checklist.yaml.history.sqlite")
    now = time.time()
    for i, seconds in enumerate([10, 11, 12, 9, 30]):
        _run(conn, f"m{i}", "run_model", now - (20 - i) * DAY, seconds)
    _run(conn, "w", "get_weather", now - 3600, 2.5)
    conn.execute("UPDATE runs SET outcome = 'failure' WHERE id = 'w'")
    text = _cli(str(config), "--days", "30")
    assert text.returncode == 0, text.stderr
    lines = text.stdout.splitlines()
    slow = [line for line in lines if "more than 2x its median" in line]
    assert len(slow) == 1 and "30.0 s" in slow[0] and "run_model" in slow[0]
    assert any("get_weather" in line and "2.5 s" in line and "failure" in line for line in lines)
    (stats,) = [line for line in lines if line.split()[:2] == ["run_model", "5"]]
    assert stats.split()[2:] == ["11.0", "s", "22.8", "s", "30.0", "s"]  # median, p90, last
    recent = _cli(str(config), "run_model", "--json")  # the last 7 days: none of run_model
    data = json.loads(recent.stdout)
    assert data["runs"] == [] and data["stats"]["run_model"]["count"] == 5
    assert list(data["stats"]) == ["run_model"]
    month = json.loads(_cli(str(config), "--days", "30", "--json").stdout)
    assert [r["slow"] for r in month["runs"]] == [False, False, False, False, True, False]


@pytest.mark.timeout(30)
def test_nowcast_history_says_clearly_what_is_missing(tmp_path):
    config = tmp_path / "nowcast.yaml"
    config.write_text(f"checklist file: {tmp_path}/checklist.yaml\n")
    absent = _cli(str(config))
    assert absent.returncode == 1 and "no history database" in absent.stderr
    assert "Traceback" not in absent.stderr
    config.write_text("checklist file: [1, 2]\n")
    bad = _cli(str(config))
    assert bad.returncode == 2 and "key 'checklist file'" in bad.stderr
    assert _cli(str(tmp_path / "absent.yaml")).returncode == 2


@pytest.mark.timeout(30)
def test_nowcast_history_of_a_worker_no_one_knows_says_so_and_what_was_meant(tmp_path):
    config = tmp_path / "nowcast.yaml"
    config.write_text(
        f"checklist file: {tmp_path}/checklist.yaml\n"
        "message registry: {workers: {get_rivers: {success: ok}, run_model: {success: ok}}}\n"
    )
    conn = history.open_for_writing(f"{tmp_path}/checklist.yaml.history.sqlite")
    _run(conn, "m", "retired_worker", time.time() - 40 * DAY, 5)
    conn.close()
    typo = _cli(str(config), "get_rivrs")
    assert typo.returncode == 2 and "Traceback" not in typo.stderr
    assert "no worker 'get_rivrs' in the message registry of" in typo.stderr
    assert typo.stderr.rstrip().endswith("did you mean get_rivers?")
    # a registered worker with no runs yet, and one the history alone knows: no error
    assert _cli(str(config), "run_model").returncode == 0
    assert _cli(str(config), "retired_worker").returncode == 0
    retired = _cli(str(config), "retired_workr")
    assert retired.returncode == 2 and "did you mean retired_worker?" in retired.stderr


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(),
    lambda inner: st.lists(inner, max_size=5) | st.dictionaries(st.text(), inner, max_size=5),
    max_leaves=50,
)


@settings(max_examples=100, deadline=None)
@given(payload=json_values)
def test_any_payload_is_kept_as_a_bounded_summary(payload):
    from nowcast.recorder import _summary

    text = _summary(payload)
    assert text is None if payload is None else isinstance(text, str)
    assert _summary(payload, 10**6) == text  # encoded only as far as the cut: the same text
    if text is not None:
        assert len(text) <= 500
        assert "\0" not in text  # JSON escapes control characters


def test_a_payload_summary_is_the_json_encoder_text():
    import datetime
    import pathlib

    from nowcast.recorder import _ENCODER, _summary

    payloads = [
        {"a": [1, 2.5, float("nan"), float("inf"), None, True, "é ✓\n"]},
        {"path": pathlib.Path("/data/x.nc"), "when": datetime.date(2026, 12, 6), "n": 10**30},
        "text",
        [{"b": {"c": []}}],
    ]
    for payload in payloads:
        assert _summary(payload) == _ENCODER.encode(payload)
    looped: dict = {"a": 1}
    looped["self"] = looped
    assert _summary(looped) == repr(looped)


def test_every_query_of_the_cli_and_the_dashboard_finds_its_rows_through_an_index(tmp_path):
    """The history keeps 400 days: no query of ``nowcast history`` or of the
    dashboard's pages reads the whole of ``runs`` or ``messages`` (the pruner's
    hourly delete may; the newest messages are read from the end, with a limit)."""
    from nowcast.web import queries

    path = str(tmp_path / "h.sqlite")
    writer = history.open_for_writing(path)
    now = 100 * DAY + 12 * 3600  # noon, 1970-04-11 UTC
    _run(writer, "r1", "run_model", now - 3600, 60, day="1970-04-11")
    writer.execute(
        "INSERT INTO messages (id, time, source, type, reply, run) "
        "VALUES ('m1', ?, 'run_model', 'success', 'ack', 'r1')",
        (now - 3540,),
    )
    config = Config()
    config.file = str(tmp_path / "nowcast.yaml")
    config["checklist file"] = str(tmp_path / "checklist.yaml")
    config["message registry"] = {"workers": {"run_model": {}}}
    conn = history.open_readonly(path)
    statements: list[str] = []
    conn.set_trace_callback(statements.append)
    history.report(conn, now=now)
    history.report(conn, "run_model", now=now)
    assert [r["id"] for r in history.runs_for_day(conn, "1970-04-11")] == ["r1"]
    history.messages_of_run(conn, "r1")
    history.answers_since(conn, now - 600)
    assert [r["id"] for r in queries.today_view(conn, config, None, now)["runs"]] == ["r1"]
    queries.graph_view(conn, config, None, now)
    queries.worker_view(conn, config, "run_model", now)
    queries.run_detail(conn, config, "r1")
    queries.message_rate(conn, now)
    queries.last_message_time(conn)
    queries.medians(conn, now + 1000)
    reads = [s for s in statements if s.lstrip().upper().startswith("SELECT")]
    assert len(reads) >= 12
    for sql in reads:
        plan = " ".join(row[3] for row in conn.execute(f"EXPLAIN QUERY PLAN {sql}"))
        assert "SCAN runs" not in plan and "SCAN messages" not in plan, (sql, plan)
