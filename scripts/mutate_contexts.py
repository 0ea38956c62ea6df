"""A pytest plugin for ``scripts/mutate.py``: records which test runs which line,
and how long each test takes.

Before each test it names the test as coverage's context, both in the pytest
process (``switch_context``) and, through an environment variable that the
coverage configuration reads as its static context, in every process the test
starts (they inherit the environment). At the end it writes each test's
duration and outcome to the file named by ``NOWCAST_MUTATE_DURATIONS``.
"""

from __future__ import annotations

import json
import os

import pytest

CONTEXT_VARIABLE = "NOWCAST_MUTATE_CONTEXT"
_results: dict[str, dict] = {}


@pytest.hookimpl(tryfirst=True)
def pytest_runtest_setup(item: pytest.Item) -> None:
    os.environ[CONTEXT_VARIABLE] = item.nodeid
    try:
        import coverage
    except ImportError:
        return
    current = coverage.Coverage.current()
    if current is not None:
        current.switch_context(item.nodeid)


def pytest_runtest_logreport(report: pytest.TestReport) -> None:
    result = _results.setdefault(report.nodeid, {"duration": 0.0, "outcome": "passed"})
    result["duration"] += report.duration
    if report.outcome != "passed" and result["outcome"] == "passed":
        result["outcome"] = report.outcome


def pytest_sessionfinish(session: pytest.Session) -> None:
    target = os.environ.get("NOWCAST_MUTATE_DURATIONS")
    if target:
        with open(target, "w") as f:
            json.dump(_results, f)
