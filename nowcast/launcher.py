"""Start a worker process, on this host or another, without waiting for it."""

from __future__ import annotations

import logging
import shlex
import subprocess
import sys
from typing import TYPE_CHECKING

from nowcast.config import Config, key_path
from nowcast.errors import ConfigError

if TYPE_CHECKING:
    from nowcast.worker import NextWorker


def command(worker: NextWorker, config: Config) -> list[str]:
    """The command line that runs ``worker`` as the config says."""
    args = [str(a) for a in worker.args]
    if worker.host in ("localhost", None, ""):
        python = config.get("python") or sys.executable
        return [python, "-m", worker.module, str(config.file), *args]
    hosts = (config.get("run") or {}).get("enabled hosts") or {}
    host_config = hosts.get(worker.host)
    if not isinstance(host_config, dict):
        raise ConfigError(
            f"{config.file}: host {worker.host!r} for worker {worker.module} is not under "
            f"key {key_path(('run', 'enabled hosts'))}"
        )
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
    return ["ssh", worker.host, remote]


def launch(worker: NextWorker, config: Config, logger: logging.Logger) -> subprocess.Popen:
    """Start ``worker`` in a session of its own (so it outlives a restart of the
    process that launched it); return its ``Popen``."""
    cmd = command(worker, config)
    logger.info("launching %s", worker)
    logger.debug("cmd = %s", cmd)
    return subprocess.Popen(cmd, stdin=subprocess.DEVNULL, start_new_session=True, close_fds=True)
