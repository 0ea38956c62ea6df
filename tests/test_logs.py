"""Logging: text from messages cannot forge log lines."""

from __future__ import annotations

import logging
import random
import re

import pytest
from conftest import wait_for

from nowcast.logs import EscapeArgs, escape, flushes_held, keep_times, log_here

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


def _file_logger(tmp_path, name: str, handler: logging.Handler | None = None):
    handler = handler or logging.FileHandler(tmp_path / "x.log")
    handler.setFormatter(logging.Formatter("%(levelname)s [%(name)s] %(message)s"))
    logger = logging.getLogger(name)
    logger.propagate = False
    logger.addHandler(handler)
    return logger, handler


def test_flushes_held_write_the_lines_once_at_the_end(tmp_path):
    logger, handler = _file_logger(tmp_path, "held-flushes")
    logger.setLevel(logging.INFO)
    try:
        with flushes_held(logger):
            for i in range(3):
                logger.info("line %d", i)
            assert (tmp_path / "x.log").read_text() == ""  # held, in the handler's buffer
        assert (tmp_path / "x.log").read_text() == "".join(
            f"INFO [held-flushes] line {i}\n" for i in range(3)
        )
        assert "flush" not in vars(handler)  # the class's flush again
        logger.info("after")
        assert (tmp_path / "x.log").read_text().endswith("INFO [held-flushes] after\n")
    finally:
        logger.removeHandler(handler)
        handler.close()


def test_flushes_held_flush_when_the_block_raises(tmp_path):
    logger, handler = _file_logger(tmp_path, "held-flushes-raise")
    logger.setLevel(logging.INFO)
    try:
        with pytest.raises(RuntimeError), flushes_held(logger):
            logger.info("before the error")
            raise RuntimeError("x")
        assert (tmp_path / "x.log").read_text() == "INFO [held-flushes-raise] before the error\n"
        assert "flush" not in vars(handler)
    finally:
        logger.removeHandler(handler)
        handler.close()


def test_flushes_held_leave_a_handler_with_its_own_flush_alone(tmp_path):
    flushed = []

    class Counting(logging.FileHandler):
        def flush(self) -> None:
            flushed.append(1)
            super().flush()

    logger, handler = _file_logger(tmp_path, "held-flushes-own", Counting(tmp_path / "x.log"))
    logger.setLevel(logging.INFO)
    try:
        with flushes_held(logger):
            logger.info("a")
            logger.info("b")
            assert len(flushed) == 2
            assert (tmp_path / "x.log").read_text().count("\n") == 2
    finally:
        logger.removeHandler(handler)
        handler.close()


@pytest.mark.timeout(60)
def test_a_messages_log_lines_are_in_the_file_when_it_is_answered(system):
    """The manager holds back its log file's flushes while it applies a batch
    of messages; every line is written before it answers (and before it waits)."""
    system.worker_module("known")
    system.after("def after_known(msg, config, checklist):\n    return []\n")
    system.start()
    for i in range(5):
        message = {"source": "known", "type": "success", "payload": {"n": i}, "id": f"a:1:ff:{i}"}
        assert system.request(message)["type"] == "ack"
        log = system.log()  # read at once: no waiting for the line
        assert log.count("checklist updated with [known] items from known worker") == i + 1


class _Records(logging.Handler):
    def __init__(self) -> None:
        super().__init__()
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.format(record)  # message and asctime, as a file handler's formatter makes them
        self.records.append(record)


_TIMES = ("created", "msecs", "relativeCreated", "asctime")


@pytest.mark.parametrize("kind", ["plain", "own caller", "no caller"])
def test_log_here_makes_the_record_logger_log_makes(kind, monkeypatch):
    class OwnCaller(logging.Logger):
        def findCaller(self, stack_info=False, stacklevel=1):
            return super().findCaller(stack_info, stacklevel + 1)  # past its own frame

    logger = OwnCaller("log-here-own") if kind == "own caller" else logging.getLogger("log-here")
    if kind == "no caller":
        monkeypatch.setattr(logging, "_srcfile", None)
    handler = _Records()
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s [%(name)s] %(message)s"))
    logger.addHandler(handler)
    logger.addFilter(EscapeArgs())
    logger.setLevel(logging.INFO)
    try:
        # both on one line: the same file, line and function
        text, args = "a %s from %s", ("x\ny", 3)
        logger.info(text, *args), log_here(logger, logging.INFO, text, *args)  # fmt: skip
        log_here(logger, logging.DEBUG, "not enabled")
    finally:
        logger.removeHandler(handler)
    made, here = ({k: v for k, v in vars(r).items() if k not in _TIMES} for r in handler.records)
    assert made == here
    assert here["message"] == "a x\\ny from 3"
    if kind == "no caller":
        assert (here["pathname"], here["lineno"]) == ("(unknown file)", 0)
    else:
        assert (here["pathname"], here["funcName"]) == (
            __file__,
            "test_log_here_makes_the_record_logger_log_makes",
        )


@pytest.mark.parametrize(
    "fmt, datefmt, converter, msec_format",
    [
        ("%(asctime)s %(levelname)s [%(name)s] %(message)s", None, None, None),
        ("%(asctime)s %(message)s", "%d %b %Y %H:%M:%S %Z", None, None),
        ("%(asctime)s %(message)s", None, "gmtime", None),
        ("%(asctime)s %(message)s", None, None, "%s.%03d"),
        ("%(asctime)s %(message)s", None, "own", None),
    ],
)
def test_a_formatter_keeping_its_last_second_writes_the_same_text(
    fmt, datefmt, converter, msec_format
):
    import time

    kept, fresh = logging.Formatter(fmt, datefmt), logging.Formatter(fmt, datefmt)
    for formatter in (kept, fresh):
        if converter is not None:
            formatter.converter = (
                time.gmtime if converter == "gmtime" else lambda t: time.localtime(t + 3600)
            )
        if msec_format is not None:
            formatter.default_msec_format = msec_format
    keep_times(kept)
    keep_times(kept)  # once is enough: not wrapped twice
    assert kept.formatTime.__name__ == "format_time"
    rng = random.Random(3)
    when = 1_765_000_000.0
    for _ in range(300):
        when += rng.choice([0.0, 0.0004, 0.2, 0.9996, 1.0, 59.5, 86_400.0])
        record = logging.LogRecord("n", logging.INFO, __file__, 1, "m", (), None)
        record.created, record.msecs = when, int((when - int(when)) * 1000) + 0.0
        assert kept.format(record) == fresh.format(record)


def test_keep_times_leaves_a_formatter_subclass_alone():
    class Own(logging.Formatter):
        pass

    formatter = Own("%(asctime)s")
    keep_times(formatter)
    assert "formatTime" not in vars(formatter)


def test_configure_makes_the_configured_formatters_keep_their_last_second(tmp_path):
    from nowcast import logs
    from nowcast.config import Config

    config = Config()
    config["logging"] = {
        "version": 1,
        "formatters": {"simple": {"format": "%(asctime)s %(message)s"}},
        "handlers": {
            "file": {
                "class": "logging.FileHandler",
                "formatter": "simple",
                "filename": str(tmp_path / "x.log"),
            }
        },
        "loggers": {"kept-times": {"handlers": ["file"], "propagate": False}},
        "root": {"level": "INFO", "handlers": []},
    }
    root = logging.getLogger()
    saved = root.handlers[:], root.level
    logs.configure(config)
    logger = logging.getLogger("kept-times")
    try:
        (handler,) = logger.handlers
        assert handler.formatter.formatTime.__name__ == "format_time"
    finally:
        for handler in logger.handlers:
            handler.close()
        logger.handlers.clear()
        root.handlers[:], root.level = saved
