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
import socket as net

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
        """The aggregator logs through the ``logging: aggregator`` section."""
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
        """Write one received record through the aggregator's handlers."""
        try:
            data = json.loads(raw)
            if not isinstance(data, dict):
                raise ValueError("not a mapping")
            record = logging.makeLogRecord(
                {
                    "name": str(data.get("name", "unknown")),
                    "levelno": int(data.get("levelno", logging.INFO)),
                    "levelname": str(data.get("levelname", "INFO")),
                    "msg": str(data.get("msg", "")),
                    "args": None,
                    "created": float(data.get("created", 0)),
                    "msecs": float(data.get("msecs", 0)),
                    "exc_text": data.get("exc_text"),
                    "origin_host": str(data.get("origin_host", "?")),
                    "origin_pid": data.get("origin_pid", "?"),
                    "origin_name": str(data.get("origin_name", data.get("name", "?"))),
                    "logger_name": str(data.get("logger_name", data.get("name", "?"))),
                }
            )
        except (ValueError, TypeError) as e:
            self.logger.warning("dropped an unreadable log record (%s): %r", e, raw[:80])
            return
        logging.getLogger(record.name).handle(record)

    def shutdown(self) -> None:
        if hasattr(self, "context"):
            self.socket.close(linger=0)
            if self.authenticator is not None:
                self.authenticator.stop()
            self.context.term()


def main(argv: list[str] | None = None) -> None:
    """Entry point of ``python -m nowcast.log_aggregator config.yaml`` (NEMO_Nowcast's
    ``main()``): run the aggregator until it is stopped, then exit."""
    run_process(LogAggregator, argv)


run = main  # the entry point of ``nowcast log-aggregator``


if __name__ == "__main__":
    main()
