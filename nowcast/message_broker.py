"""The message broker: relays messages between workers and the manager.

Workers' REQ sockets connect to a ROUTER socket on ``zmq: ports: workers``; the
manager connects to a DEALER socket on ``zmq: ports: manager``. The broker holds no
state, so the manager can restart at will; a message that arrives while no manager
is connected is dropped with a log line, and its worker re-sends it.

It binds ``zmq: bind`` (default 127.0.0.1, loopback only). Binding any other
address needs CurveZMQ keys (``zmq: curve keys``), or ``zmq: insecure: true``.
With keys, only clients whose public keys are in the keys' ``authorized/``
directory get through; each refusal is logged (at most one line every 10 s).
SIGHUP re-reads the config and the authorized keys.

Usage: ``python -m nowcast.message_broker config.yaml``
"""

from __future__ import annotations

import time

from nowcast import defaults, sockets
from nowcast.config import Config, require_zmq
from nowcast.errors import ConfigError
from nowcast.process import LongRunningProcess, main


class MessageBroker(LongRunningProcess):
    """Relay between the workers' socket and the manager's."""

    name = "message_broker"

    def validate(self, config: Config) -> None:
        require_zmq(config)
        sockets.check_keys(config, "server")
        host = sockets.bind_host(config)
        open_to_all = config["zmq"].get("insecure") is True
        if not sockets.is_loopback(host) and sockets.keys_dir(config) is None and not open_to_all:
            raise ConfigError(
                f"{config.file}: key 'zmq: bind' is {host!r}, which is not loopback, and no "
                f"keys are configured: anyone who reaches the ports could write to the "
                f"checklist and launch workers. Make keys with 'python -m nowcast.keys DIR' "
                f"and set 'zmq: curve keys: DIR' (or, on a trusted network only, set "
                f"'zmq: insecure: true')"
            )

    def setup(self) -> None:
        import zmq

        self._zmq = zmq
        self.context = zmq.Context()
        self.authenticator = None
        self._refused = 0
        self._last_refusal_log = 0.0
        self._start_authenticator()
        self._bind()
        self._dropped = 0
        self._last_drop_log = 0.0

    def _start_authenticator(self) -> None:
        self.authenticator = sockets.authenticator(
            self.context, self.config, self.authenticator, self.logger
        )

    def _bind(self) -> None:
        zmq = self._zmq
        self.workers = sockets.server(self.context, zmq.ROUTER, self.config, "workers")
        self.manager = sockets.server(self.context, zmq.DEALER, self.config, "manager")
        self.poller = zmq.Poller()
        self.poller.register(self.workers, zmq.POLLIN)
        self.poller.register(self.manager, zmq.POLLIN)
        self.monitors = {}
        if self.authenticator is not None:
            refusals = zmq.EVENT_HANDSHAKE_FAILED_AUTH | zmq.EVENT_HANDSHAKE_FAILED_PROTOCOL
            for socket in (self.workers, self.manager):
                monitor = socket.get_monitor_socket(refusals)
                self.monitors[monitor] = socket
                self.poller.register(monitor, zmq.POLLIN)
        self.logger.info("worker socket bound to %s", sockets.bind_address(self.config, "workers"))
        self.logger.info("manager socket bound to %s", sockets.bind_address(self.config, "manager"))

    def _close(self) -> None:
        for monitor, socket in self.monitors.items():
            self.poller.unregister(monitor)
            socket.disable_monitor()
            monitor.close(linger=0)
        self.monitors = {}
        self.workers.close(linger=0)
        self.manager.close(linger=0)

    def apply_config(self, old: Config, new: Config) -> None:
        addresses = [
            (sockets.bind_address(c, "workers"), sockets.bind_address(c, "manager"))
            for c in (old, new)
        ]
        keys_changed = sockets.keys_dir(old) != sockets.keys_dir(new)
        if keys_changed or self.authenticator is not None:
            self._start_authenticator()  # re-reads the authorized keys
        if addresses[0] != addresses[1] or keys_changed:
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
        for monitor in self.monitors:
            if monitor in events:
                self._log_refusal(monitor)

    def _log_refusal(self, monitor) -> None:
        from zmq.utils.monitor import recv_monitor_message

        zmq = self._zmq
        while monitor.poll(0):
            event = recv_monitor_message(monitor, zmq.NOBLOCK)
            self._refused += 1
            endpoint = event.get("endpoint", b"")
            if isinstance(endpoint, bytes):
                endpoint = endpoint.decode(errors="replace")
        now = time.monotonic()
        if now - self._last_refusal_log >= 10:
            self.logger.warning(
                "refused %d connection(s) on %s that did not present an authorized key",
                self._refused,
                endpoint,
            )
            self._refused = 0
            self._last_refusal_log = now

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
            if self.authenticator is not None:
                self.authenticator.stop()
            self.context.term()


if __name__ == "__main__":
    main(MessageBroker)
