"""What of a nowcast system is running, and stopping all of it.

``nowcast ps config.yaml`` lists the processes of the system that ``config.yaml``
configures: supervisord, the broker, the manager, the scheduler, the log
aggregator, the manager's fork server, and the workers (on this host, and the
ssh processes of workers on other hosts).

``nowcast stop config.yaml`` stops all of them, workers included: first
supervisord (which stops the processes it runs), or those processes themselves
when no supervisord runs them, so that no manager sees the workers stop; then
the workers, each sent SIGTERM (its process group, as the manager does) and
SIGKILL after ``--grace`` seconds. The workers it stops are written to
``<checklist file>.stopped-workers.json``; a manager starting later forgets them
instead of handling them as crashes.

Processes are found in /proc (Linux): those whose command line names the config
file (relative names are resolved in the process's own directory), and the
children of the manager and of its fork server.
"""

from __future__ import annotations

import json
import os
import signal
import sys
import time
from typing import Any

import attrs

from nowcast.config import Config
from nowcast.errors import ConfigError

# Roles of the long-running processes, by the module (or nowcast subcommand) they run.
ROLES = {
    "message_broker": "broker",
    "broker": "broker",
    "manager": "manager",
    "scheduler": "scheduler",
    "log_aggregator": "log aggregator",
    "log-aggregator": "log aggregator",
    "forkserver": "fork server",
    "web": "web",
}
# Commands that only look at a system: never listed, never stopped.
TOOLS = {"status", "check", "keys", "processes", "ps", "stop", "history"}
LONG_RUNNING = ("supervisord", "broker", "manager", "scheduler", "log aggregator", "web")

_CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


@attrs.frozen
class Process:
    pid: int
    ppid: int
    pgid: int
    role: str  # "worker" or one of ROLES' values, or "supervisord"
    name: str  # the worker's module, or the role
    argv: tuple[str, ...]
    start: str  # the kernel's start time (clock ticks after boot), against pid reuse
    age: float  # seconds

    def to_dict(self) -> dict:
        return {
            "pid": self.pid,
            "role": self.role,
            "name": self.name,
            "running for": round(self.age, 1),
            "command": " ".join(self.argv),
        }


def _read(pid: str) -> tuple[list[str], list[str], str] | None:
    """``(argv, stat fields after the name, cwd)`` of ``pid``, or None."""
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as f:
            raw = f.read()
        with open(f"/proc/{pid}/stat", "rb") as f:
            stat = f.read().rsplit(b")", 1)[-1].split()
        cwd = os.readlink(f"/proc/{pid}/cwd")
    except OSError:
        return None
    argv = [a.decode(errors="replace") for a in raw.rstrip(b"\0").split(b"\0")]
    if len(argv) == 1 and " " in argv[0]:  # a title set with setproctitle
        argv = argv[0].split()
    return argv, [s.decode() for s in stat], cwd


def _module(argv: list[str]) -> str | None:
    """The module or nowcast subcommand ``argv`` runs."""
    if "-m" in argv[:-1]:
        module = argv[argv.index("-m") + 1]
        if module in ("nowcast", "nemo_nowcast") and len(argv) > argv.index("-m") + 2:
            return _subcommand(argv[argv.index("-m") + 2 :])
        return module
    for index, arg in enumerate(argv[:2]):
        if os.path.basename(arg) == "nowcast" and len(argv) > index + 1:
            return _subcommand(argv[index + 1 :])
    return None


def _subcommand(rest: list[str]) -> str:
    if rest[0] == "run" and len(rest) > 1:
        return rest[1]
    return f"nowcast.{rest[0]}"


def _names_config(argv: list[str], cwd: str, config: str) -> bool:
    base = os.path.basename(config)
    for arg in argv[1:]:
        if base in arg and os.path.realpath(os.path.join(cwd, arg)) == config:
            return True
    return False


def find(config_file: str) -> list[Process]:
    """The processes of the system ``config_file`` configures, parents first."""
    config = os.path.realpath(config_file)
    with open("/proc/uptime") as f:
        uptime = float(f.read().split()[0])
    table = {}
    for pid in filter(str.isdigit, os.listdir("/proc")):
        found = _read(pid)
        if found is not None and found[1][0] != "Z":
            table[int(pid)] = found
    chosen: dict[int, Process] = {}

    def add(pid: int, role: str, name: str) -> None:
        argv, stat, _ = table[pid]
        age = uptime - int(stat[19]) / _CLOCK_TICKS
        chosen[pid] = Process(
            pid, int(stat[1]), int(stat[2]), role, name, tuple(argv), stat[19], age
        )

    me = os.getpid()
    for pid, (argv, _stat, cwd) in table.items():
        if pid == me or not _names_config(argv, cwd, config):
            continue
        module = _module(argv)
        if module is None:
            continue
        last = module.rsplit(".", 1)[-1]
        if module.startswith(("nowcast.", "nemo_nowcast.")) and last in TOOLS:
            continue
        if module.startswith(("nowcast.", "nemo_nowcast.")) and last in ROLES:
            add(pid, ROLES[last], ROLES[last])
        else:
            add(pid, "worker", module)
    parents = {p.pid for p in chosen.values() if p.role in ("manager", "fork server")}
    while parents:  # the fork server, and workers started by the manager or by it
        children = set()
        for pid, (argv, stat, _) in table.items():
            if int(stat[1]) in parents and pid not in chosen:
                module = _module(argv) or ""
                if module.endswith("forkserver"):
                    add(pid, "fork server", "fork server")
                    children.add(pid)
                else:
                    add(pid, "worker", _worker_name(argv, module))
        parents = children
    for process in list(chosen.values()):  # the supervisord that runs them
        if process.role in LONG_RUNNING and process.ppid in table:
            argv = table[process.ppid][0]
            if any("supervisord" in os.path.basename(a) for a in argv[:2]):
                add(process.ppid, "supervisord", "supervisord")
    order = {"supervisord": 0, "fork server": 2, "worker": 3}
    return sorted(chosen.values(), key=lambda p: (order.get(p.role, 1), p.age * -1, p.pid))


def _worker_name(argv: list[str], module: str) -> str:
    if module:
        return module
    if argv and os.path.basename(argv[0]) == "ssh":
        return f"ssh: {argv[-1]}"
    return os.path.basename(argv[0]) if argv else "?"


def _age(seconds: float) -> str:
    seconds = int(seconds)
    if seconds < 120:
        return f"{seconds}s"
    if seconds < 7200:
        return f"{seconds // 60}m{seconds % 60:02d}s"
    return f"{seconds // 3600}h{seconds % 3600 // 60:02d}m"


def render(processes: list[Process], config_file: str) -> str:
    if not processes:
        return f"nothing of the system of {config_file} is running"
    rows = [("PID", "ROLE", "RUNNING FOR", "COMMAND")] + [
        (str(p.pid), p.role, _age(p.age), " ".join(p.argv)) for p in processes
    ]
    widths = [max(len(r[i]) for r in rows) for i in range(3)]
    return "\n".join(
        f"{r[0]:<{widths[0]}}  {r[1]:<{widths[1]}}  {r[2]:<{widths[2]}}  {r[3]}" for r in rows
    )


def _alive(process: Process) -> bool:
    found = _read(str(process.pid))
    return found is not None and found[1][0] != "Z" and found[1][19] == process.start


def _wait_gone(processes: list[Process], seconds: float) -> list[Process]:
    deadline = time.monotonic() + seconds
    while True:
        alive = [p for p in processes if _alive(p)]
        if not alive or time.monotonic() >= deadline:
            return alive
        time.sleep(0.1)


def _signal(process: Process, signum: int, group: bool) -> None:
    try:
        if group and process.pgid == process.pid:
            os.killpg(process.pid, signum)
        else:
            os.kill(process.pid, signum)
    except ProcessLookupError:
        pass


def stopped_path(config: Config) -> str:
    """Where ``stop`` lists the workers it stopped, for the next manager."""
    return f"{config['checklist file']}.stopped-workers.json"


def stop(config: Config, grace: float, say: Any = print) -> list[Process]:
    """Stop every process of the system; return those still running after."""
    config_file = str(config.file)
    processes = find(config_file)
    supervisors = [p for p in processes if p.role == "supervisord"]
    ours = {p.pid for p in processes}
    for p in supervisors:
        others = _children(p.pid) - ours
        if others:
            say(
                f"supervisord (pid {p.pid}) also runs processes of other systems (pids "
                f"{', '.join(map(str, sorted(others)))}), so it is not stopped: stop this "
                f"system's programs with supervisorctl (stop manager message_broker ...), "
                f"then run nowcast stop again for the rest"
            )
            return processes
    if supervisors:
        for p in supervisors:
            say(f"stopping supervisord (pid {p.pid}) and the processes it runs")
            _signal(p, signal.SIGTERM, group=False)
        _wait_gone(supervisors, 60)
    long_running = [p for p in find(config_file) if p.role in LONG_RUNNING]
    for p in long_running:
        say(f"stopping the {p.role} (pid {p.pid})")
        _signal(p, signal.SIGTERM, group=False)
    for p in _wait_gone(long_running, 30):
        say(f"the {p.role} (pid {p.pid}) is still running after 30 s; killing it")
        _signal(p, signal.SIGKILL, group=False)
    workers = [p for p in find(config_file) if p.role in ("worker", "fork server")]
    if workers:
        _write_stopped(config, [p for p in workers if p.role == "worker"])
    for p in workers:
        say(
            f"stopping {p.role} {p.name} (pid {p.pid})"
            if p.role == "worker"
            else f"stopping the fork server (pid {p.pid})"
        )
        _signal(p, signal.SIGTERM, group=True)
    for p in _wait_gone(workers, grace):
        say(f"{p.name} (pid {p.pid}) is still running after {grace:g} s; killing it")
        _signal(p, signal.SIGKILL, group=True)
    _wait_gone(workers, 5)
    return find(config_file)


def _children(pid: int) -> set[int]:
    children = set()
    for child in filter(str.isdigit, os.listdir("/proc")):
        found = _read(child)
        if found is not None and found[1][0] != "Z" and int(found[1][1]) == pid:
            children.add(int(child))
    return children


def _write_stopped(config: Config, workers: list[Process]) -> None:
    from nowcast.fileutils import atomic_write

    path = stopped_path(config)
    try:
        with open(path, "rb") as f:
            earlier = json.loads(f.read())
    except (OSError, ValueError):
        earlier = []
    entries = earlier + [{"pid": p.pid, "start": p.start, "name": p.name} for p in workers]
    atomic_write(path, json.dumps(entries).encode("utf-8"))


def forget_stopped(supervision: Any, checklist_path: str, logger: Any) -> None:
    """At a manager's start: stop watching the workers ``nowcast stop`` stopped,
    which would otherwise be handled as crashes."""
    path = f"{checklist_path}.stopped-workers.json"
    try:
        with open(path, "rb") as f:
            stopped = {(e["pid"], e.get("start")) for e in json.loads(f.read())}
    except FileNotFoundError:
        return
    except (OSError, ValueError, KeyError, TypeError) as e:
        logger.error("cannot read %s (%s); ignoring it", path, e)
        stopped = set()
    for launched in list(supervision.running):
        if (launched.pid, launched.proc_start) in stopped or (launched.pid, None) in stopped:
            supervision.remove(launched)
            logger.warning(
                "%s (pid %s, args %s) was stopped by nowcast stop; not handled as a crash "
                "(run it again by hand if its work is needed)",
                launched.name,
                launched.pid,
                launched.args,
            )
    try:
        os.unlink(path)
    except OSError:
        pass


def _config(path: str) -> Config:
    config = Config()
    try:
        config.load(path)
    except OSError as e:
        raise ConfigError(f"cannot read config file {path}: {e.strerror}") from None
    except KeyError as e:
        raise ConfigError(e.args[0]) from None
    return config


def main_ps(argv: list[str] | None = None) -> None:
    """``nowcast ps config.yaml``: what of the system is running."""
    from nowcast.cli import command_parser, print_out

    parser = command_parser("ps", __doc__)
    parser.add_argument("config_file", help="Path of the nowcast system's YAML configuration file.")
    parser.add_argument("--json", action="store_true", help="Print the processes as JSON.")
    args = parser.parse_args(argv)
    processes = find(args.config_file)
    if args.json:
        print_out(json.dumps([p.to_dict() for p in processes], indent=2))
    else:
        print_out(render(processes, args.config_file))


def main_stop(argv: list[str] | None = None) -> None:
    """``nowcast stop config.yaml``: stop the whole system, workers included."""
    from nowcast.cli import command_parser, print_out

    parser = command_parser("stop", __doc__)
    parser.add_argument("config_file", help="Path of the nowcast system's YAML configuration file.")
    parser.add_argument(
        "--grace",
        type=float,
        default=10.0,
        help="Seconds workers get between SIGTERM and SIGKILL; defaults to 10.",
    )
    args = parser.parse_args(argv)
    try:
        config = _config(args.config_file)
        config["checklist file"]  # noqa: B018 - where the stopped workers are listed
    except (ConfigError, KeyError) as e:
        print(f"nowcast stop: {e}", file=sys.stderr)
        sys.exit(2)
    left = stop(config, args.grace, say=print_out)
    if left:
        print_out("still running:\n" + render(left, args.config_file))
        sys.exit(1)
    print_out(f"nothing of the system of {args.config_file} is running")
