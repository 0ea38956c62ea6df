"""The log aggregator: one place where every process's log records are written.

Processes on any host send their records to the port ``zmq: ports: logging``,
which the aggregator binds (on ``zmq: bind``, loopback by default, with the same
CurveZMQ keys as the broker when ``zmq: curve keys`` is set). It writes them
through the handlers of the config's ``logging: aggregator`` section (a
``dictConfig`` dict). Each record keeps its origin: ``%(origin_host)s``,
``%(origin_pid)s`` and the logger name ``%(name)s`` (the process's name) can be
used in formats.

Usage: ``python -m nowcast.log_aggregator config.yaml``
"""

from __future__ import annotations

import json
import logging
import math
import socket as net
import time

from nowcast import defaults, sockets
from nowcast.config import Config, require_mapping
from nowcast.errors import ConfigError
from nowcast.nemo_logging import logging_port
from nowcast.process import LongRunningProcess, run_process


def _with_origin(factory):
    """Give records made in this process an origin too, so formats that use it
    work for the aggregator's own records."""
    host = net.gethostname()

    def make(*args, **kwargs):
        record = factory(*args, **kwargs)
        record.origin_host = host
        record.origin_pid = record.process
        record.origin_name = record.name
        record.logger_name = record.name  # NEMO_Nowcast's aggregator formats use it
        return record

    make.gives_origin = True
    return make


class LogAggregator(LongRunningProcess):
    """Receive log records from every process and write them."""

    name = "log_aggregator"
    sends_logs = False

    def __init__(self, args=None, name: str | None = None) -> None:
        super().__init__(args, name)
        # before the first record: the aggregator's own records have an origin too
        logging.setLogRecordFactory(_with_origin(logging.getLogRecordFactory()))

    def validate(self, config: Config) -> None:
        logging_port(config)  # one port, or NEMO_Nowcast's mapping (nowcast.nemo_logging)
        require_mapping(config, "logging", "aggregator")
        sockets.check_keys(config, "server")
        host = sockets.bind_host(config)
        if (
            not sockets.is_loopback(host)
            and sockets.keys_dir(config) is None
            and config["zmq"].get("insecure") is not True
        ):
            raise ConfigError(
                f"{config.file}: key 'zmq: bind' is {config['zmq'].get('bind')!r}, which is not loopback, and no "
                f"keys are configured; make keys with 'python -m nowcast.keys DIR' and set "
                f"'zmq: curve keys: DIR' (or, on a trusted network only, 'zmq: insecure: true')"
            )

    def logging_config(self, config: Config) -> Config:
        """The aggregator logs through the ``logging: aggregator`` section (its
        own records get an origin first: the formats there may use it)."""
        factory = logging.getLogRecordFactory()
        if not getattr(factory, "gives_origin", False):
            logging.setLogRecordFactory(_with_origin(factory))
        own = Config()
        own.file = config.file
        own._dict = {**config._dict, "logging": config["logging"]["aggregator"]}
        return own

    def setup(self) -> None:
        import zmq

        self._zmq = zmq
        self.context = zmq.Context()
        self.authenticator = sockets.authenticator(self.context, self.config, None, self.logger)
        self.socket = sockets.server(self.context, zmq.PULL, self.config, "logging")
        self.logger.info(
            "receiving log records on %s", sockets.bind_address(self.config, "logging")
        )

    def apply_config(self, old: Config, new: Config) -> None:
        self.authenticator = sockets.authenticator(
            self.context, new, self.authenticator, self.logger
        )

    def loop(self) -> None:
        if not self.socket.poll(defaults.POLL_MS):
            return
        for _ in range(defaults.BATCH_MAX):
            try:
                raw = self.socket.recv(self._zmq.NOBLOCK)
            except self._zmq.Again:
                return
            self.write(raw)

    def write(self, raw: bytes) -> None:
        """Write one received record through the aggregator's handlers.

        Any bytes are taken: fields of the wrong type or out of range (a level of
        Infinity, a time of NaN) are replaced by sane values, and what cannot be
        read at all is dropped with a log line. The record goes to the nearest
        logger the aggregator already has for its name (or the root), never to a
        new one, so a stream of distinct names does not make it grow.
        """
        try:
            data = json.loads(raw)
            if not isinstance(data, dict):
                raise ValueError("not a mapping")
            record = _record(data)
        except Exception as e:  # any bytes, any JSON: never a traceback per record
            self.logger.warning(
                "dropped an unreadable log record (%s): %r", type(e).__name__, bytes(raw[:80])
            )
            return
        _nearest_logger(record.name).handle(record)

    def shutdown(self) -> None:
        if hasattr(self, "context"):
            self.socket.close(linger=0)
            if self.authenticator is not None:
                self.authenticator.stop()
            self.context.term()


# Longest logger name, host name or message text kept from a received record.
_NAME_MAX = 200
_TEXT_MAX = 100_000


def _record(data: dict) -> logging.LogRecord:
    """A log record from a received mapping, each field checked and made sane."""
    name = _text(data.get("name"), "unknown", _NAME_MAX)
    levelno = _level(data.get("levelno"))
    created = _number(data.get("created"), time.time())
    if not 0 <= created < 1e11:  # time.localtime() must be able to take it
        created = time.time()
    msecs = _number(data.get("msecs"), 0.0)
    exc_text = data.get("exc_text")
    return logging.makeLogRecord(
        {
            "name": name,
            "levelno": levelno,
            "levelname": logging.getLevelName(levelno),
            "msg": _text(data.get("msg"), "", _TEXT_MAX),
            "args": None,
            "created": created,
            "msecs": msecs if 0 <= msecs < 1000 else 0.0,
            "exc_text": _text(exc_text, "", _TEXT_MAX) if exc_text else None,
            "origin_host": _text(data.get("origin_host"), "?", _NAME_MAX),
            "origin_pid": _text(data.get("origin_pid"), "?", _NAME_MAX),
            "origin_name": _text(data.get("origin_name"), name, _NAME_MAX),
            "logger_name": _text(data.get("logger_name"), name, _NAME_MAX),
        }
    )


def _text(value: object, default: str, limit: int) -> str:
    if value is None:
        return default
    text = value if isinstance(value, str) else json.dumps(value)
    return text[:limit]


def _number(value: object, default: float) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return default
    value = float(value)
    return value if math.isfinite(value) else default


def _level(value: object) -> int:
    """A level between NOTSET and CRITICAL (INFO when it is not a number)."""
    return int(min(max(_number(value, logging.INFO), logging.NOTSET), logging.CRITICAL))


def _nearest_logger(name: str) -> logging.Logger:
    """The logger already made for ``name`` or its nearest ancestor, else the
    root: looked up, never created."""
    existing = logging.Logger.manager.loggerDict
    while name:
        logger = existing.get(name)
        if isinstance(logger, logging.Logger):
            return logger
        name = name.rpartition(".")[0]
    return logging.getLogger()


def main(argv: list[str] | None = None) -> None:
    """Entry point of ``python -m nowcast.log_aggregator config.yaml`` (NEMO_Nowcast's
    ``main()``): run the aggregator until it is stopped, then exit."""
    run_process(LogAggregator, argv)


run = main  # the entry point of ``nowcast log-aggregator``


if __name__ == "__main__":
    main()
