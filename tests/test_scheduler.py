"""nowcast.scheduler: due times across daylight-saving changes, catch-up, and a
real scheduler process launching a worker once."""

from __future__ import annotations

import argparse
import logging
import os
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import yaml
from conftest import PY, stop, wait_for

from nowcast import defaults
from nowcast.config import Config
from nowcast.errors import ConfigError
from nowcast.scheduler import Scheduler, listing, main, plan, read_schedule

VANCOUVER = "America/Vancouver"


def schedule_of(tmp_path: Path, entries: list, **top) -> list:
    path = tmp_path / "nowcast.yaml"
    path.write_text(yaml.safe_dump({"scheduled workers": entries, **top}))
    config = Config()
    config.load(path)
    return read_schedule(config)


def scheduler_config(tmp_path: Path, entries: list, **extra) -> Path:
    """A config for a scheduler run in ``tmp_path``, logging to ``scheduler.log``."""
    config = {
        "checklist file": str(tmp_path / "checklist.yaml"),
        "python": PY,
        "logging": {
            "version": 1,
            "handlers": {
                "file": {
                    "class": "logging.FileHandler",
                    "filename": str(tmp_path / "scheduler.log"),
                }
            },
            "root": {"level": "DEBUG", "handlers": ["file"]},
        },
        "scheduled workers": entries,
        **extra,
    }
    path = tmp_path / "nowcast.yaml"
    path.write_text(yaml.safe_dump(config))
    return path


def utc(*args) -> datetime:
    return datetime(*args, tzinfo=UTC)


class RecordingScheduler(Scheduler):
    """A scheduler that records its launches instead of starting processes: when
    it launches is what the tests of it check (a real launch is checked by
    test_a_worker_scheduled_seconds_ahead_is_launched_once)."""

    def _launch(self, entry, due) -> None:
        self.launched.append((entry.module, due))


def scheduler_at(tmp_path: Path, entries: list, now: datetime) -> RecordingScheduler:
    """A scheduler of ``entries`` set up in ``tmp_path`` at ``now``, as at its start."""
    path = scheduler_config(tmp_path, entries)
    scheduler = RecordingScheduler(argparse.Namespace(config_file=str(path)))
    scheduler.launched = []
    scheduler.config = scheduler.load_config()
    scheduler.setup(now)
    return scheduler


def test_nemo_form_and_cron_form_agree(tmp_path):
    nemo, cron = schedule_of(
        tmp_path,
        [
            {"workers.a": {"every": "day", "at": "05:30", "timezone": VANCOUVER}},
            {"workers.b": {"cron": "30 5 * * *", "timezone": VANCOUVER}},
        ],
    )
    now = utc(2026, 11, 24, 0, 0)
    assert nemo.next_after(now) == cron.next_after(now) == utc(2026, 11, 24, 13, 30)


def test_spring_forward_runs_once_at_the_first_valid_instant(tmp_path):
    [entry] = schedule_of(tmp_path, [{"w": {"every": "day", "at": "02:30", "timezone": VANCOUVER}}])
    first = entry.next_after(utc(2026, 3, 7, 20, 0))
    # 02:30 does not exist on 2026-03-08 in Vancouver: 03:00 PDT is 10:00 UTC
    assert first == utc(2026, 3, 8, 10, 0)
    assert entry.next_after(first) == utc(2026, 3, 9, 9, 30)


def test_fall_back_runs_once_not_twice(tmp_path):
    [entry] = schedule_of(tmp_path, [{"w": {"cron": "30 1 * * *", "timezone": VANCOUVER}}])
    first = entry.next_after(utc(2026, 10, 31, 20, 0))
    assert first == utc(2026, 11, 1, 8, 30)  # 01:30 PDT, the first of the two
    assert entry.next_after(first) == utc(2026, 11, 2, 9, 30)  # next day, 01:30 PST


def test_weekly_and_seconds(tmp_path):
    [entry] = schedule_of(tmp_path, [{"w": {"every": "monday", "at": "06:00:15"}}])
    assert entry.next_after(utc(2026, 11, 24, 0, 0)) == utc(2026, 11, 30, 6, 0, 15)


def test_listing_shows_local_and_utc_across_a_dst_change(tmp_path):
    schedule = schedule_of(
        tmp_path,
        [
            {"workers.a": {"every": "day", "at": "05:30", "cmd line opts": "--run-date today"}},
            {"workers.b": {"cron": "0 4 * * *"}},
        ],
        scheduler={"timezone": VANCOUVER},
    )
    text = listing(schedule, utc(2026, 10, 31, 0, 0))
    assert "workers.a --run-date today" in text
    assert "  next: 2026-10-31 05:30:00 PDT  (UTC: 2026-10-31 12:30:00)" in text
    assert "  then: 2026-11-01 05:30:00 PST  (UTC: 2026-11-01 13:30:00)" in text
    assert "  then: 2026-11-01 04:00:00 PST  (UTC: 2026-11-01 12:00:00)" in text


def test_listing_in_utc_shows_one_labelled_column(tmp_path):
    schedule = schedule_of(tmp_path, [{"workers.a": {"every": "day", "at": "05:30"}}])
    lines = listing(schedule, utc(2026, 10, 31, 0, 0)).splitlines()
    assert lines[1:] == [
        "  next: 2026-10-31 05:30:00 UTC",
        "  then: 2026-11-01 05:30:00 UTC",
        "  then: 2026-11-02 05:30:00 UTC",
    ]


def test_catch_up_true_launches_once_and_false_waits(tmp_path):
    catching, waiting = schedule_of(
        tmp_path,
        [
            {"a": {"every": "day", "at": "05:00", "catch up": True}},
            {"b": {"every": "day", "at": "05:00"}},
        ],
    )
    last = {catching.key: "2026-11-20T05:00:00+00:00", waiting.key: "2026-11-20T05:00:00+00:00"}
    now = utc(2026, 11, 24, 12, 0)
    due, notes = plan([catching, waiting], last, now)
    assert due[catching.key] == now
    assert due[waiting.key] == utc(2026, 11, 25, 5, 0)
    assert "4 launch(es) missed" in notes[0] and "catching up" in notes[0]
    assert "not catching up (catch up: false)" in notes[1]


@pytest.mark.parametrize(
    ("settings", "words"),
    [
        ({"every": "fortnight", "at": "05:00"}, "'scheduled workers: 0: w: every'"),
        ({"every": "day", "at": "25:00"}, "'scheduled workers: 0: w: at'"),
        ({"cron": "61 * * * *"}, "not a valid cron expression"),
        ({"cron": "* * *"}, "five fields"),
        ({"cron": "0 30 5 * * *"}, "five fields"),  # cronsim would take it, seconds first
        ({"every": "day", "at": "24:00"}, "'scheduled workers: 0: w: at'"),
        ({"every": "day", "at": "05:60"}, "'scheduled workers: 0: w: at'"),
        ({"every": "day", "at": "05:30:60"}, "'scheduled workers: 0: w: at'"),
        ({"every": "day", "at": "05:00", "timezone": "Mars/Olympus"}, "time zone"),
    ],
)
def test_bad_entries_are_named(tmp_path, settings, words):
    with pytest.raises(ConfigError, match=words.replace("(", r"\(")):
        schedule_of(tmp_path, [{"w": settings}])


@pytest.mark.timeout(60)
@pytest.mark.parametrize(
    "item",
    [
        {"workers.a": None, "every": "day", "at": "05:00"},  # settings not indented under it
        {},
        "workers.a",
    ],
)
def test_an_item_that_is_not_one_module_mapping_is_named(tmp_path, item):
    with pytest.raises(ConfigError, match="item 0 of 'scheduled workers' must be one"):
        schedule_of(tmp_path, [item])


def test_the_last_second_of_the_day_is_a_valid_time(tmp_path):
    [entry] = schedule_of(tmp_path, [{"w": {"every": "day", "at": "23:59:59"}}])
    assert entry.next_after(utc(2026, 11, 24)) == utc(2026, 11, 24, 23, 59, 59)


def test_plan_gives_each_entry_its_due_time_whatever_the_ones_before_it_hold(tmp_path):
    entries = schedule_of(
        tmp_path,
        [
            {"a": {"every": "day", "at": "05:00", "catch up": True}},
            {"b": {"cron": "0 6 * * *", "catch up": True}},
            {"c": {"cron": "0 7 * * *"}},
        ],
    )
    a, b, c = (entry.key for entry in entries)
    now = utc(2026, 11, 24, 12, 0)
    expected = {a: utc(2026, 11, 25, 5), b: utc(2026, 11, 25, 6), c: utc(2026, 11, 25, 7)}
    assert plan(entries, {}, now) == (expected, [])
    # launched today already: nothing missed, nothing to catch up
    today = {a: "2026-11-24T05:00:00+00:00", b: "2026-11-24T06:00:00+00:00"}
    assert plan(entries, today, now) == (expected, [])
    due, notes = plan(entries, {a: "9999-12-31T23:59:00+00:00"}, now)
    assert due == expected and len(notes) == 1 and "cannot be used; ignored" in notes[0]


def test_a_due_time_launches_once_at_it_and_not_again_after_a_restart(tmp_path):
    entries = [{"w": {"every": "day", "at": "05:00", "catch up": True}}]
    scheduler = scheduler_at(tmp_path, entries, utc(2026, 11, 24, 4, 0))
    scheduler.launch_due(utc(2026, 11, 24, 4, 59, 59))
    assert scheduler.launched == []
    scheduler.launch_due(utc(2026, 11, 24, 5, 0))  # the due time itself
    assert scheduler.launched == [("w", utc(2026, 11, 24, 5, 0))]
    scheduler.launch_due(utc(2026, 11, 24, 5, 0, 1))
    assert scheduler.launched == [("w", utc(2026, 11, 24, 5, 0))]
    restarted = scheduler_at(tmp_path, entries, utc(2026, 11, 24, 5, 0, 2))
    restarted.launch_due(utc(2026, 11, 24, 5, 0, 2))
    assert restarted.launched == []
    assert list(restarted.due.values()) == [utc(2026, 11, 25, 5, 0)]


def test_a_scheduler_killed_while_launching_does_not_launch_again_at_its_restart(tmp_path):
    """The due time is on disk before the launch starts: killed in the middle of
    it (a launch that never returns), the next scheduler, catching up, does not
    launch that due time a second time."""

    class Killed(BaseException):
        pass

    class KilledWhileLaunching(RecordingScheduler):
        def _launch(self, entry, due) -> None:
            super()._launch(entry, due)
            raise Killed

    entries = [{"w": {"every": "day", "at": "05:00", "catch up": True}}]
    path = scheduler_config(tmp_path, entries)
    scheduler = KilledWhileLaunching(argparse.Namespace(config_file=str(path)))
    scheduler.launched = []
    scheduler.config = scheduler.load_config()
    scheduler_at(tmp_path, entries, utc(2026, 11, 23, 4, 0)).launch_due(utc(2026, 11, 23, 5, 0))
    scheduler.setup(utc(2026, 11, 24, 4, 0))  # the next day
    with pytest.raises(Killed):
        scheduler.launch_due(utc(2026, 11, 24, 5, 0))
    assert scheduler.launched == [("w", utc(2026, 11, 24, 5, 0))]
    restarted = scheduler_at(tmp_path, entries, utc(2026, 11, 24, 5, 0, 2))
    restarted.launch_due(utc(2026, 11, 24, 5, 0, 2))
    assert restarted.launched == []
    assert list(restarted.due.values()) == [utc(2026, 11, 25, 5, 0)]


def test_a_restart_logs_the_launches_it_missed(tmp_path, caplog):
    entries = [{"w": {"every": "day", "at": "05:00"}}]
    scheduler_at(tmp_path, entries, utc(2026, 11, 20, 4, 0)).launch_due(utc(2026, 11, 20, 5, 0))
    caplog.set_level(logging.WARNING)
    restarted = scheduler_at(tmp_path, entries, utc(2026, 11, 24, 12, 0))
    assert list(restarted.due.values()) == [utc(2026, 11, 25, 5, 0)]
    assert (
        "w: 4 launch(es) missed while the scheduler was down, the first due "
        "2026-11-21T05:00:00+00:00; not catching up"
    ) in caplog.text


def test_the_loop_waits_for_the_next_due_time_at_most_one_poll_interval(tmp_path):
    poll = defaults.POLL_MS / 1000
    now = utc(2026, 11, 24, 4, 0)
    scheduler = scheduler_at(tmp_path, [{"w": {"every": "day", "at": "05:00"}}], now)
    assert scheduler.pause(now) == pytest.approx(poll, rel=0.01)  # no busy loop
    assert scheduler.pause(utc(2026, 11, 24, 4, 59, 59, 950000)) == pytest.approx(0.05)  # not late
    (tmp_path / "none").mkdir()
    assert scheduler_at(tmp_path / "none", [], now).pause(now) == pytest.approx(poll, rel=0.01)


def test_launched_workers_that_ended_are_reaped_and_running_ones_kept(tmp_path):
    scheduler = scheduler_at(tmp_path, [], utc(2026, 11, 24))
    ended = subprocess.Popen(["true"])
    running = subprocess.Popen(["sleep", "30"])
    try:
        os.waitid(os.P_PID, ended.pid, os.WEXITED | os.WNOWAIT)  # ended, not yet reaped
        scheduler.children = [(ended, "a"), (running, "b")]
        scheduler._reap()
        assert scheduler.children == [(running, "b")]
        assert ended.returncode == 0  # reaped: no zombie left behind
    finally:
        running.kill()
        running.wait()


def test_a_worker_scheduled_seconds_ahead_is_launched_once(tmp_path):
    (tmp_path / "marker_worker.py").write_text(
        "import sys\nopen('marker.txt', 'a').write(' '.join(sys.argv[2:]) + '\\n')\n"
    )

    def config_due_in(seconds: float) -> Path:
        at = (datetime.now(UTC) + timedelta(seconds=seconds)).strftime("%H:%M:%S")
        entry = {"every": "day", "at": at, "cmd line opts": "--run-date today"}
        return scheduler_config(tmp_path, [{"marker_worker": entry}])

    listed = subprocess.run(
        [PY, "-m", "nowcast.scheduler", str(config_due_in(60)), "--list"],
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert listed.returncode == 0 and "marker_worker --run-date today" in listed.stdout
    path = config_due_in(5)  # made just before the start, so a slow machine still makes it
    scheduler = subprocess.Popen([PY, "-m", "nowcast.scheduler", str(path)], cwd=tmp_path)
    try:
        marker = tmp_path / "marker.txt"
        wait_for(marker.exists, timeout=20, what="the scheduled worker")
        wait_for(
            lambda: (
                "next launch at" in (tmp_path / "scheduler.log").read_text().split("due at")[-1]
            ),
            what="the next due time",
        )
        assert marker.read_text() == "--run-date today\n"
        scheduler.terminate()
        assert scheduler.wait(2) == 0
    finally:
        stop(scheduler)
    assert marker.read_text() == "--run-date today\n"  # once


def test_list_with_a_bad_config_exits_2_with_one_line(tmp_path):
    path = tmp_path / "nowcast.yaml"
    path.write_text(yaml.safe_dump({"scheduled workers": [{"w": {"every": "day", "at": "5"}}]}))
    result = subprocess.run(
        [sys.executable, "-m", "nowcast.scheduler", str(path), "--list"],
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert result.returncode == 2
    assert "'scheduled workers: 0: w: at'" in result.stderr and "Traceback" not in result.stderr


def test_list_names_an_unset_variable_or_a_missing_file_in_one_line(tmp_path, capsys, monkeypatch):
    monkeypatch.delenv("NOWCAST_TEST_UNSET", raising=False)
    path = tmp_path / "nowcast.yaml"
    path.write_text(yaml.safe_dump({"checklist file": "$(NOWCAST.ENV.NOWCAST_TEST_UNSET)"}))
    for config_file, words in ((path, "NOWCAST_TEST_UNSET"), (tmp_path / "gone.yaml", "gone.yaml")):
        with pytest.raises(SystemExit) as stopped:
            main([str(config_file), "--list"])
        error = capsys.readouterr().err
        assert stopped.value.code == 2
        assert words in error and len(error.splitlines()) == 1, error


@pytest.mark.timeout(60)
def test_sighup_rereads_the_schedule_and_refuses_a_bad_one(tmp_path):
    import signal

    def write(entries):
        scheduler_config(tmp_path, entries)

    log = tmp_path / "scheduler.log"
    write([{"workers.a": {"every": "day", "at": "05:30"}}])
    scheduler = subprocess.Popen(
        [PY, "-m", "nowcast.scheduler", str(tmp_path / "nowcast.yaml")], cwd=tmp_path
    )
    try:
        wait_for(lambda: log.exists() and "workers.a: next launch" in log.read_text(), what="start")
        write([{"workers.b": {"cron": "0 6 * * *"}}])
        scheduler.send_signal(signal.SIGHUP)
        wait_for(lambda: "workers.b: next launch" in log.read_text(), what="the new schedule")
        write([{"workers.c": {"every": "someday", "at": "05:30"}}])
        scheduler.send_signal(signal.SIGHUP)
        wait_for(lambda: "config reload refused" in log.read_text(), what="the refusal")
        assert "'scheduled workers: 0: workers.c: every'" in log.read_text()
        assert scheduler.poll() is None
    finally:
        stop(scheduler)


# Every schedule form, in zones whose clocks change in different ways: an hour
# either way (north and south), half an hour (Lord Howe), a negative summer
# offset in the zone database (Dublin), a half-hour base offset (St John's).
DST_ZONES = [
    "America/Vancouver",
    "Europe/London",
    "Europe/Dublin",
    "Australia/Sydney",
    "Australia/Lord_Howe",
    "America/St_Johns",
    "UTC",
]
SCHEDULE_FORMS = [
    ({"cron": "0 * * * *"}, timedelta(hours=1)),
    ({"cron": "*/15 * * * *"}, timedelta(minutes=15)),
    ({"cron": "* * * * *"}, timedelta(minutes=1)),
    ({"cron": "30 1 * * *"}, timedelta(days=1)),
    ({"cron": "30 2 * * *"}, timedelta(days=1)),
    ({"cron": "0 0 * * 0"}, timedelta(days=7)),
    ({"cron": "15 1-3 * * *"}, timedelta(days=1)),
    ({"every": "day", "at": "01:30"}, timedelta(days=1)),
    ({"every": "day", "at": "02:00:30"}, timedelta(days=1)),
    ({"every": "sunday", "at": "01:59:59"}, timedelta(days=7)),
]


def _transitions(zone_name: str, year: int = 2026) -> list[datetime]:
    """The instants (UTC, to the minute) at which ``zone_name``'s offset changes."""
    from zoneinfo import ZoneInfo

    zone = ZoneInfo(zone_name)
    found, step = [], timedelta(hours=1)
    moment = utc(year, 1, 1)
    while moment.year == year:
        after = moment + step
        if moment.astimezone(zone).utcoffset() != after.astimezone(zone).utcoffset():
            low = moment
            while after - low > timedelta(minutes=1):
                middle = low + (after - low) / 2
                if low.astimezone(zone).utcoffset() == middle.astimezone(zone).utcoffset():
                    low = middle
                else:
                    after = middle
            found.append(after.replace(second=0, microsecond=0))
        moment += step
    return found


def _entries(tmp_path: Path) -> list:
    entries = [
        {f"w{i}": {**form, "timezone": zone}}
        for zone in DST_ZONES
        for i, (form, _) in enumerate(SCHEDULE_FORMS)
    ]
    return schedule_of(tmp_path, entries)


def _check_walk(entry, start: datetime, end: datetime, longest: timedelta) -> int:
    """Walk ``entry``'s due times from ``start`` to ``end``: each strictly later
    than the last and no further apart than ``longest`` (+ the hour a change skips)."""
    moment, steps = start, 0
    while moment < end:
        due = entry.next_after(moment)
        assert due > moment, (entry.key, moment, due)
        assert due - moment <= longest + timedelta(hours=1), (entry.key, moment, due)
        moment, steps = due, steps + 1
    return steps


@pytest.mark.timeout(60)
def test_every_form_in_every_zone_gets_through_both_changes(tmp_path):
    """The autumn change made hourly and sub-hourly schedules loop for ever."""
    entries = _entries(tmp_path)
    longest = {f"w{i}": period for i, (_, period) in enumerate(SCHEDULE_FORMS)}
    for entry in entries:
        changes = _transitions(str(entry.zone))
        assert len(changes) in (0, 2), (entry.zone, changes)
        for change in changes:
            start = change - timedelta(days=1)
            period = longest[entry.module]
            steps = _check_walk(entry, start, change + max(period, timedelta(days=1)), period)
            assert steps >= 1


def test_the_repeated_hour_runs_hourly_schedules_in_both_and_daily_once(tmp_path):
    hourly, quarterly, daily = schedule_of(
        tmp_path,
        [
            {"a": {"cron": "0 * * * *", "timezone": VANCOUVER}},
            {"b": {"cron": "*/15 * * * *", "timezone": VANCOUVER}},
            {"c": {"cron": "30 1 * * *", "timezone": VANCOUVER}},
        ],
    )
    start = utc(2026, 11, 1, 7, 30)  # 00:30 PDT; the clocks go back at 09:00 UTC
    walk = [start]
    for _ in range(4):
        walk.append(hourly.next_after(walk[-1]))
    assert walk[1:] == [utc(2026, 11, 1, h) for h in (8, 9, 10, 11)]
    assert quarterly.next_after(utc(2026, 11, 1, 8, 45)) == utc(2026, 11, 1, 9, 0)
    assert daily.next_after(utc(2026, 11, 1, 8, 30)) == utc(2026, 11, 2, 9, 30)


@pytest.mark.timeout(120)
def test_any_moment_near_a_change_has_one_next_due_time(tmp_path):
    """Property: for any moment near any change, ``next_after`` returns a later
    time, and no due time lies between the moment and it (asking again from any
    instant in between gives the same answer)."""
    from hypothesis import given, settings
    from hypothesis import strategies as st

    entries = _entries(tmp_path)
    changes = {zone: _transitions(zone) or [utc(2026, 6, 1)] for zone in DST_ZONES}

    @settings(max_examples=300, deadline=None, derandomize=True)
    @given(
        st.sampled_from(entries),
        st.integers(0, 1),
        st.integers(-3 * 3600, 3 * 3600),
        st.floats(0, 1),
    )
    def check(entry, which, offset, fraction):
        zone_changes = changes[str(entry.zone)]
        moment = zone_changes[which % len(zone_changes)] + timedelta(seconds=offset)
        due = entry.next_after(moment)
        assert due > moment
        between = moment + (due - moment) * fraction
        if between < due:
            assert entry.next_after(between) == due

    check()


def test_plan_across_a_change_is_bounded(tmp_path):
    """A restart after a long stop walks the missed times a bounded number of steps."""
    [entry] = schedule_of(tmp_path, [{"w": {"cron": "* * * * *", "timezone": VANCOUVER}}])
    last = {entry.key: utc(2026, 10, 1).isoformat()}
    due, notes = plan([entry], last, utc(2026, 11, 2))
    assert due[entry.key] == utc(2026, 11, 2, 0, 1)
    assert "launch(es) missed" in notes[0]


@pytest.mark.timeout(60)
@pytest.mark.parametrize(
    "content",
    [
        b"\xff\xfe\x00",
        b"null",
        b'{"last launched": {"w": 5}}',
        b'{"last launched": {"w": "2026-11-01T00:00:00"}}',  # no offset
        b'{"last launched": ["w"]}',
        b'{"last launched": {"w  @ 0 3 * * * +0s UTC": "9999-12-31T23:59:00+00:00"}}',
    ],
)
def test_a_scheduler_starts_whatever_its_state_file_holds(tmp_path, content):
    path = scheduler_config(tmp_path, [{"w": {"cron": "0 3 * * *", "catch up": True}}])
    state = tmp_path / "checklist.yaml.scheduler-state.json"
    state.write_bytes(content)
    dead = subprocess.run(
        [PY, "-c", "import os; print(os.getpid())"], capture_output=True, text=True
    )
    temporary = tmp_path / f".{state.name}.{int(dead.stdout)}.tmp"
    temporary.write_bytes(b"half")
    scheduler = subprocess.Popen([PY, "-m", "nowcast.scheduler", str(path)], cwd=tmp_path)
    try:
        log = tmp_path / "scheduler.log"
        wait_for(lambda: log.exists() and "next launch at" in log.read_text(), what="the start")
        scheduler.terminate()
        assert scheduler.wait(10) == 0
    finally:
        stop(scheduler)
    text = log.read_text()
    assert "Traceback" not in text and not temporary.exists()
    moved = list(tmp_path.glob("*.unreadable-*"))
    if b"9999" in content:  # readable: kept, and the schedule goes on
        assert not moved and "w: next launch at 20" in text
        assert "w: last launch time '9999-12-31T23:59:00+00:00' cannot be used; ignored" in text
    else:
        assert len(moved) == 1 and moved[0].read_bytes() == content
        assert text.count("cannot be used (") == 1  # one line, naming the file and why
