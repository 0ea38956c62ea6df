"""The message broker: relays messages between workers and the manager.

Workers' REQ sockets connect to a ROUTER socket on ``zmq: ports: workers``; the
manager connects to a DEALER socket on ``zmq: ports: manager``. The broker holds no
state, so the manager can restart at will; a message that arrives while no manager
is connected is dropped with a log line, and its worker re-sends it.

The relay itself runs in libzmq (``zmq.proxy_steerable``, which releases the GIL)
in a thread of the broker; the main thread keeps the flags, SIGHUP and the log of
refused connections, and stops the relay through an inproc control socket whenever
it must touch the two sockets. Sockets change hands only while the relay thread is
not running: they are made before it starts and used again after it is joined.

libzmq's proxy reads a worker's message only when the manager's socket can take
it, so with no manager connected it would hold messages until one connects. To
drop them instead, as workers expect (they re-send with the same message id), the
main thread stops the relay every ``RELAY_CHECK`` seconds, and while the manager's
socket cannot take a message (none connected, or its queue full) relays in Python,
dropping what cannot be sent, until it can. The manager's socket never waits to
send (``SNDTIMEO`` 0): a send that fails makes the proxy return ``EAGAIN``; that
message is dropped and counted, and the relay starts again. Drops are logged at
most once every 5 s. Replies to a worker that has gone are dropped by the ROUTER.
Messages over ``zmq: max message size`` are relayed (up to ``OVERSIZE_FACTOR``
times it) for the manager to answer with ``invalid message``; ZeroMQ itself drops
larger ones and closes their connection.

It binds ``zmq: bind`` (default 127.0.0.1, loopback only). Binding any other
address needs CurveZMQ keys (``zmq: curve keys``), or ``zmq: insecure: true``.
With keys, only clients whose public keys are in the keys' ``authorized/``
directory get through; each refusal is logged (at most one line every 10 s).
SIGHUP re-reads the config and the authorized keys, and re-binds when the ports,
the bind address or the keys directory changed; a bind that fails keeps the old
sockets.

Usage: ``python -m nowcast.message_broker config.yaml``
"""

from __future__ import annotations

import threading
import time
from typing import Any

from nowcast import defaults, sockets
from nowcast.config import Config, require_zmq
from nowcast.errors import ConfigError
from nowcast.process import LongRunningProcess, run_process

#: The broker's two sockets, by the name of their port in ``zmq: ports``.
ROLES = ("workers", "manager")

_LABELS = {"workers": "worker", "manager": "manager"}


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
                f"{config.file}: key 'zmq: bind' is {config['zmq'].get('bind')!r}, which is not loopback, and no "
                f"keys are configured: anyone who reaches the ports could write to the "
                f"checklist and launch workers. Make keys with 'python -m nowcast.keys DIR' "
                f"and set 'zmq: curve keys: DIR' (or, on a trusted network only, set "
                f"'zmq: insecure: true')"
            )

    # setting up and tearing down

    def setup(self) -> None:
        import zmq

        self._zmq = zmq
        self.context = zmq.Context()
        self.authenticator = None
        self._sockets: dict[str, Any] = {}
        self._monitors: dict[Any, Any] = {}
        self._refused = 0
        self._last_refusal_log = 0.0
        self._dropped = 0
        self._last_drop_log = 0.0
        self._lost: str | None = None
        # the relay thread and the pair of sockets that steer it
        self._relay: threading.Thread | None = None
        self._relay_error: Exception | None = None
        self._next_check = 0.0
        control = f"inproc://relay-control-{id(self)}"
        self._control = self.context.socket(zmq.PAIR)  # the main thread's end
        self._control.bind(control)
        self._relay_control = self.context.socket(zmq.PAIR)  # the relay thread's end
        self._relay_control.connect(control)
        self._start_authenticator()
        for role in ROLES:
            try:
                self._sockets[role] = self._open(self.config, role)
            except zmq.ZMQError as e:
                raise ConfigError(
                    f"{self.config.file}: cannot bind {sockets.bind_address(self.config, role)} "
                    f"(zmq: ports: {role}): {e}"
                ) from None
        self._watch_refusals()

    def _start_authenticator(self) -> None:
        self.authenticator = sockets.authenticator(
            self.context, self.config, self.authenticator, self.logger
        )

    def _open(self, config: Config, role: str, retry: bool = False) -> Any:
        """The bound socket for ``role``. With ``retry``, wait a little for its
        address to be released by a socket just closed: ZeroMQ closes in the
        background."""
        zmq = self._zmq
        kind = zmq.ROUTER if role == "workers" else zmq.DEALER
        deadline = time.monotonic() + defaults.REBIND_WAIT
        while True:
            try:
                socket = sockets.server(self.context, kind, config, role)
                break
            except zmq.ZMQError as e:
                if not retry or e.errno != zmq.EADDRINUSE or time.monotonic() > deadline:
                    raise
                time.sleep(0.01)
        # a send that cannot be done at once fails, so the relay never waits on one
        socket.setsockopt(zmq.SNDTIMEO, 0)
        self.logger.info("%s socket bound to %s", _LABELS[role], sockets.bind_address(config, role))
        return socket

    def _watch_refusals(self) -> None:
        """With CURVE on, watch both sockets for refused connections; then make
        the pollers of both ways of relaying."""
        zmq = self._zmq
        if self.authenticator is not None:
            refusals = zmq.EVENT_HANDSHAKE_FAILED_AUTH | zmq.EVENT_HANDSHAKE_FAILED_PROTOCOL
            for socket in self._sockets.values():
                self._monitors[socket.get_monitor_socket(refusals)] = socket
        self._here = zmq.Poller()  # relaying in Python
        self._here.register(self._sockets["workers"], zmq.POLLIN)
        self._here.register(self._sockets["manager"], zmq.POLLIN | zmq.POLLOUT)
        self._watching = zmq.Poller()  # while the relay thread runs
        self._watching.register(self._control, zmq.POLLIN)
        for monitor in self._monitors:
            self._here.register(monitor, zmq.POLLIN)
            self._watching.register(monitor, zmq.POLLIN)

    def _unwatch_refusals(self) -> None:
        for monitor, socket in self._monitors.items():
            socket.disable_monitor()
            monitor.close(linger=0)
        self._monitors = {}

    def shutdown(self) -> None:
        if not hasattr(self, "context"):
            return
        self._log_stop(self._stop_relay())
        self._unwatch_refusals()
        for socket in self._sockets.values():
            socket.close(linger=0)
        self._control.close(linger=0)
        self._relay_control.close(linger=0)
        if self.authenticator is not None:
            self.authenticator.stop()
        self.context.term()

    # reloading

    def apply_config(self, old: Config, new: Config) -> None:
        keys_changed = sockets.keys_dir(old) != sockets.keys_dir(new)
        if keys_changed or self.authenticator is not None:
            self._start_authenticator()  # re-reads the authorized keys
        moved = [
            role
            for role in ROLES
            if keys_changed or sockets.bind_address(old, role) != sockets.bind_address(new, role)
        ]
        if not moved:
            return
        self._log_stop(self._stop_relay())
        self._unwatch_refusals()
        try:
            if not self._rebind(moved, old, new):
                self.config = old
        finally:
            if len(self._sockets) == len(ROLES):
                self._watch_refusals()

    def _rebind(self, moved: list[str], old: Config, new: Config) -> bool:
        """Bind new sockets for the ``moved`` roles, then close the old ones; if a
        bind fails, keep the old sockets (re-made if their address had to be
        freed first). Returns whether the new addresses are in use."""
        zmq = self._zmq
        made = {}
        try:
            for role in moved:
                same_address = sockets.bind_address(old, role) == sockets.bind_address(new, role)
                if same_address:  # only the keys changed: free the address first
                    self._sockets.pop(role).close()
                made[role] = self._open(new, role, retry=same_address)
        except zmq.ZMQError as e:
            self.logger.error("cannot bind the new addresses (%s); keeping the old ones", e)
            for socket in made.values():
                socket.close(linger=0)
            for role in ROLES:
                if role not in self._sockets:
                    try:
                        self._sockets[role] = self._open(old, role, retry=True)
                    except zmq.ZMQError as again:
                        self._lost = f"cannot bind {sockets.bind_address(old, role)} again: {again}"
                        self.logger.critical("%s", self._lost)
            return False
        for role, socket in made.items():
            if role in self._sockets:
                self._sockets[role].close()
            self._sockets[role] = socket
        return True

    # relaying

    def loop(self) -> None:
        if self._lost is not None:
            raise ConfigError(self._lost)  # stops the broker; supervisord restarts it
        if self._relay is None:
            self._relay_here()
        else:
            self._watch_relay()

    def _relay_here(self) -> None:
        """Start the relay thread if the manager's socket can take a message;
        otherwise relay in Python, dropping what cannot be sent to the manager."""
        zmq = self._zmq
        workers, manager = self._sockets["workers"], self._sockets["manager"]
        if manager.get(zmq.EVENTS) & zmq.POLLOUT:
            self._start_relay()
            return
        events = dict(self._here.poll(defaults.POLL_MS))
        if events.get(workers, 0) & zmq.POLLIN:
            self._forward(workers, manager, "to the manager")
        if events.get(manager, 0) & zmq.POLLIN:
            self._forward(manager, workers, "to a worker")
        self._log_refusals(events)

    def _watch_relay(self) -> None:
        """Wait for refusals to log, for the relay thread to stop on its own, or
        for the time to check that the manager can take messages."""
        wait = max(0.0, min(defaults.POLL_MS / 1000, self._next_check - time.monotonic()))
        events = dict(self._watching.poll(int(wait * 1000)))
        self._log_refusals(events)
        if self._control in events or time.monotonic() >= self._next_check:
            error = self._stop_relay()
            if error is not None:
                raise error  # the runner logs it; the relay starts again

    def _start_relay(self) -> None:
        self._relay_error = None
        self._next_check = time.monotonic() + defaults.RELAY_CHECK
        self._relay = threading.Thread(
            target=self._run_relay,
            args=(self._sockets["workers"], self._sockets["manager"], self._relay_control),
            name="relay",
            daemon=True,
        )
        self._relay.start()

    def _run_relay(self, workers: Any, manager: Any, control: Any) -> None:
        """The relay thread: libzmq's proxy until told to stop or a send fails."""
        zmq = self._zmq
        try:
            zmq.proxy_steerable(workers, manager, None, control)
        except Exception as e:
            self._relay_error = e
        finally:
            try:
                control.send(b"", zmq.NOBLOCK)  # wakes the main thread
            except zmq.ZMQError:
                pass

    def _stop_relay(self) -> Exception | None:
        """Stop the relay thread and join it; then account for a failed send.
        Returns the error that stopped it, if not a failed send to the manager."""
        if self._relay is None:
            return None
        zmq = self._zmq
        self._control.send(b"TERMINATE", zmq.NOBLOCK)
        self._relay.join()
        self._relay = None
        # drop what is left: the thread's note, or a command it never read
        for end in (self._control, self._relay_control):
            while end.poll(0):
                end.recv(zmq.NOBLOCK)
        error, self._relay_error = self._relay_error, None
        if error is None:
            return None
        # a failed send leaves the rest of its message unread
        for socket in self._sockets.values():
            while socket.get(zmq.RCVMORE):
                try:
                    socket.recv(zmq.NOBLOCK)
                except zmq.Again:
                    break
        if isinstance(error, zmq.Again):
            self._log_drop("to the manager", error)
            return None
        return error

    def _log_stop(self, error: Exception | None) -> None:
        if error is not None:
            self.logger.error("the relay had stopped on an error: %s", error, exc_info=error)

    def _forward(self, source: Any, destination: Any, where: str) -> None:
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

    # refused connections

    def _log_refusals(self, events: dict) -> None:
        for monitor in self._monitors:
            if monitor in events:
                self._log_refusal(monitor)

    def _log_refusal(self, monitor: Any) -> None:
        from zmq.utils.monitor import recv_monitor_message

        zmq = self._zmq
        endpoint = ""
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


def main(argv: list[str] | None = None) -> None:
    """Entry point of ``python -m nowcast.message_broker config.yaml`` (NEMO_Nowcast's
    ``main()``): run the broker until it is stopped, then exit."""
    run_process(MessageBroker, argv)


run = main  # the entry point of ``nowcast broker``


if __name__ == "__main__":
    main()
