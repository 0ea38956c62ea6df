"""Logging: text from messages cannot forge log lines."""

from __future__ import annotations

import logging
import re

import pytest
from conftest import wait_for

from nowcast.logs import EscapeArgs, escape

FORGED = "2026-11-25 08:00:00,000 CRITICAL [manager] FORGED"


@pytest.mark.timeout(60)
def test_message_text_stays_on_its_log_line(system):
    system.worker_module("known")
    system.after("def after_known(msg, config, checklist):\n    return []\n")
    system.start()
    hostile = [
        {"source": f"nobody\n{FORGED} 1", "type": "success", "payload": None, "id": "a:1:ff:1"},
        {"source": "known", "type": f"odd\r\n{FORGED} 2", "payload": None, "id": "a:1:ff:2"},
        {"source": "known", "type": "success", "payload": None, "id": f"x\n{FORGED} 3"},
        {"source": "known", "type": "need", "payload": f"k\u2028{FORGED} 4", "id": "a:1:ff:4"},
        f"source: known\ntype: [\n{FORGED} 5\x1b[2J",
    ]
    for message in hostile:
        assert system.request(message) is not None
    # the third again: 'already applied', which names its id
    assert system.request(hostile[2]) is not None
    wait_for(lambda: system.log().count("already applied") == 1, what="the re-sent message")
    log = system.log()
    assert not re.search(r"^\S* ?2026-11-25 08:00:00,000 CRITICAL", log, re.M), log
    assert "FORGED" in log and "\x1b" not in log and "\u2028" not in log
    assert f"nobody\\n{FORGED} 1" in log
    assert f"odd\\r\\n{FORGED} 2" in log


def test_escape_keeps_text_on_one_line():
    assert escape("a\nb\r\t\x00\x1b[1m\x7f\x85\u2028\u2029 é ✓") == (
        "a\\nb\\r\\t\\x00\\x1b[1m\\x7f\\x85\\u2028\\u2029 é ✓"
    )


def test_filter_escapes_arguments_not_the_format():
    record = logging.LogRecord(
        "manager", logging.INFO, __file__, 1, "from %s:\n%s %d", ("a\nb", OSError("x\ny"), 3), None
    )
    assert EscapeArgs().filter(record)
    assert record.getMessage() == "from a\\nb:\nx\\ny 3"
