"""The System page's facts: which of the system's processes are up, since when,
the versions in use, and the manager's fork server.

Processes are asked of supervisord when the dashboard runs under it (supervisord
tells its children where it listens, in ``SUPERVISOR_SERVER_URL``); otherwise
they are looked for among this machine's processes, by their command line
(``-m nowcast.<process> <this config file>``).
"""

from __future__ import annotations

import functools
import os
import platform
import time
from typing import Any

from nowcast.config import Config

PROCESSES = ("message_broker", "manager", "scheduler", "log_aggregator", "web")


def processes(config: Config) -> dict:
    """``{"source": ..., "processes": [{name, state, up, pid, since}]}``."""
    url = os.environ.get("SUPERVISOR_SERVER_URL")
    if url:
        try:
            return {"source": "supervisord", "processes": _from_supervisord(url)}
        except Exception as e:  # an unreachable supervisord: fall back to /proc
            error = f"supervisord at {url} did not answer: {e}"
        else:  # pragma: no cover
            error = None
        found = _from_proc(config)
        return {"source": "processes", "processes": found, "error": error}
    return {"source": "processes", "processes": _from_proc(config)}


def _from_supervisord(url: str) -> list[dict]:
    import xmlrpc.client

    from supervisor.xmlrpc import SupervisorTransport

    transport = SupervisorTransport(
        os.environ.get("SUPERVISOR_USERNAME"), os.environ.get("SUPERVISOR_PASSWORD"), url
    )
    proxy = xmlrpc.client.ServerProxy("http://127.0.0.1", transport=transport)
    found = []
    for info in proxy.supervisor.getAllProcessInfo():
        up = info["statename"] == "RUNNING"
        found.append(
            {
                "name": info["name"],
                "state": info["statename"],
                "up": up,
                "pid": info["pid"] or None,
                "since": info["start"] if up else (info["stop"] or None),
                "description": info["description"],
            }
        )
    return found


def _boot_time() -> float:
    with open("/proc/stat") as f:
        for line in f:
            if line.startswith("btime "):
                return float(line.split()[1])
    return 0.0


def _from_proc(config: Config) -> list[dict]:
    config_file = os.path.basename(str(config.file))
    ticks = os.sysconf("SC_CLK_TCK")
    try:
        boot = _boot_time()
    except OSError:
        boot = 0.0
    seen: dict[str, dict] = {}
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            with open(f"/proc/{pid}/cmdline", "rb") as f:
                argv = f.read().split(b"\0")
        except OSError:
            continue
        if b"-m" not in argv:
            continue
        module = argv[argv.index(b"-m") + 1 : argv.index(b"-m") + 2]
        if not module or not module[0].startswith(b"nowcast."):
            continue
        name = module[0].decode(errors="replace")[len("nowcast.") :]
        if name not in PROCESSES or not any(
            a.decode(errors="replace").endswith(config_file) for a in argv
        ):
            continue
        try:
            with open(f"/proc/{pid}/stat", "rb") as f:
                fields = f.read().rsplit(b")", 1)[1].split()
        except OSError:
            continue
        if fields[0] == b"Z":
            continue
        since = boot + int(fields[19]) / ticks
        if name not in seen or since < seen[name]["since"]:
            seen[name] = {
                "name": name,
                "state": "RUNNING",
                "up": True,
                "pid": int(pid),
                "since": since,
            }
    return [
        seen.get(
            name, {"name": name, "state": "not found", "up": False, "pid": None, "since": None}
        )
        for name in PROCESSES
    ]


@functools.cache
def versions() -> dict[str, str]:
    """Versions of what this dashboard runs on (the system's processes share them
    when they run from the same installation)."""
    import sqlite3
    from importlib.metadata import PackageNotFoundError, version

    found = {"python": platform.python_version(), "sqlite": sqlite3.sqlite_version}
    for package in ("nowcast", "pyzmq", "starlette", "uvicorn", "supervisor"):
        try:
            found[package] = version(package)
        except PackageNotFoundError:
            pass
    try:
        import zmq

        found["libzmq"] = zmq.zmq_version()
    except ImportError:  # pragma: no cover
        pass
    return found


def system_view(
    config: Config,
    status: dict | None,
    status_time: float | None,
    rate: dict,
    upcoming: list,
    now: float,
) -> dict[str, Any]:
    manager = (status or {}).get("manager") or {}
    return {
        "page": "system",
        "now": now,
        "processes": processes(config),
        "manager": {
            "answering": status is not None,
            "asked": status_time,
            "pid": manager.get("pid"),
            "fork server": manager.get("fork server"),
            "running": len((status or {}).get("running", [])),
            "checklist file": manager.get("checklist file"),
        },
        "versions": versions(),
        "host": platform.node(),
        "rate": rate,
        "upcoming": upcoming,
        "uptime": time.time() - _started,
    }


_started = time.time()
