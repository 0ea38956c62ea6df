"""The log aggregator: records from every process, in order, with origins, and
records kept through a short outage."""

from __future__ import annotations

import re

import pytest
from conftest import wait_for


@pytest.fixture
def aggregated(system):
    system.aggregated = system.with_aggregator()
    system.worker_module(
        "chatty",
        "import logging\nlog = logging.getLogger('chatty')\n"
        "for i in range(50):\n    log.info('line %d', i)\nreturn {'pid': os.getpid()}",
    )
    system.after("def after_chatty(msg, config, checklist):\n    return []\n")
    return system


def lines_of(text: str, name: str) -> list[tuple[str, int, str]]:
    return [
        (m[1], int(m[2]), m[3])
        for m in re.finditer(rf"^(\S+) (\d+) \[{name}\] \w+ (.*)$", text, re.M)
    ]


@pytest.mark.timeout(60)
def test_records_from_workers_and_manager_arrive_in_order_with_origins(aggregated):
    aggregated.write()
    aggregator = aggregated.spawn("nowcast.log_aggregator")
    aggregated.start()
    assert aggregated.run_worker("chatty").returncode == 0
    pid = aggregated.checklist()["chatty"]["pid"]
    wait_for(
        lambda: aggregated.aggregated.exists() and "line 49" in aggregated.aggregated.read_text(),
        what="the worker's last line",
    )
    text = aggregated.aggregated.read_text()
    worker = [(p, m) for _, p, m in lines_of(text, "chatty") if m.startswith("line ")]
    assert worker == [(pid, f"line {i}") for i in range(50)]
    manager = lines_of(text, "manager")
    assert {p for _, p, _ in manager} == {aggregated.manager.pid}
    assert any("checklist updated with [chatty]" in m for _, _, m in manager)
    assert aggregator.poll() is None


@pytest.mark.timeout(60)
def test_records_logged_while_the_aggregator_is_down_arrive_when_it_starts(aggregated):
    aggregated.start()  # no aggregator yet
    assert aggregated.run_worker("chatty").returncode == 0
    assert not aggregated.aggregated.exists()
    aggregated.spawn("nowcast.log_aggregator")
    wait_for(
        lambda: (
            aggregated.aggregated.exists()
            and "checklist updated with [chatty]" in aggregated.aggregated.read_text()
        ),
        timeout=30,
        what="the manager's records from before the aggregator started",
    )
    text = aggregated.aggregated.read_text()
    assert text.index("[manager] INFO running in process") < text.index(
        "checklist updated with [chatty]"
    )


@pytest.mark.timeout(60)
def test_debug_workers_do_not_send_to_the_aggregator(aggregated):
    aggregated.write()
    result = aggregated.run_worker("chatty", "--debug")
    assert result.returncode == 0 and "line 49" in result.stderr


@pytest.mark.timeout(60)
def test_with_curve_keys_records_still_arrive(aggregated, tmp_path):
    import subprocess
    import sys

    keys = tmp_path / "keys"
    subprocess.run(
        [sys.executable, "-m", "nowcast.keys", str(keys)], check=True, capture_output=True
    )
    aggregated.zmq_extra["curve keys"] = str(keys)
    aggregated.write()
    aggregated.spawn("nowcast.log_aggregator")
    aggregated.start()
    assert aggregated.run_worker("chatty").returncode == 0
    wait_for(
        lambda: aggregated.aggregated.exists() and "line 49" in aggregated.aggregated.read_text(),
        what="the worker's records through CURVE",
    )
    assert "CURVE on" in aggregated.aggregated.read_text()
