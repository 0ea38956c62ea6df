"""The hosts of ``run: enabled hosts`` that say ``batch: slurm``: their settings,
checked, and how their commands are run (here, or on a login node over ssh)."""

from __future__ import annotations

import os
import shlex
from typing import Any

import attrs

from nowcast import batch, defaults
from nowcast.config import Config, key_path
from nowcast.errors import ConfigError

# Keys of a worker's registry entry that apply when it runs as a batch job.
WORKER_KEYS = ("sbatch options", "queue timeout")


@attrs.frozen
class BatchHost:
    """A batch host's settings."""

    name: str
    system: batch.BatchSystem = attrs.field(eq=False)
    options: tuple[str, ...] = ()  # the host's `sbatch options`
    jobs_directory: str = ""  # where job scripts and their output go, on the submit host
    python: str = "python3"
    config_file: str = ""
    envvars: str | None = None
    ssh: tuple[str, ...] = ()  # ssh and its arguments up to the address, when submitting remotely
    poll_interval: float = defaults.BATCH_POLL_INTERVAL

    @property
    def remote(self) -> bool:
        return bool(self.ssh)

    def command(self, argv: list[str]) -> list[str]:
        """``argv`` as run on the submit host."""
        if not self.ssh:
            return argv
        return self.shell(shlex.join(argv))

    def shell(self, script: str) -> list[str]:
        """A shell command line as run on the submit host; on a login node, after
        ``envvars`` (which may set up the batch system's commands)."""
        if not self.ssh:
            return ["/bin/sh", "-c", script]
        if self.envvars:
            script = f"source {shlex.quote(self.envvars)}; {script}"
        return [*self.ssh, script]


def read(config: Config) -> dict[str, BatchHost]:
    """The batch hosts of ``config``, checked; ``ConfigError`` names a bad key."""
    run = config.get("run")
    hosts = run.get("enabled hosts") if isinstance(run, dict) else None
    if not isinstance(hosts, dict):
        return {}
    found = {}
    for name, entry in hosts.items():
        if isinstance(entry, dict) and "batch" in entry:
            found[name] = _read_host(config, str(name), entry)
    return found


def _where(name: str, key: str) -> str:
    return key_path(("run", "enabled hosts", name, key))


def _read_host(config: Config, name: str, entry: dict) -> BatchHost:
    from nowcast.launcher import ssh_prefix

    kind = entry["batch"]
    try:
        system = batch.system(kind)
    except (KeyError, TypeError):
        raise ConfigError(
            f"{config.file}: key {_where(name, 'batch')} must be one of "
            f"{', '.join(batch.KINDS)}, got {kind!r}"
        ) from None
    options = sbatch_options(
        config,
        entry.get("sbatch options", []),
        _where(name, "sbatch options"),
        system.reserved_options,
    )
    interval = entry.get("poll interval", defaults.BATCH_POLL_INTERVAL)
    if isinstance(interval, bool) or not isinstance(interval, (int, float)) or interval <= 0:
        raise ConfigError(
            f"{config.file}: key {_where(name, 'poll interval')} must be a number of seconds "
            f"above 0, got {interval!r}"
        )
    for key in ("ssh host", "user", "python", "config file", "envvars", "jobs directory"):
        if key in entry and (not isinstance(entry[key], str) or not entry[key]):
            raise ConfigError(
                f"{config.file}: key {_where(name, key)} must be a non-empty string, "
                f"got {entry[key]!r}"
            )
    ssh_options = entry.get("ssh options", [])
    if not isinstance(ssh_options, list):
        raise ConfigError(
            f"{config.file}: key {_where(name, 'ssh options')} must be a list of ssh "
            f"arguments, got {ssh_options!r}"
        )
    remote = "ssh host" in entry
    if remote:
        jobs = entry.get("jobs directory", defaults.BATCH_REMOTE_JOBS_DIRECTORY)
    else:
        here = os.path.dirname(os.path.abspath(str(config.get("checklist file") or ".")))
        jobs = os.path.abspath(entry.get("jobs directory", os.path.join(here, "jobs")))
    return BatchHost(
        name,
        system,
        tuple(options),
        jobs,
        entry.get("python", "python3" if remote else (config.get("python") or _python())),
        entry.get("config file", os.path.abspath(str(config.file))),
        entry.get("envvars"),
        tuple(ssh_prefix(name, entry)) if remote else (),
        float(interval),
    )


def _python() -> str:
    import sys

    return sys.executable


def sbatch_options(
    config: Config, options: Any, where: str, reserved: tuple[str, ...] = ()
) -> list[str]:
    """A list of options for the batch system, each one line starting with ``-``."""
    if not isinstance(options, list) or not all(
        isinstance(o, str) and o.startswith("-") and "\n" not in o and "\r" not in o
        for o in options
    ):
        raise ConfigError(
            f"{config.file}: key {where} must be a list of options such as "
            f"[--partition=debug, --time=01:00:00], each one line starting with '-', "
            f"got {options!r}"
        )
    for option in options:
        name = option.split("=", 1)[0].split()[0]
        if name in reserved or any(name.startswith(r) and len(r) == 2 for r in reserved):
            raise ConfigError(
                f"{config.file}: key {where}: {option!r} is set by the manager (the job's "
                f"name, output file and directory); leave it out"
            )
    return options


def check_worker(config: Config, name: str, entry: dict) -> None:
    """Check the batch keys of a worker's registry entry."""
    where = ("message registry", "workers", name)
    if "sbatch options" in entry:
        reserved = tuple(r for kind in batch.KINDS for r in batch.system(kind).reserved_options)
        sbatch_options(
            config, entry["sbatch options"], key_path((*where, "sbatch options")), reserved
        )
    if "queue timeout" in entry:
        value = entry["queue timeout"]
        if isinstance(value, bool) or not isinstance(value, (int, float)) or value <= 0:
            raise ConfigError(
                f"{config.file}: key {key_path((*where, 'queue timeout'))} must be a number "
                f"of seconds above 0, got {value!r}"
            )
