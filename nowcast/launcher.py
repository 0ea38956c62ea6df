"""Start a worker process, on this host or another, without waiting for it."""

from __future__ import annotations

import logging
import os
import shlex
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from nowcast import defaults
from nowcast.config import Config, key_path
from nowcast.errors import ConfigError
from nowcast.forkclient import (
    ForkServer,
    ForkServerError,
    StaleForkServer,
    UnresponsiveForkServer,
    WarmProcess,
)

if TYPE_CHECKING:
    from nowcast.next_worker import NextWorker


def command(worker: NextWorker, config: Config, token: str | None = None) -> list[str]:
    """The command line that runs ``worker`` as the config says; on another host,
    with the launch ``token`` in the worker's environment."""
    args = [str(a) for a in worker.args]
    if is_local(worker.host):
        python = config.get("python") or sys.executable
        return [python, "-m", worker.module, str(config.file), *args]
    host_config = _host_config(worker, config)
    env = ["env", f"{defaults.LAUNCH_TOKEN_ENV}={token}"] if token else []
    remote = " ".join(
        shlex.quote(part)
        for part in [
            *env,
            host_config.get("python", "python3"),
            "-m",
            worker.module,
            host_config.get("config file", str(config.file)),
            *args,
        ]
    )
    envvars = host_config.get("envvars")
    if envvars:
        remote = f"source {shlex.quote(envvars)}; {remote}"
    return [*ssh_prefix(worker.host, host_config), remote]


def ssh_prefix(host: str, host_config: dict) -> list[str]:
    """``ssh [options] address``, to which a remote command line is added, for the
    host called ``host`` in ``run: enabled hosts``."""
    ssh = ["ssh", "-o", "BatchMode=yes"]
    if "port" in host_config:
        ssh += ["-p", str(host_config["port"])]
    if "user" in host_config:
        ssh += ["-l", str(host_config["user"])]
    ssh += [str(option) for option in host_config.get("ssh options", [])]
    return [*ssh, str(host_config.get("ssh host", host))]


def is_local(host: str | None) -> bool:
    return host in ("localhost", None, "")


def _host_config(worker: NextWorker, config: Config) -> dict:
    hosts = (config.get("run") or {}).get("enabled hosts") or {}
    host_config = hosts.get(worker.host)
    if not isinstance(host_config, dict):
        raise ConfigError(
            f"{config.file}: host {worker.host!r} for worker {worker.module} is not under "
            f"key {key_path(('run', 'enabled hosts'))}"
        )
    options = host_config.get("ssh options", [])
    if not isinstance(options, list):
        raise ConfigError(
            f"{config.file}: key {key_path(('run', 'enabled hosts', worker.host, 'ssh options'))} "
            f"must be a list of ssh arguments, got {options!r}"
        )
    return host_config


def launch(
    worker: NextWorker,
    config: Config,
    logger: logging.Logger,
    warm: WarmStart | None = None,
    token: str | None = None,
) -> subprocess.Popen | WarmProcess:
    """Start ``worker`` in a session of its own (so it outlives a restart of the
    process that launched it); return its ``Popen``, or the ``WarmProcess`` the
    fork server of ``warm`` started it as, when there is one ready.

    For a worker on another host, ssh's standard error goes to a temporary file,
    named by the ``stderr_path`` attribute of the ``Popen``, so that the reason of
    a failed connection can be reported.

    ``token`` goes into the worker's environment (``NOWCAST_LAUNCH``; for ssh,
    into ssh's and, on the command line, the remote worker's): the worker names
    its launch with it, and a restarted manager finds it running by it.
    """
    cmd = command(worker, config, token)
    env = None if token is None else {**os.environ, defaults.LAUNCH_TOKEN_ENV: token}
    logger.info("launching %s", worker)
    logger.debug("cmd = %s", cmd)
    if is_local(worker.host):
        if warm is not None:
            process = warm.launch(worker.module, cmd[3:], token)
            if process is not None:
                logger.debug("started by the fork server as pid %s", process.pid)
                return process
        return subprocess.Popen(
            cmd, stdin=subprocess.DEVNULL, start_new_session=True, close_fds=True, env=env
        )
    fd, stderr_path = tempfile.mkstemp(prefix=f"nowcast-ssh-{worker.host}-", suffix=".stderr")
    try:
        process = subprocess.Popen(
            cmd,
            stdin=subprocess.DEVNULL,
            stderr=fd,
            start_new_session=True,
            close_fds=True,
            env=env,
        )
    finally:
        os.close(fd)
    process.stderr_path = stderr_path
    return process


def launch_many(
    launches: list[tuple[NextWorker, str | None]],
    config: Config,
    logger: logging.Logger,
    warm: WarmStart | None = None,
) -> list[subprocess.Popen | WarmProcess | Exception]:
    """Start each ``(worker, token)`` of ``launches`` as ``launch`` does; the local
    ones through the fork server in one request (one check of its imports, one
    answer), those it cannot start cold. Returns, in order, each one's process,
    or the ``OSError`` or ``ConfigError`` that kept it from starting."""
    local = [i for i, (w, _) in enumerate(launches) if is_local(w.host)] if warm else []
    started: dict[int, WarmProcess] = {}
    if len(local) > 1:
        args = {i: command(launches[i][0], config)[3:] for i in local}
        processes = warm.launch_many(
            [(launches[i][0].module, args[i], launches[i][1]) for i in local]
        )
        started = {i: p for i, p in zip(local, processes, strict=True) if p is not None}
        warm = None  # the ones it did not start (it is stale, gone or cannot fork) go cold
    results: list[subprocess.Popen | WarmProcess | Exception] = []
    for i, (worker, token) in enumerate(launches):
        process = started.get(i)
        try:
            if process is None:
                process = launch(worker, config, logger, warm, token)
            else:
                logger.info("launching %s", worker)
                logger.debug("started by the fork server as pid %s", process.pid)
        except (OSError, ConfigError) as e:
            process = e
        results.append(process)
    return results


def ssh_error(stderr_path: str | None, lines: int = 5) -> str:
    """The last lines ssh wrote, for the log; the file is removed."""
    if not stderr_path:
        return ""
    try:
        with open(stderr_path, "rb") as f:
            text = f.read()[-4000:].decode(errors="replace")
        os.unlink(stderr_path)
    except OSError:
        return ""
    tail = [line.strip() for line in text.splitlines() if line.strip()][-lines:]
    return " | ".join(tail)


def warm_start_enabled(config: Config) -> bool:
    """The ``run: warm start`` switch, checked to be a boolean (default on)."""
    run = config.get("run")
    if not isinstance(run, dict) or "warm start" not in run:
        return defaults.WARM_START
    value = run["warm start"]
    if not isinstance(value, bool):
        raise ConfigError(
            f"{config.file}: key 'run: warm start' must be true or false, got {value!r}"
        )
    return value


class WarmStart:
    """The fork server the manager starts local workers through: started with the
    manager, replaced when stale or when ``python`` changes, started again (after
    a delay) when it dies. Without one ready, ``launch`` returns None: start cold."""

    def __init__(self, logger: logging.Logger, note: Callable | None = None) -> None:
        """``note``: as ``ForkServer``'s, for each fork server started."""
        self.logger = logger
        self.note = note
        self.enabled = False
        self.python: str | None = None
        self.config_file = ""
        self.current: ForkServer | None = None
        self.retiring: list[ForkServer] = []
        self._restart_at = 0.0
        self._restart_delay = defaults.FORK_SERVER_RESTART_DELAY

    def configure(self, config: Config) -> None:
        """Follow the config: ``run: warm start`` and ``python`` (already validated)."""
        enabled = warm_start_enabled(config)
        python = config.get("python") or sys.executable
        if (enabled, python) == (self.enabled, self.python):
            return
        if self.current is not None:
            self.logger.info("replacing the fork server: the config changed")
            self._retire_current()
        self.enabled, self.python, self.config_file = enabled, python, str(config.file)
        self._restart_at = 0.0
        if enabled:
            self._start()
        else:
            self.logger.info("warm start is off: workers are started cold")

    def tend(self) -> None:
        """Notice a fork server that became ready or died, let retired ones go, and
        start one when it is time. The manager calls it at each turn of its loop."""
        if self.current is not None:
            self.current.pump()
            if self.current.state == "ready":
                self._restart_delay = defaults.FORK_SERVER_RESTART_DELAY
            elif self.current.state == "gone":
                self._lose_current()
        for server in list(self.retiring):
            server.pump()
            if server.state == "gone":
                self.retiring.remove(server)
        if self.enabled and self.current is None and time.monotonic() >= self._restart_at:
            self._start()

    def fds(self) -> set[int]:
        """The sockets of its fork servers: one becomes readable when its server
        says something (a worker's exit), so the manager polls them with its own."""
        servers = [self.current, *self.retiring]
        return {s.sock.fileno() for s in servers if s is not None and s.sock is not None}

    def launch(self, module: str, args: list[str], token: str | None = None) -> WarmProcess | None:
        """Start ``python -m module *args`` through the fork server, in the
        manager's environment with the launch ``token`` added; None when it
        cannot (the caller starts the worker cold)."""
        processes = self._through_server(
            module,
            lambda server, cwd, timeout: [server.launch(module, args, cwd, timeout, None, token)],
        )
        return processes[0] if processes else None

    def launch_many(
        self, launches: list[tuple[str, list[str], str | None]]
    ) -> list[WarmProcess | None]:
        """Start each ``(module, args, token)`` through the fork server, in one
        request; None for each it did not start (the caller starts those cold)."""
        processes = self._through_server(
            f"{len(launches)} workers",
            lambda server, cwd, timeout: server.launch_many(launches, cwd, timeout),
        )
        return [*processes, *[None] * (len(launches) - len(processes))]

    def _through_server(self, what: str, request: Any) -> list[WarmProcess]:
        self.tend()
        server = self.current
        if not self.enabled or server is None:
            return []
        try:
            return request(server, os.getcwd(), defaults.FORK_SERVER_TIMEOUT)
        except StaleForkServer as e:
            self.logger.info("starting a fresh fork server: %s; %s started cold", e, what)
            self._retire_current()
            self._start()
        except UnresponsiveForkServer as e:
            self.logger.warning(
                "%s; starting %s cold, and a fresh fork server for the next workers", e, what
            )
            self.current = None
            self._start()
        except ForkServerError as e:
            self.logger.debug("starting %s cold: %s", what, e)
            if server.state == "gone":
                self._lose_current()
        return []

    def close(self) -> None:
        """Hang up on every fork server; the workers they started keep running."""
        for server in [*self.retiring, self.current]:
            if server is not None:
                server.close()
        self.current, self.retiring = None, []

    def describe(self) -> dict | None:
        """The fork server for the manager's status: pid and state."""
        if not self.enabled:
            return None
        self.tend()
        if self.current is None:
            return {"pid": None, "state": "gone"}
        return {"pid": self.current.pid, "state": self.current.state}

    def _start(self) -> None:
        server = ForkServer(self.python, self.config_file, self.logger, self.note)
        try:
            server.start()
        except OSError as e:
            self.logger.error(
                "cannot start the fork server with %s: %s; starting workers cold", self.python, e
            )
            self._lose()
            return
        self.current = server
        self.logger.debug("fork server started (pid %s)", server.pid)

    def _retire_current(self) -> None:
        server, self.current = self.current, None
        server.retire()
        if server.state != "gone":
            self.retiring.append(server)

    def _lose_current(self) -> None:
        self.current = None
        self._lose()

    def _lose(self) -> None:
        """After a server died or could not start: try again later, later each time."""
        self._restart_at = time.monotonic() + self._restart_delay
        self.logger.info("another fork server will be started in %g s", self._restart_delay)
        self._restart_delay = min(self._restart_delay * 2, defaults.FORK_SERVER_RESTART_MAX)
