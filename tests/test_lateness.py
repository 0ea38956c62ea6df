"""Lateness, driven by a test clock: no sleeping for hours."""

from __future__ import annotations

from datetime import datetime
from zoneinfo import ZoneInfo

import pytest

from nowcast.config import Config
from nowcast.errors import ConfigError
from nowcast.lateness import Lateness, parse

VANCOUVER = ZoneInfo("America/Vancouver")


def lateness(zone=VANCOUVER, **late_after) -> Lateness:
    config = Config()
    config.file = "nowcast.yaml"
    config["message registry"] = {
        "workers": {name: {"success": "ok", "late after": v} for name, v in late_after.items()}
    }
    return Lateness(config, zone)


def at(*args, zone=VANCOUVER) -> float:
    return datetime(*args, tzinfo=zone).timestamp()


@pytest.mark.parametrize(
    "value, expected",
    [
        ("08:30", ("time", (8, 30))),
        ("8:05", ("time", (8, 5))),
        ("2h", ("after", 7200.0)),
        ("90m", ("after", 5400.0)),
        ("1h30m", ("after", 5400.0)),
        ("45s", ("after", 45.0)),
        (600, ("after", 600.0)),
    ],
)
def test_late_after_is_a_time_of_day_or_a_duration(value, expected):
    assert parse(value, "where") == expected


@pytest.mark.parametrize("value", ["24:00", "8.30", "soon", "", 0, -5, True, None, "0m"])
def test_a_bad_late_after_is_refused_naming_key_and_value(value):
    with pytest.raises(ConfigError) as e:
        lateness(run_model=value)
    assert "workers: run_model: late after" in str(e.value) and repr(value) in str(e.value)


def test_late_at_a_time_of_day_fires_once_and_not_after_a_success():
    late = lateness(run_model="08:30", make_plots="09:00")
    assert late.due(at(2026, 11, 25, 8, 29)) == []
    late.reported("make_plots", "success", "c1", at(2026, 11, 25, 8, 45))
    fired = late.due(at(2026, 11, 25, 8, 30))
    assert [w for w, _ in fired] == ["run_model"]
    assert fired[0][1]["day"] == "2026-11-25" and fired[0][1]["deadline"] == at(2026, 11, 25, 8, 30)
    assert late.due(at(2026, 11, 25, 9, 30)) == []  # once a day; make_plots succeeded today
    # a success yesterday does not count today
    fired = late.due(at(2026, 11, 26, 9, 1))
    assert sorted(w for w, _ in fired) == ["make_plots", "run_model"]


def test_late_at_a_time_of_day_follows_the_zone_across_dst():
    late = lateness(run_model="08:30")
    # 2026-03-08: clocks go forward in Vancouver; 08:30 local is 15:30 UTC, not 16:30
    assert late.due(at(2026, 3, 8, 15, 29, zone=ZoneInfo("UTC"))) == []
    assert [w for w, _ in late.due(at(2026, 3, 8, 15, 30, zone=ZoneInfo("UTC")))] == ["run_model"]
    # 2026-11-01: clocks go back; 08:30 local is 16:30 UTC
    assert late.due(at(2026, 11, 1, 16, 29, zone=ZoneInfo("UTC"))) == []
    assert [w for w, _ in late.due(at(2026, 11, 1, 16, 30, zone=ZoneInfo("UTC")))] == ["run_model"]


def test_late_after_a_duration_counts_from_the_cycles_first_launch():
    late = lateness(run_model="2h")
    start = at(2026, 11, 25, 5, 30)
    assert late.due(start + 3 * 3600) == []  # no cycle began: nothing is late
    late.cycle_began("c1", start)
    late.cycle_began("c1", start + 600)  # a later launch of the same cycle changes nothing
    assert late.due(start + 7199) == []
    (fired,) = late.due(start + 7200)
    assert (
        fired[0] == "run_model" and "2:00:00 after the cycle's first launch" in fired[1]["summary"]
    )
    assert late.due(start + 9000) == []


def test_a_success_in_the_cycle_before_the_deadline_is_not_late():
    late = lateness(run_model="1h")
    start = at(2026, 11, 25, 5, 30)
    late.cycle_began("c1", start)
    late.reported("run_model", "failure", "c1", start + 60)
    late.reported("run_model", "success", "c1", start + 120)
    assert late.due(start + 4000) == []
