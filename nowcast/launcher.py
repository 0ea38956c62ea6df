"""Start a worker process, on this host or another, without waiting for it."""

from __future__ import annotations

import logging
import os
import shlex
import subprocess
import sys
import tempfile
from typing import TYPE_CHECKING

from nowcast.config import Config, key_path
from nowcast.errors import ConfigError

if TYPE_CHECKING:
    from nowcast.worker import NextWorker


def command(worker: NextWorker, config: Config) -> list[str]:
    """The command line that runs ``worker`` as the config says."""
    args = [str(a) for a in worker.args]
    if is_local(worker.host):
        python = config.get("python") or sys.executable
        return [python, "-m", worker.module, str(config.file), *args]
    host_config = _host_config(worker, config)
    remote = " ".join(
        shlex.quote(part)
        for part in [
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
    ssh = ["ssh", "-o", "BatchMode=yes"]
    if "port" in host_config:
        ssh += ["-p", str(host_config["port"])]
    if "user" in host_config:
        ssh += ["-l", str(host_config["user"])]
    ssh += [str(option) for option in host_config.get("ssh options", [])]
    return [*ssh, str(host_config.get("ssh host", worker.host)), remote]


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


def launch(worker: NextWorker, config: Config, logger: logging.Logger) -> subprocess.Popen:
    """Start ``worker`` in a session of its own (so it outlives a restart of the
    process that launched it); return its ``Popen``.

    For a worker on another host, ssh's standard error goes to a temporary file,
    named by the ``stderr_path`` attribute of the ``Popen``, so that the reason of
    a failed connection can be reported.
    """
    cmd = command(worker, config)
    logger.info("launching %s", worker)
    logger.debug("cmd = %s", cmd)
    if is_local(worker.host):
        return subprocess.Popen(
            cmd, stdin=subprocess.DEVNULL, start_new_session=True, close_fds=True
        )
    fd, stderr_path = tempfile.mkstemp(prefix=f"nowcast-ssh-{worker.host}-", suffix=".stderr")
    try:
        process = subprocess.Popen(
            cmd, stdin=subprocess.DEVNULL, stderr=fd, start_new_session=True, close_fds=True
        )
    finally:
        os.close(fd)
    process.stderr_path = stderr_path
    return process


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
