"""Logging set-up for every nowcast process, from the config's ``logging`` section.

Handlers are set here only, at each process's entry point. Rotating file handlers
are made to notice when another process (the ``rotate_logs`` worker) has rotated
their file, and reopen it, so long-running processes keep writing to the new file.
"""

from __future__ import annotations

import logging
import os
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager

from nowcast.config import Config, require_logging
from nowcast.errors import ConfigError

# Keys of the logging section that are not dictConfig's own.
_OWN_KEYS = ("aggregator", "publisher")


def configure(config: Config, debug: bool = False, aggregate: bool = True) -> str:
    """Configure logging from ``config``; return a line saying where logs go.

    When the config has a ``logging: aggregator`` section, records also go to the
    log aggregator (not with ``debug``, and not when ``aggregate`` is false: the
    aggregator itself).

    With ``debug`` everything goes to the console at DEBUG and other handlers are
    silenced, as NEMO_Nowcast's ``--debug`` does.
    """
    import logging.config

    section = require_logging(config)
    if "publisher" in section:
        # NEMO_Nowcast's distributed form: processes log through ``logging: publisher``
        from nowcast.nemo_logging import publisher_section

        section = publisher_section(config) or section
    section = {k: v for k, v in section.items() if k not in _OWN_KEYS}
    section.setdefault("version", 1)
    # dictConfig's default (True) would silence loggers made before this call,
    # such as each process's own
    section.setdefault("disable_existing_loggers", False)
    if section.get("handlers") in ([], None):
        section["handlers"] = {}
    try:
        logging.config.dictConfig(section)
    except (ValueError, TypeError, AttributeError, ImportError) as e:
        cause = f" ({e.__cause__})" if e.__cause__ else ""
        raise ConfigError(f"{config.file}: key 'logging' cannot be used: {e}{cause}") from None
    root = logging.getLogger()
    for handler in root.handlers:
        if getattr(handler, "baseFilename", None) and _rotates(handler):
            _reopen_when_rotated(handler)
    for logger in [root, *logging.root.manager.loggerDict.values()]:
        for handler in getattr(logger, "handlers", ()):  # (placeholders have none)
            if handler.formatter is not None:
                keep_times(handler.formatter)
    if aggregate and "aggregator" in config["logging"] and not debug:
        root.addHandler(AggregatorHandler(config))
    if debug:
        console = None
        for handler in root.handlers:
            if handler.name == "console":
                console = handler
                handler.setLevel(logging.DEBUG)
            else:
                handler.setLevel(logging.CRITICAL + 1)
        if console is None:
            console = logging.StreamHandler(sys.stderr)
            console.setFormatter(
                logging.Formatter("%(asctime)s %(levelname)s [%(name)s] %(message)s")
            )
            root.addHandler(console)
        root.setLevel(logging.DEBUG)
        return "**debug mode** writing log messages to the console"
    return destinations(root)


def destinations(root: logging.Logger) -> str:
    """Say where the records of ``root`` go: its files, the console, the aggregator."""
    where = []
    for handler in root.handlers:
        if getattr(handler, "baseFilename", None):
            where.append(handler.baseFilename)
        elif isinstance(handler, AggregatorHandler):
            where.append(f"the log aggregator at {handler.address}")
        elif isinstance(handler, logging.StreamHandler) and handler.stream in (
            sys.stdout,
            sys.stderr,
            sys.__stdout__,
            sys.__stderr__,
        ):
            where.append("the console")
        else:
            where.append(type(handler).__name__)
    where = list(dict.fromkeys(where))
    if not where:
        return "writing log messages nowhere: the root logger has no handlers"
    listed = where[0] if len(where) == 1 else f"{', '.join(where[:-1])} and {where[-1]}"
    return f"writing log messages to {listed}"


def console_only(level: int = logging.INFO) -> None:
    """Log to stderr alone: for errors before the config could be read."""
    logging.basicConfig(
        level=level,
        format="%(asctime)s %(levelname)s [%(name)s] %(message)s",
        stream=sys.stderr,
    )


def _rotates(handler: logging.Handler) -> bool:
    return hasattr(handler, "doRollover")


def _reopen_when_rotated(handler: logging.Handler) -> None:
    """Make ``handler`` reopen its file when the file at its path is no longer
    the one it has open (renamed away by a rotation in another process)."""
    emit = handler.emit

    def emit_to_current_file(record: logging.LogRecord) -> None:
        stream = handler.stream
        if stream is not None:
            try:
                on_disk = os.stat(handler.baseFilename)
                opened = os.fstat(stream.fileno())
                stale = (on_disk.st_dev, on_disk.st_ino) != (opened.st_dev, opened.st_ino)
            except OSError:
                stale = True
            if stale:
                handler.acquire()
                try:
                    stream.close()
                    handler.stream = handler._open()
                finally:
                    handler.release()
        emit(record)

    handler.emit = emit_to_current_file


def keep_times(formatter: logging.Formatter) -> None:
    """Make ``formatter`` keep the text of the last second it wrote (``asctime``)
    and write the milliseconds to it, instead of converting and formatting the
    time again for every record: the same text. Only a plain ``Formatter``
    converting with ``time.localtime`` or ``time.gmtime`` (each record's time to
    the second, as ``strftime`` formats it) is changed."""
    if type(formatter) is not logging.Formatter or "formatTime" in vars(formatter):
        return
    # ((second, time format, converter), its text), replaced whole: handlers on
    # other threads may share the formatter
    last: list = [(None, "")]

    def format_time(record: logging.LogRecord, datefmt: str | None = None) -> str:
        converter = formatter.converter
        if converter is not time.localtime and converter is not time.gmtime:
            return logging.Formatter.formatTime(formatter, record, datefmt)
        key = (record.created // 1, datefmt or formatter.default_time_format, converter)
        kept = last[0]
        if kept[0] != key:
            kept = last[0] = (key, time.strftime(key[1], converter(record.created)))
        if datefmt:
            return kept[1]
        msec_format = formatter.default_msec_format
        return msec_format % (kept[1], record.msecs) if msec_format else kept[1]

    formatter.formatTime = format_time


_LOG = logging.Logger._log
_FIND_CALLER = logging.Logger.findCaller


def log_here(logger: logging.Logger, level: int, msg: str, *args: object) -> None:
    """``logger.log(level, msg, *args)``, for a line logged for every message:
    the record is the same (the caller's file, line and function), made without
    the walk up the stack ``logging`` takes to find the caller. A logger of a
    class that finds its caller its own way is called as usual."""
    if not logger.isEnabledFor(level):
        return
    kind = type(logger)
    if kind._log is not _LOG or kind.findCaller is not _FIND_CALLER:
        logger.log(level, msg, *args, stacklevel=2)
        return
    if logging._srcfile:
        frame = sys._getframe(1)
        code = frame.f_code
        path, line, function = code.co_filename, frame.f_lineno, code.co_name
    else:  # as logging does when told not to look (logging._srcfile = None)
        path, line, function = "(unknown file)", 0, "(unknown function)"
    logger.handle(logger.makeRecord(logger.name, level, path, line, msg, args, None, function))


@contextmanager
def flushes_held(logger: logging.Logger) -> Iterator[None]:
    """Hold back the flushes of the stream and file handlers that ``logger``'s
    records reach, and flush each once at the end: a batch of records costs one
    write to the file, not one each. The records are the same, and every line is
    in the file when the block ends, however it ends. Handlers of a kind whose
    ``flush`` does something else are left as they are."""
    held = []
    current: logging.Logger | None = logger
    while current is not None:
        for handler in current.handlers:
            if (
                isinstance(handler, logging.StreamHandler)
                and type(handler).flush is logging.StreamHandler.flush
                and "flush" not in vars(handler)
            ):
                handler.flush = _not_yet  # the instance's, over the class's
                held.append(handler)
        current = current.parent if current.propagate else None
    try:
        yield
    finally:
        for handler in held:
            del handler.flush
            try:
                handler.flush()
            except Exception:  # as a failed flush in emit() is reported
                handler.handleError(logging.makeLogRecord({"msg": "(lines held for one flush)"}))


def _not_yet() -> None:
    """A held flush (``flushes_held``)."""


def _escapes() -> dict[int, str]:
    table = {code: f"\\x{code:02x}" for code in [*range(0x20), *range(0x7F, 0xA0)]}
    table.update({0x09: "\\t", 0x0A: "\\n", 0x0D: "\\r", 0x2028: "\\u2028", 0x2029: "\\u2029"})
    return table


_ESCAPES = _escapes()


def escape(text: str) -> str:
    """``text`` with control characters and line breaks written as escapes
    (``\\n``, ``\\x1b``...), so it stays on one log line and cannot forge another."""
    return text.translate(_ESCAPES)


class EscapeArgs(logging.Filter):
    """Escape control characters in the arguments of every record of the logger it
    is added to (a long-running process's own): those arguments carry text from
    messages (a worker's name, a message type or id, a parse error), which must
    not be able to start a log line of its own. The format string, written in
    nowcast's code, and tracebacks are left as they are."""

    def filter(self, record: logging.LogRecord) -> bool:
        args = record.args
        if isinstance(args, tuple):
            # printable text holds no control character nor line break
            if any(not _is_plain(a) for a in args):
                record.args = tuple(_escaped(a) for a in args)
        elif isinstance(args, dict):
            record.args = {k: _escaped(v) for k, v in args.items()}
        return True


_PLAIN = (int, float, type(None))


def _is_plain(value: object) -> bool:
    """Whether ``value`` needs no escaping: a number, None, or printable text
    (``str.isprintable`` is false for every character ``escape`` rewrites)."""
    kind = type(value)
    return (kind is str and value.isprintable()) or isinstance(value, _PLAIN)


def _escaped(value: object) -> object:
    """``value``, or its text escaped when that text holds a control character."""
    if isinstance(value, _PLAIN):
        return value
    try:
        text = value if isinstance(value, str) else str(value)
    except Exception:
        return value  # the handler reports it, as it would have
    escaped = escape(text)
    return value if escaped == text else escaped


class AggregatorHandler(logging.Handler):
    """Send log records to the log aggregator (``zmq: ports: logging``).

    Records wait in a bounded queue while the aggregator is unreachable; beyond
    it they are dropped and counted, and the count is sent as a record of its own
    once the aggregator takes records again. At exit, queued records get
    ``logging linger`` seconds (default 1) to leave.
    """

    def __init__(self, config: Config) -> None:
        super().__init__()
        import socket as net

        import zmq

        from nowcast import defaults, sockets

        self._zmq = zmq
        self._context = zmq.Context()
        zmq_config = config["zmq"]
        self._socket = sockets.client(self._context, zmq.PUSH, config, "logging")
        self.address = sockets.address(config, "logging")
        self._socket.setsockopt(
            zmq.SNDHWM, int(zmq_config.get("logging buffer", defaults.LOG_BUFFER))
        )
        self._socket.setsockopt(zmq.LINGER, int(float(zmq_config.get("logging linger", 1)) * 1000))
        self._origin = {"origin_host": net.gethostname(), "origin_pid": os.getpid()}
        self.dropped = 0

    def emit(self, record: logging.LogRecord) -> None:
        import json

        try:
            data = {
                "name": record.name,
                "levelno": record.levelno,
                "levelname": record.levelname,
                "msg": record.getMessage(),
                "created": record.created,
                "msecs": record.msecs,
                "exc_text": self._exc_text(record),
                "origin_name": record.name,
                # the process's name in NEMO_Nowcast's aggregator formats
                "logger_name": getattr(record, "logger_name", record.name),
                **self._origin,
            }
            if self.dropped:
                self._send(
                    json.dumps(
                        {
                            **data,
                            "levelno": logging.WARNING,
                            "levelname": "WARNING",
                            "exc_text": None,
                            "msg": f"{self.dropped} log record(s) dropped while the log "
                            f"aggregator was unreachable",
                        }
                    )
                )
                self.dropped = 0
            self._send(json.dumps(data, default=str))
        except self._zmq.Again:
            self.dropped += 1
        except Exception:
            self.handleError(record)

    def _send(self, text: str) -> None:
        self._socket.send_string(text, self._zmq.NOBLOCK)

    def _exc_text(self, record: logging.LogRecord) -> str | None:
        if record.exc_info and not record.exc_text:
            record.exc_text = logging.Formatter().formatException(record.exc_info)
        return record.exc_text

    def close(self) -> None:
        try:
            if hasattr(self, "_socket"):  # not when __init__ failed
                self._socket.close()
                self._context.term()
        finally:
            super().close()
