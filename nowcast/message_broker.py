"""The message broker: relays messages between workers and the manager.

Workers' REQ sockets connect to a ROUTER socket on ``zmq: ports: workers``; the
manager connects to a DEALER socket on ``zmq: ports: manager``. The broker holds no
state, so the manager can restart at will; a message that arrives while no manager
is connected is dropped with a log line, and its worker re-sends it.

Usage: ``python -m nowcast.message_broker config.yaml``
"""

from __future__ import annotations

import time

from nowcast import defaults, sockets
from nowcast.config import Config, require_zmq
from nowcast.process import LongRunningProcess, main


class MessageBroker(LongRunningProcess):
    """Relay between the workers' socket and the manager's."""

    name = "message_broker"

    def validate(self, config: Config) -> None:
        require_zmq(config)

    def setup(self) -> None:
        import zmq

        self._zmq = zmq
        self.context = zmq.Context()
        self._bind()
        self._dropped = 0
        self._last_drop_log = 0.0

    def _bind(self) -> None:
        zmq = self._zmq
        self.workers = sockets.server(self.context, zmq.ROUTER, self.config, "workers")
        self.manager = sockets.server(self.context, zmq.DEALER, self.config, "manager")
        self.poller = zmq.Poller()
        self.poller.register(self.workers, zmq.POLLIN)
        self.poller.register(self.manager, zmq.POLLIN)
        self.logger.info("worker socket bound to %s", sockets.bind_address(self.config, "workers"))
        self.logger.info("manager socket bound to %s", sockets.bind_address(self.config, "manager"))

    def _close(self) -> None:
        self.workers.close(linger=0)
        self.manager.close(linger=0)

    def apply_config(self, old: Config, new: Config) -> None:
        addresses = [
            (sockets.bind_address(c, "workers"), sockets.bind_address(c, "manager"))
            for c in (old, new)
        ]
        if addresses[0] != addresses[1]:
            self._close()
            try:
                self._bind()
            except self._zmq.ZMQError as e:
                self.logger.error("cannot bind the new addresses (%s); keeping the old ones", e)
                self.config = old
                self._bind()

    def loop(self) -> None:
        events = dict(self.poller.poll(defaults.POLL_MS))
        if self.workers in events:
            self._relay(self.workers, self.manager, "to the manager")
        if self.manager in events:
            self._relay(self.manager, self.workers, "to a worker")

    def _relay(self, source, destination, where: str) -> None:
        """Forward every message waiting on ``source``."""
        zmq = self._zmq
        for _ in range(defaults.BATCH_MAX):
            try:
                frames = source.recv_multipart(zmq.NOBLOCK, copy=False)
            except zmq.Again:
                return
            try:
                destination.send_multipart(frames, zmq.NOBLOCK, copy=False)
            except zmq.ZMQError as e:
                self._log_drop(where, e)

    def _log_drop(self, where: str, error: Exception) -> None:
        self._dropped += 1
        now = time.monotonic()
        if now - self._last_drop_log >= 5:
            self.logger.warning(
                "dropped %d message(s) that could not be relayed %s (%s); "
                "workers re-send when no reply comes. Is the manager running?",
                self._dropped,
                where,
                error,
            )
            self._dropped = 0
            self._last_drop_log = now

    def shutdown(self) -> None:
        if hasattr(self, "context"):
            self._close()
            self.context.term()


if __name__ == "__main__":
    main(MessageBroker)
