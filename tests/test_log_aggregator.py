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


@pytest.mark.timeout(60)
def test_any_record_is_written_and_the_next_one_too(aggregated):
    """A level of Infinity made a traceback and a stall per record."""
    import json

    import zmq

    aggregated.write()
    aggregator = aggregated.spawn("nowcast.log_aggregator")
    wait_for(
        lambda: (
            "receiving log records" in aggregated.aggregated.read_text()
            if aggregated.aggregated.exists()
            else False
        ),
        what="the aggregator",
    )
    context = zmq.Context()
    push = context.socket(zmq.PUSH)
    push.connect(f"tcp://127.0.0.1:{aggregated.ports['logging']}")
    try:
        hostile = [
            b'{"name": "x", "levelno": Infinity, "msg": "infinite level"}',
            b'{"name": "x", "levelno": NaN, "created": Infinity, "msg": "nan level"}',
            b'{"name": "x", "levelno": 1e400, "msecs": -1e400, "msg": "huge level"}',
            b'{"name": ["a"], "levelno": "high", "msg": {"a": 1}, "exc_text": 7, "created": -5}',
            b'{"name": "x", "created": 1e300, "msg": "far future"}',
            b"[1, 2]",
            b"\xff\xfe not json",
        ]
        for raw in hostile:
            push.send(raw)
        push.send(json.dumps({"name": "x", "levelno": 20, "msg": "after them all"}).encode())
        wait_for(
            lambda: "after them all" in aggregated.aggregated.read_text(), what="the last record"
        )
    finally:
        push.close(linger=0)
        context.term()
    text = aggregated.aggregated.read_text()
    for words in ("infinite level", "nan level", "huge level", "far future"):
        assert words in text
    assert text.count("dropped an unreadable log record") == 2
    output = (aggregated.dir / "nowcast.log_aggregator.out").read_text()
    assert "Traceback" not in output and "Logging error" not in output, output
    assert aggregator.poll() is None


def test_distinct_logger_names_do_not_make_loggers(aggregated, capsys):
    """Property: any mapping of record fields is written without an error, and
    the aggregator's table of loggers does not grow with the names it sees."""
    import json
    import logging

    from hypothesis import given, settings
    from hypothesis import strategies as st

    from nowcast.log_aggregator import LogAggregator

    aggregator = LogAggregator(None)
    seen = []

    class Keep(logging.Handler):
        def emit(self, record):
            seen.append(self.format(record))

    handler = Keep()
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s [%(name)s] %(message)s"))
    root = logging.getLogger()
    root.addHandler(handler)
    json_values = st.recursive(
        st.none() | st.booleans() | st.floats() | st.integers() | st.text(),
        lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(), inner, max_size=3),
        max_leaves=10,
    )
    fields = [
        "name",
        "levelno",
        "levelname",
        "msg",
        "created",
        "msecs",
        "exc_text",
        "origin_host",
        "origin_pid",
        "origin_name",
    ]
    before = len(logging.Logger.manager.loggerDict)

    @settings(max_examples=300, deadline=None, derandomize=True)
    @given(st.dictionaries(st.sampled_from(fields), json_values), st.text(min_size=1))
    def check(data, name):
        seen.clear()
        aggregator.write(json.dumps({"name": f"distinct.{name}", **data}).encode())
        assert len(seen) == 1

    try:
        check()
    finally:
        root.removeHandler(handler)
    assert len(logging.Logger.manager.loggerDict) == before
    assert "Logging error" not in capsys.readouterr().err
