"""nowcast.scheduler: due times across daylight-saving changes, catch-up, and a
real scheduler process launching a worker once."""

from __future__ import annotations

import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import yaml
from conftest import PY, stop, wait_for

from nowcast.config import Config
from nowcast.errors import ConfigError
from nowcast.scheduler import listing, plan, read_schedule

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
        ({"every": "day", "at": "05:00", "timezone": "Mars/Olympus"}, "time zone"),
    ],
)
def test_bad_entries_are_named(tmp_path, settings, words):
    with pytest.raises(ConfigError, match=words.replace("(", r"\(")):
        schedule_of(tmp_path, [{"w": settings}])


@pytest.mark.timeout(60)
def test_a_worker_scheduled_seconds_ahead_is_launched_once(tmp_path):
    (tmp_path / "marker_worker.py").write_text(
        "import sys\nopen('marker.txt', 'a').write(' '.join(sys.argv[2:]) + '\\n')\n"
    )
    at = (datetime.now(UTC) + timedelta(seconds=3)).strftime("%H:%M:%S")
    path = scheduler_config(
        tmp_path,
        [{"marker_worker": {"every": "day", "at": at, "cmd line opts": "--run-date today"}}],
    )
    listed = subprocess.run(
        [PY, "-m", "nowcast.scheduler", str(path), "--list"],
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert listed.returncode == 0 and "marker_worker --run-date today" in listed.stdout
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
