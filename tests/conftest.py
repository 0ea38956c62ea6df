"""Fixtures that start a real nowcast system: broker and manager processes on
loopback with free ports, in a temporary directory, stopped after each test."""

from __future__ import annotations

import json
import os
import random
import signal
import socket
import subprocess
import sys
import textwrap
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml

PY = sys.executable

# a NEMO_Nowcast-style system with its own tests, which test_nemo_system.py runs
collect_ignore = ["nemo_system"]


def _ephemeral_low() -> int:
    try:
        with open("/proc/sys/net/ipv4/ip_local_port_range") as f:
            return int(f.read().split()[0])
    except (OSError, ValueError, IndexError):
        return 32768


_handed_out: set[int] = set()


def free_port() -> int:
    """A free port below the ephemeral range: a client that connects to it before
    its server binds then cannot be handed the same port and connect to itself.
    Never the same port twice in one test session: two calls in a row could
    otherwise both find one port free, and a broker given it for both of its
    sockets cannot start."""
    high = _ephemeral_low() - 1
    for _ in range(200):
        port = random.randint(10000, high)
        if port in _handed_out:
            continue
        with socket.socket() as s:
            try:
                s.bind(("127.0.0.1", port))
            except OSError:
                continue
        _handed_out.add(port)
        return port
    raise RuntimeError("no free port found")


def wait_for(predicate: Callable[[], Any], timeout: float = 10, what: str = "condition") -> Any:
    """Poll ``predicate`` until it is truthy; fail the test after ``timeout`` s."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {what}")
        time.sleep(0.02)


def listening(pid: int) -> dict[tuple[str, int], str]:
    """The (address, port) pairs process ``pid`` listens on over TCP, each with its
    socket's inode, read from the kernel's socket table (/proc/net/tcp, tcp6): what
    is bound, not what was logged."""
    inodes = set()
    for fd in os.listdir(f"/proc/{pid}/fd"):
        try:
            target = os.readlink(f"/proc/{pid}/fd/{fd}")
        except OSError:
            continue
        if target.startswith("socket:["):
            inodes.add(target[8:-1])
    found = {}
    for table, width in (("tcp", 4), ("tcp6", 16)):
        try:
            with open(f"/proc/{pid}/net/{table}") as f:
                rows = f.read().splitlines()[1:]
        except FileNotFoundError:
            continue
        for row in rows:
            fields = row.split()
            local, state, inode = fields[1], fields[3], fields[9]
            if state != "0A" or inode not in inodes:  # 0A: LISTEN
                continue
            hex_address, hex_port = local.split(":")
            raw = bytes.fromhex(hex_address)
            # the kernel prints each 32-bit word in host (little-endian) order
            raw = b"".join(raw[i : i + 4][::-1] for i in range(0, width, 4))
            family = socket.AF_INET if width == 4 else socket.AF_INET6
            found[socket.inet_ntop(family, raw), int(hex_port, 16)] = inode
    return found


# Set (to 1) where every real component the tests use can be installed, as CI does:
# a test that would be skipped for want of one (sshd, ...) fails instead.
REQUIRE_REAL = "NOWCAST_TEST_REQUIRE_REAL"


def missing_component(why: str) -> None:
    """Skip the test because a real component is missing, or fail it when the
    environment says every component must be there."""
    if os.environ.get(REQUIRE_REAL, "") not in ("", "0"):
        pytest.fail(f"{why} ({REQUIRE_REAL} is set: the tests need the real component)")
    pytest.skip(why)


def stop(process: subprocess.Popen, timeout: float = 5) -> None:
    """Terminate ``process`` (kill it if it lingers) and reap it."""
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(timeout)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


WORKER_MODULE = '''
"""A worker for tests: {name}."""
import os, sys, time
from nowcast import NowcastWorker, WorkerError

def work(parsed_args, config, tell_manager):
{body}

worker = NowcastWorker("{name}", "test worker", package="")
worker.init_cli()
worker.cli.add_argument("--arg", default="")
worker.run(work, lambda args: "success", lambda args: "failure")
'''


class System:
    """A nowcast system in a temporary directory: config, next workers module,
    worker modules, and the broker and manager processes."""

    def __init__(self, directory: Path) -> None:
        self.dir = directory
        self.ports = {"manager": free_port(), "workers": free_port()}
        self.workers: dict[str, dict] = {}
        self.zmq_extra: dict[str, Any] = {"reply timeout": 2, "give up after": 30}
        self.config_extra: dict[str, Any] = {}
        self.next_workers = "from nowcast import NextWorker\n"
        self.broker: subprocess.Popen | None = None
        self.manager: subprocess.Popen | None = None
        self.processes: list[subprocess.Popen] = []

    # building the system

    def register(self, name: str, checklist_key: str | None = None, **settings: Any) -> None:
        entry = {
            "checklist key": checklist_key or name,
            "success": f"{name} succeeded",
            "failure": f"{name} failed",
            "crash": f"{name} crashed",
        }
        entry.update(settings)
        self.workers[name] = entry

    def worker_module(
        self, name: str, body: str = "return {'done': True}", **settings: Any
    ) -> None:
        """Write ``name.py``, a worker whose function runs ``body``, and register it."""
        self.register(name, **settings)
        code = WORKER_MODULE.format(name=name, body=textwrap.indent(textwrap.dedent(body), "    "))
        (self.dir / f"{name}.py").write_text(code)

    def after(self, code: str) -> None:
        """Add ``after_*`` functions to the next workers module."""
        self.next_workers += textwrap.dedent(code) + "\n"

    def with_aggregator(
        self,
        log_format: str = "%(origin_host)s %(origin_pid)s [%(name)s] %(levelname)s %(message)s",
    ) -> Path:
        """Send every process's records to a log aggregator writing ``aggregated.log``
        (start it with ``spawn("nowcast.log_aggregator")``); return that file."""
        self.ports["logging"] = free_port()
        self.aggregator_format = log_format
        return self.dir / "aggregated.log"

    @property
    def config_file(self) -> Path:
        return self.dir / "nowcast.yaml"

    @property
    def checklist_file(self) -> Path:
        return self.dir / "checklist.yaml"

    @property
    def log_file(self) -> Path:
        return self.dir / "nowcast.log"

    def config(self) -> dict:
        config = {
            "checklist file": str(self.checklist_file),
            "python": PY,
            "logging": {
                "version": 1,
                "disable_existing_loggers": False,
                "formatters": {
                    "simple": {"format": "%(asctime)s %(levelname)s [%(name)s] %(message)s"}
                },
                "handlers": {
                    "file": {
                        "class": "logging.FileHandler",
                        "level": "DEBUG",
                        "formatter": "simple",
                        "filename": str(self.log_file),
                    },
                    "console": {
                        "class": "logging.StreamHandler",
                        "level": "WARNING",
                        "formatter": "simple",
                        "stream": "ext://sys.stderr",
                    },
                },
                "root": {"level": "DEBUG", "handlers": ["file", "console"]},
            },
            "zmq": {"host": "127.0.0.1", "ports": self.ports, **self.zmq_extra},
            "message registry": {
                "next workers module": "next_workers",
                "workers": self.workers,
            },
            **self.config_extra,
        }
        if "logging" in self.ports:
            config["logging"]["aggregator"] = {
                "version": 1,
                "formatters": {"origin": {"format": self.aggregator_format}},
                "handlers": {
                    "file": {
                        "class": "logging.FileHandler",
                        "formatter": "origin",
                        "filename": str(self.dir / "aggregated.log"),
                    }
                },
                "root": {"level": "DEBUG", "handlers": ["file"]},
            }
        return config

    def write(self) -> None:
        self.config_file.write_text(yaml.safe_dump(self.config(), sort_keys=False))
        (self.dir / "next_workers.py").write_text(self.next_workers)

    # running it

    def start(self, broker: bool = True, manager: bool = True) -> System:
        self.write()
        if broker:
            self.broker = self.spawn("nowcast.message_broker")

            def bound() -> bool:
                self._alive(self.broker)
                return "manager socket bound" in self.log()

            wait_for(bound, what="broker start")
        if manager:
            self.start_manager()
        return self

    def _alive(self, process: subprocess.Popen) -> None:
        """Fail at once, with what ``process`` printed, if it has exited."""
        if process.poll() is not None:
            module = process.args[2]
            out = self.dir / f"{module}.out"
            printed = out.read_text() if out.exists() else ""
            raise AssertionError(f"{module} exited {process.returncode}:\n{printed}")

    def spawn(self, module: str, *args: str) -> subprocess.Popen:
        """Start a process whose output goes to ``<module>.out`` (never to a pipe
        nobody reads, which would block it once full)."""
        with open(self.dir / f"{module}.out", "ab") as out:
            process = subprocess.Popen(
                [PY, "-m", module, str(self.config_file), *args],
                cwd=self.dir,
                stdout=out,
                stderr=subprocess.STDOUT,
            )
        self.processes.append(process)
        return process

    def start_manager(self, *args: str) -> subprocess.Popen:
        before = self.log().count("listening...")
        self.manager = self.spawn("nowcast.manager", *args)

        # 30 s: a manager restarted while 100 workers re-send, on a loaded machine,
        # has been seen to take more than 10
        def listening() -> bool:
            self._alive(self.manager)
            return self.log().count("listening...") > before

        wait_for(listening, timeout=30, what="manager start")
        return self.manager

    def kill_manager(self) -> None:
        self.manager.send_signal(signal.SIGKILL)
        self.manager.wait(5)

    def run_worker(
        self, module: str, *args: str, timeout: float = 60
    ) -> subprocess.CompletedProcess:
        """Run a worker to its end, as an operator would; return the result."""
        return subprocess.run(
            [PY, "-m", module, str(self.config_file), *args],
            cwd=self.dir,
            capture_output=True,
            text=True,
            timeout=timeout,
        )

    def launch_worker(self, module: str, *args: str) -> subprocess.Popen:
        """Start a worker without waiting for it."""
        return self.spawn(module, *args)

    # looking at it

    def log(self) -> str:
        try:
            return self.log_file.read_text()
        except FileNotFoundError:
            return ""

    def checklist(self) -> dict:
        try:
            return yaml.safe_load(self.checklist_file.read_text()) or {}
        except FileNotFoundError:
            return {}

    def request(self, message: Any, timeout: float = 5) -> Any:
        """Send one message (a dict, or raw bytes/str) with a REQ socket; return
        the decoded reply, or None when none comes in time."""
        import zmq

        context = zmq.Context.instance()
        sock = context.socket(zmq.REQ)
        sock.setsockopt(zmq.LINGER, 0)
        sock.connect(f"tcp://127.0.0.1:{self.ports['workers']}")
        try:
            if isinstance(message, dict):
                message = json.dumps(message)
            sock.send(message.encode() if isinstance(message, str) else message)
            if not sock.poll(timeout * 1000):
                return None
            reply = sock.recv()
        finally:
            sock.close()
        return json.loads(reply)

    def stop(self) -> None:
        for process in reversed(self.processes):
            stop(process)


@pytest.fixture
def system(tmp_path: Path):
    """A nowcast system, not yet started: register workers, then ``start()``."""
    sys_ = System(tmp_path)
    yield sys_
    sys_.stop()
    _kill_strays(tmp_path)


def _kill_strays(directory: Path) -> None:
    """Kill worker processes still running from ``directory`` (launched by the
    manager in sessions of their own)."""
    needle = str(directory)
    for pid in os.listdir("/proc"):
        if not pid.isdigit() or int(pid) == os.getpid():
            continue
        try:
            with open(f"/proc/{pid}/cmdline", "rb") as f:
                cmdline = f.read().decode(errors="replace")
        except OSError:
            continue
        if needle in cmdline:
            try:
                os.kill(int(pid), signal.SIGKILL)
            except OSError:
                pass


@pytest.fixture(scope="session")
def slurm_cluster(tmp_path_factory):
    """A real single-node SLURM cluster (munged, slurmctld, slurmd) on this machine,
    started once per session; its environment (``SLURM_CONF``) is yielded."""
    from nowcast.batch import local_cluster

    why = local_cluster.missing()
    if why:
        missing_component(f"no local SLURM cluster: {why}")
    directory = tmp_path_factory.mktemp("slurm")
    environment = local_cluster.start(directory, tied=True)
    yield environment
    local_cluster.stop(directory)


@pytest.fixture
def slurm(slurm_cluster, monkeypatch):
    """The session's SLURM cluster, for processes this test starts (``SLURM_CONF``)."""
    monkeypatch.setenv("SLURM_CONF", slurm_cluster["SLURM_CONF"])
    return slurm_cluster
