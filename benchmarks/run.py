"""nowcast benchmarks: each figure next to the floor it is compared with, both
measured in this run on this machine.

Usage: ``python benchmarks/run.py [--quick] [--only NAME ...] [--fanout-sizes N ...]``

Figures are medians over repeated runs, with the spread (min-max) and the number
of samples (n). A figure and its floor are measured in turn, round after round,
so that a virtual machine whose speed drifts during the run moves both alike. A
benchmark whose run goes wrong (a reply that is not an acknowledgement, a chain
that stops) fails rather than print a figure.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import re
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path

import yaml
import zmq

PY = sys.executable
HERE = Path(__file__).resolve().parent


# ---------------------------------------------------------------- helpers


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def median_spread(values: list[float]) -> tuple[float, float, float]:
    return statistics.median(values), min(values), max(values)


def verdict(checks: list[tuple[str, bool]]) -> str:
    """A target's text with whether this run met it: "<= 8 ms met; <= 1.5x NOT MET"."""
    return "; ".join(f"{label} {'met' if ok else 'NOT MET'}" for label, ok in checks)


def show(
    name: str,
    value: list[float],
    unit: str,
    floor_name: str,
    floor: list[float],
    target: str,
    checks: Callable[[float, float], list[tuple[str, bool]]] | None = None,
) -> dict:
    """Print a figure next to its floor. ``checks(median, ratio)``: the target's
    parts with whether each is met, printed in place of ``target``."""
    v, vlo, vhi = median_spread(value)
    f, flo, fhi = median_spread(floor)
    ratio = v / f if f else float("nan")
    if checks is not None:
        target = verdict(checks(v, ratio))
    print(
        f"{name:<34} {v:10.1f} {unit:<6} ({vlo:.1f}-{vhi:.1f}, n={len(value)})   "
        f"floor {floor_name}: {f:.1f} {unit} ({flo:.1f}-{fhi:.1f}, n={len(floor)})   "
        f"ratio {ratio:.2f}   target {target}"
    )
    return {
        "name": name,
        "median": v,
        "min": vlo,
        "max": vhi,
        "samples": len(value),
        "unit": unit,
        "floor": floor_name,
        "floor median": f,
        "floor samples": len(floor),
        "ratio": ratio,
        "target": target,
    }


class System:
    """A broker and a manager in a temporary directory, as a user would run them."""

    def __init__(
        self,
        workers: dict[str, dict],
        checklist: dict | None = None,
        next_workers: str = "",
        level: str = "INFO",
        history: bool = True,
    ) -> None:
        self.dir = Path(tempfile.mkdtemp(prefix="nowcast-bench-"))
        self.ports = {"manager": free_port(), "workers": free_port()}
        registry = {"next workers module": "bench_next_workers", "workers": workers}
        config = {
            "checklist file": str(self.dir / "checklist.yaml"),
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
                        "level": level,
                        "formatter": "simple",
                        "filename": str(self.dir / "nowcast.log"),
                    },
                },
                "root": {"level": level, "handlers": ["file"]},
            },
            "zmq": {
                "host": "127.0.0.1",
                "ports": self.ports,
                "reply timeout": 30,
                "give up after": 120,
            },
            "message registry": registry,
            "history": {"enabled": history},
        }
        self.config_file = self.dir / "nowcast.yaml"
        self.config_file.write_text(yaml.safe_dump(config, sort_keys=False))
        (self.dir / "bench_next_workers.py").write_text(
            next_workers
            or "".join(
                f"def after_{name}(msg, config, checklist):\n    return []\n" for name in workers
            )
        )
        if checklist is not None:
            (self.dir / "checklist.yaml").write_text(yaml.safe_dump(checklist, sort_keys=False))
        self.procs = []

    # the long-running processes, in the order they start, and the Python they run in
    modules = ("nowcast.message_broker", "nowcast.manager")
    python = PY

    def spawn(self, module: str) -> subprocess.Popen:
        return subprocess.Popen([self.python, "-m", module, str(self.config_file)], cwd=self.dir)

    def start(self) -> System:
        for module in self.modules:
            self.procs.append(self.spawn(module))
        try:
            self.wait_ready()
        except BaseException:
            self.stop()
            raise
        return self

    def wait_ready(self) -> None:
        deadline = time.monotonic() + 20
        log = self.dir / "nowcast.log"
        while time.monotonic() < deadline:
            if log.exists() and "next workers module loaded" in log.read_text():
                # and the broker must be bound: ask with a real message round trip
                if self._ping():
                    return
            time.sleep(0.02)
        raise RuntimeError(f"system in {self.dir} did not start; see {log}")

    def _ping(self) -> bool:
        ctx = zmq.Context.instance()
        s = ctx.socket(zmq.REQ)
        s.setsockopt(zmq.LINGER, 0)
        s.connect(f"tcp://127.0.0.1:{self.ports['workers']}")
        s.send_string(json.dumps({"source": "nobody", "type": "ping", "payload": None}))
        ok = bool(s.poll(1000))
        s.close()
        return ok

    def manager_pid(self) -> int:
        return self.procs[1].pid

    def stop(self) -> None:
        for p in self.procs:
            p.terminate()
        for p in self.procs:
            try:
                p.wait(5)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait()
        shutil.rmtree(self.dir, ignore_errors=True)


def cpu_seconds(pid: int, children: bool = False) -> float:
    """User + system CPU time of process ``pid`` (all its threads), from /proc;
    with ``children``, that of the children it has waited for too."""
    with open(f"/proc/{pid}/stat", "rb") as f:
        fields = f.read().rsplit(b")", 1)[-1].split()
    return sum(int(t) for t in fields[11 : 15 if children else 13]) / os.sysconf("SC_CLK_TCK")


def thread_cpu(pid: int) -> dict[int, tuple[str, float]]:
    """User + system CPU time of each thread of process ``pid``, from /proc:
    thread id -> (the thread's name, seconds)."""
    found = {}
    for tid in os.listdir(f"/proc/{pid}/task"):
        try:
            with open(f"/proc/{pid}/task/{tid}/stat", "rb") as f:
                raw = f.read()
        except OSError:  # the thread has ended
            continue
        name = raw[raw.index(b"(") + 1 : raw.rindex(b")")].decode(errors="replace")
        fields = raw.rsplit(b")", 1)[-1].split()
        ticks = int(fields[11]) + int(fields[12])
        found[int(tid)] = (name, ticks / os.sysconf("SC_CLK_TCK"))
    return found


def cpu_by_part(pid: int, before: dict, after: dict, n: int) -> dict[str, float]:
    """CPU time per message (us) between two ``thread_cpu`` readings of the
    manager, by part: its main thread, ZeroMQ's I/O thread, and the others (the
    committer's, which writes the commits; the rest idle in a burst)."""
    parts = {"main": 0.0, "zmq": 0.0, "other": 0.0}
    for tid, (name, seconds) in after.items():
        part = "main" if tid == pid else "zmq" if name.startswith("ZMQ") else "other"
        parts[part] += (seconds - before.get(tid, (name, 0.0))[1]) / n * 1e6
    return parts


def burst(address: str, messages: list[bytes], clients: int, expect: str | None = None) -> float:
    """Send ``messages`` from ``clients`` concurrent REQ sockets; return msgs/s.
    With ``expect``, every reply must be of that type (a benchmark of refusals is
    no benchmark of acknowledgements)."""
    ctx = zmq.Context.instance()
    per_client = [messages[i::clients] for i in range(clients)]
    barrier = threading.Barrier(clients + 1)
    errors = []

    def client(batch: list[bytes]) -> None:
        s = ctx.socket(zmq.REQ)
        s.setsockopt(zmq.LINGER, 0)
        s.connect(address)
        barrier.wait()
        try:
            for m in batch:
                s.send(m)
                if not s.poll(30000):
                    errors.append("timed out")
                    return
                reply = s.recv()
                if expect is not None:
                    got = json.loads(reply).get("type")
                    if got != expect:
                        errors.append(f"answered {got!r}, not {expect!r}")
                        return
        finally:
            s.close()

    threads = [threading.Thread(target=client, args=(b,)) for b in per_client]
    for t in threads:
        t.start()
    barrier.wait()
    start = time.perf_counter()
    for t in threads:
        t.join()
    elapsed = time.perf_counter() - start
    if errors:
        raise RuntimeError(f"{len(errors)} client(s) stopped: {errors[0]}")
    return len(messages) / elapsed


def bench_messages(n: int, tag: str) -> list[bytes]:
    return [
        json.dumps(
            {
                "source": "reporter",
                "type": "success",
                "payload": {f"{tag}-{i}": i},
                "id": f"{tag}-{i}",
            }
        ).encode()
        for i in range(n)
    ]


# ---------------------------------------------------------------- floors

ECHO_SERVER = """
import sys, zmq
ctx = zmq.Context()
front = ctx.socket(zmq.ROUTER); front.bind("tcp://127.0.0.1:%s" % sys.argv[1])
back = ctx.socket(zmq.DEALER); back.bind("tcp://127.0.0.1:%s" % sys.argv[2])
import threading
threading.Thread(target=zmq.proxy, args=(front, back), daemon=True).start()
rep = ctx.socket(zmq.REP); rep.connect("tcp://127.0.0.1:%s" % sys.argv[2])
print("ready", flush=True)
while True:
    rep.send(rep.recv())
"""


def floor_burst(messages: list[bytes], clients: int, cpu: list[float] | None = None) -> float:
    """A bare pyzmq REQ/REP echo through a ROUTER/DEALER proxy in Python; with
    ``cpu``, its CPU time per message (us) is appended to it."""
    front, back = free_port(), free_port()
    proc = subprocess.Popen(
        [PY, "-c", ECHO_SERVER, str(front), str(back)], stdout=subprocess.PIPE, text=True
    )
    try:
        proc.stdout.readline()
        burst(f"tcp://127.0.0.1:{front}", messages[:20], 20)  # warm up connections
        before = cpu_seconds(proc.pid)
        rate = burst(f"tcp://127.0.0.1:{front}", messages, clients)
        if cpu is not None:
            cpu.append((cpu_seconds(proc.pid) - before) / len(messages) * 1e6)
        return rate
    finally:
        proc.kill()
        proc.wait()


def time_command(cmd: list[str], runs: int = 1, cwd: Path | None = None) -> list[float]:
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        subprocess.run(cmd, check=True, cwd=cwd, stdout=subprocess.DEVNULL)
        times.append((time.perf_counter() - start) * 1000)
    return times


def interleaved(measures: dict, runs: int) -> dict[str, list[float]]:
    """Take each of ``measures`` (name -> function returning one or more figures)
    in turn, ``runs`` rounds, so a machine that slows down or speeds up during the
    run weighs on a figure and on its floor alike."""
    results: dict[str, list[float]] = {name: [] for name in measures}
    for _ in range(runs):
        for name, measure in measures.items():
            results[name].extend(measure())
    return results


# ---------------------------------------------------------------- benchmarks


def run_startup(runs: int) -> list[dict]:
    """A worker's start-up, end to end, against ``python -c "import zmq, yaml"``."""
    system = System(
        {"sleep": {"checklist key": "sleep", "success": "s", "failure": "f", "crash": "c"}}
    ).start()
    try:
        cmd = [PY, "-m", "nowcast.workers.sleep", str(system.config_file), "--sleep-time", "0"]
        time_command(cmd, 2, system.dir)  # warm the file cache
        times = interleaved(
            {
                "worker": lambda: time_command(cmd, cwd=system.dir),
                "import zmq, yaml": lambda: time_command([PY, "-c", "import zmq, yaml"]),
                "import zmq": lambda: time_command([PY, "-c", "import zmq"]),
            },
            runs,
        )
    finally:
        system.stop()
    floor = times["import zmq, yaml"]
    return [
        show(
            "worker start-up (sleep 0, e2e)",
            times["worker"],
            "ms",
            "import zmq, yaml",
            floor,
            "<= 1.5x",
            lambda v, r: [("<= 1.5x", r <= 1.5)],
        ),
        show(
            "  (for reference) import zmq",
            times["import zmq"],
            "ms",
            "import zmq, yaml",
            floor,
            "-",
        ),
    ]


REPORTER = {"reporter": {"checklist key": "reports", "success": "ok", "failure": "f", "crash": "c"}}


def measure_burst(
    items: int,
    tag: str,
    n: int = 1000,
    clients: int = 20,
    history: bool = True,
    cpu: list[float] | None = None,
    parts: list[dict] | None = None,
) -> float:
    """msgs/s for ``n`` messages from ``clients`` clients, against a fresh system
    whose checklist starts with ``items`` entries (and with the run history on or off).
    With ``cpu``, the manager's CPU time per message (us: user + system, all its
    threads, from /proc, over the burst) is appended to it; with ``parts``, that
    time by thread (``cpu_by_part``)."""
    checklist = {f"entry-{i}": {"value": i, "file": f"/data/forcing/{i}.nc"} for i in range(items)}
    system = System(REPORTER, checklist=checklist, history=history).start()
    try:
        address = f"tcp://127.0.0.1:{system.ports['workers']}"
        burst(address, bench_messages(20, f"warm-{tag}"), 20, "ack")  # connect every client first
        pid = system.manager_pid()
        threads, before = thread_cpu(pid), cpu_seconds(pid)
        rate = burst(address, bench_messages(n, tag), clients, "ack")
        if cpu is not None:
            cpu.append((cpu_seconds(pid) - before) / n * 1e6)
        if parts is not None:
            parts.append(cpu_by_part(pid, threads, thread_cpu(pid), n))
        return rate
    finally:
        system.stop()


def run_burst(runs: int, items: int = 1000, n: int = 2000, clients: int = 20) -> list[dict]:
    """2,000 messages from 20 concurrent clients with a 1,000-item checklist: the
    rate, and the manager's CPU time per message (which the machine's load and
    speed drift move far less than the rate)."""
    results, floors, cpu, floor_cpu, parts = [], [], [], [], []
    for run in range(runs):
        results.append(measure_burst(items, f"r{run}", n, clients, cpu=cpu, parts=parts))
        floors.append(floor_burst(bench_messages(n, f"f{run}"), clients, floor_cpu))
    shown = [
        show(
            f"burst {n} msgs, {clients} clients, {items} items",
            results,
            "msg/s",
            "REQ/REP echo via proxy",
            floors,
            "- (reference)",
        ),
        show(
            "manager CPU per message (burst)",
            cpu,
            "us",
            "echo server's CPU",
            floor_cpu,
            "<= 100 us",
            lambda v, r: [("<= 100 us", v <= 100)],
        ),
    ]
    median = {k: statistics.median(p[k] for p in parts) for k in ("main", "other", "zmq")}
    print(
        f"{'  of which, by thread (medians)':<34} main {median['main']:.1f} us, "
        f"committer {median['other']:.1f} us, ZeroMQ I/O {median['zmq']:.1f} us"
    )
    if shown[1]["median"] > 100:
        print(
            f"{'  why not, and what it would take':<34} the main thread's own work a message "
            "(reading and checking it, applying it and after_, its log line, history rows and "
            "remembered id) and the committer's: the 80 KB checklist file made, flushed and "
            "renamed, and the history's transaction, in each commit. It would take the "
            "checklist's changes carried in the history's transaction and the file rewritten "
            "now and then, which the design's rule that the checklist file is written before "
            "each reply forbids (a decision for the project), and 5 to 10 us less Python a "
            "message on the main thread (README, Performance: Burst)"
        )
    return shown


HOP_WORKER = """
import time
from nowcast import NowcastWorker

def work(parsed_args, config, tell_manager):
    with open("hops.txt", "a") as f:
        f.write("{NAME} " + repr(time.time()) + "\\n")
    return {"hop": "{NAME}"}

worker = NowcastWorker("{NAME}", "a no-op hop", package="")
worker.init_cli()
worker.run(work, lambda args: "success", lambda args: "failure")
with open("answered.txt", "a") as f:  # the manager's reply came: nothing left running
    f.write("{NAME}\\n")
"""


DURABLE_ECHO_SERVER = """
import os, sys, threading, zmq
ctx = zmq.Context()
front = ctx.socket(zmq.ROUTER); front.bind("tcp://127.0.0.1:%s" % sys.argv[1])
back = ctx.socket(zmq.DEALER); back.bind("tcp://127.0.0.1:%s" % sys.argv[2])
threading.Thread(target=zmq.proxy, args=(front, back), daemon=True).start()
rep = ctx.socket(zmq.REP); rep.connect("tcp://127.0.0.1:%s" % sys.argv[2])
path = sys.argv[3]
print("ready", flush=True)
while True:
    body = rep.recv()
    with open(path + ".tmp", "wb") as f:  # one durable write before each reply
        f.write(body)
        f.flush()
        os.fsync(f.fileno())
    os.rename(path + ".tmp", path)
    rep.send(body)
"""

FORKING_CLIENT = """
import os, sys, time, zmq
address, hops = sys.argv[1], int(sys.argv[2])
start = time.perf_counter()
for i in range(hops):
    pid = os.fork()
    if pid == 0:
        ctx = zmq.Context()
        s = ctx.socket(zmq.REQ); s.setsockopt(zmq.LINGER, 0); s.connect(address)
        s.send(b'{"source": "hop", "type": "success", "payload": {"hop": %d}}' % i)
        ok = s.poll(30000)
        if ok:
            s.recv()
        s.close(); ctx.term()
        os._exit(0 if ok else 1)
    _, status = os.waitpid(pid, 0)
    if status != 0:
        sys.exit("a hop got no reply")
print((time.perf_counter() - start) / hops * 1000, flush=True)
"""


class HopFloor:
    """The work a warm hop cannot avoid, with nothing of nowcast's: a warm process
    (zmq imported) forks a child that makes one ZeroMQ round trip through a
    ROUTER/DEALER broker to a server that makes one durable write before it
    answers; the next child is forked when it has exited."""

    def __init__(self) -> None:
        self.dir = Path(tempfile.mkdtemp(prefix="nowcast-bench-floor-"))
        front, back = free_port(), free_port()
        self.address = f"tcp://127.0.0.1:{front}"
        self.server = subprocess.Popen(
            [PY, "-c", DURABLE_ECHO_SERVER, str(front), str(back), str(self.dir / "state")],
            stdout=subprocess.PIPE,
            text=True,
        )
        self.server.stdout.readline()

    def run(self, hops: int = 10) -> list[float]:
        """The mean hop of one chain of ``hops`` forks, in ms."""
        out = subprocess.run(
            [PY, "-c", FORKING_CLIENT, self.address, str(hops)],
            check=True,
            capture_output=True,
            text=True,
        )
        return [float(out.stdout)]

    def stop(self) -> None:
        self.server.kill()
        self.server.wait()
        shutil.rmtree(self.dir, ignore_errors=True)


def run_hop(runs: int, hops: int = 10) -> list[dict]:
    """A chain of no-op workers: time from one worker's function to the next one's,
    with warm start (the default) and, for reference, without. The floor does the
    same work with nothing of nowcast's (HopFloor); a cold ``import zmq`` is shown
    for reference, as what a worker started cold pays before anything else."""
    chains = {}
    floor = HopFloor()
    try:
        for warm_start in (True, False):
            chains[warm_start] = HopChain(hops, warm_start)
        times = interleaved(
            {
                "warm": chains[True].run,
                "floor": lambda: floor.run(hops),
                "cold": chains[False].run,
                "import zmq": lambda: time_command([PY, "-c", "import zmq"]),
            },
            runs,
        )
    finally:
        floor.stop()
        for chain in chains.values():
            chain.system.stop()
    floor_name = "fork + round trip + durable write"
    shown = [
        show(
            f"hop ({hops}-worker chain)",
            times["warm"],
            "ms",
            floor_name,
            times["floor"],
            "<= 8 ms; <= 1.5x",
            lambda v, r: [("<= 8 ms", v <= 8), ("<= 1.5x", r <= 1.5)],
        ),
        show(
            "  (for reference) warm start: false",
            times["cold"],
            "ms",
            "import zmq",
            times["import zmq"],
            "-",
        ),
    ]
    if shown[0]["median"] > 8:
        print(
            f"{'  why not, and what it would take':<34} about twice its floor: the commit the "
            "design requires before the reply and the launch (the checklist and the state file "
            "each written, flushed and renamed, their directory flushed, the history's "
            "transaction: four flushes where the floor makes one) and the worker's own start "
            "(command line, config, logging, three log lines); it would take the commit "
            "flushing once, the design decision of the CPU line below (README, Performance: Hop)"
        )
    return shown


class HopChain:
    """A system running a chain of ``hops`` no-op workers, each launching the next."""

    def __init__(self, hops: int, warm_start: bool, history: bool = True) -> None:
        self.names = names = [f"hop{i}" for i in range(hops)]
        workers = {
            n: {"checklist key": n, "success": "s", "failure": "f", "crash": "c"} for n in names
        }
        next_workers = (
            "from nowcast import NextWorker\n"
            + "".join(
                f"def after_{n}(msg, config, checklist):\n"
                f"    return [NextWorker({names[i + 1]!r})] if i_ok(msg) else []\n"
                if i + 1 < hops
                else f"def after_{n}(msg, config, checklist):\n    return []\n"
                for i, n in enumerate(names)
            )
            + "def i_ok(msg):\n    return msg.type == 'success'\n"
        )
        self.system = system = System(workers, next_workers=next_workers, history=history)
        config = yaml.safe_load(system.config_file.read_text())
        config["run"] = {"warm start": warm_start}
        system.config_file.write_text(yaml.safe_dump(config, sort_keys=False))
        for n in names:
            (system.dir / f"{n}.py").write_text(HOP_WORKER.replace("{NAME}", n))
        subprocess.run([PY, "-m", "compileall", "-q", str(system.dir)], check=True)
        system.start()
        if warm_start:
            wait_for_log(system, "fork server (pid")

    def run(self) -> list[float]:
        """Run the chain once; the mean hop, in ms."""
        system, hops = self.system, len(self.names)
        hops_file = system.dir / "hops.txt"
        hops_file.unlink(missing_ok=True)
        answered = system.dir / "answered.txt"
        answered.unlink(missing_ok=True)
        subprocess.run(
            [PY, "-m", self.names[0], str(system.config_file)], cwd=system.dir, check=True
        )
        deadline = time.monotonic() + 60
        while not (hops_file.exists() and len(hops_file.read_text().splitlines()) == hops):
            if time.monotonic() > deadline:
                done = len(hops_file.read_text().splitlines()) if hops_file.exists() else 0
                raise RuntimeError(
                    f"the chain stopped after {done} of {hops} hops; see {system.dir}/nowcast.log"
                )
            time.sleep(0.01)
        # every worker answered before the next run (or the system's stop), so none
        # is left sending its message again to a manager that has gone
        while not (answered.exists() and len(answered.read_text().splitlines()) == hops):
            if time.monotonic() > deadline:
                raise RuntimeError(f"a worker of the chain got no reply; see {system.dir}")
            time.sleep(0.01)
        stamps = [float(line.split()[1]) for line in hops_file.read_text().splitlines()]
        return [(stamps[-1] - stamps[0]) / (hops - 1) * 1000]


def wait_for_log(system: System, text: str, timeout: float = 20) -> None:
    """Wait until the system's log holds ``text``."""
    log = system.dir / "nowcast.log"
    deadline = time.monotonic() + timeout
    while text not in log.read_text():
        if time.monotonic() > deadline:
            raise RuntimeError(f"no {text!r} in {log} after {timeout} s")
        time.sleep(0.02)


def rss_kib(pid: int, field: str = "VmRSS") -> int:
    """A process's resident memory (``VmRSS``) or its peak (``VmHWM``), in KiB."""
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith(f"{field}:"):
                return int(line.split()[1])
    raise RuntimeError(f"no {field}")


def run_growth(runs: int, sizes=(10, 1000, 10000), n: int = 1000, clients: int = 20) -> list[dict]:
    """The per-message cost with 10, 1,000 and 10,000 items in the checklist."""
    rounds = iter(range(runs * len(sizes)))
    costs = interleaved(
        {
            size: lambda size=size: [
                1e6 / measure_burst(size, f"g{size}-{next(rounds)}", n, clients)
            ]
            for size in sizes
        },
        runs,
    )
    return [
        show(
            f"per-message cost, {size} items",
            costs[size],
            "us",
            f"{sizes[0]} items",
            costs[sizes[0]],
            f"<= 2x at {sizes[-1]}",
            None if size != sizes[-1] else lambda v, r: [("<= 2x", r <= 2)],
        )
        for size in sizes
    ]


def measure_memory(counts: tuple[int, ...], clients: int) -> dict[int, float]:
    """The manager's resident memory (MiB) after each of ``counts`` messages, every
    one acknowledged (``success``, a registered type, so each is applied)."""
    system = System(REPORTER).start()
    readings = {}
    try:
        address = f"tcp://127.0.0.1:{system.ports['workers']}"
        sent = 0
        for count in counts:
            while sent < count:
                batch = min(10000, count - sent)
                # payloads replace one small entry, so the checklist does not grow
                msgs = [
                    json.dumps(
                        {
                            "source": "reporter",
                            "type": "success",
                            "payload": {"last": sent + i},
                            "id": f"m{sent + i}",
                        }
                    ).encode()
                    for i in range(batch)
                ]
                burst(address, msgs, clients, "ack")
                sent += batch
            readings[count] = rss_kib(system.manager_pid()) / 1024
        checklist = yaml.safe_load((system.dir / "checklist.yaml").read_text())
        last = checklist.get("reports", {}).get("last", -1)
        if last < counts[-1] - 10 * clients:  # the clients' last messages land in any order
            raise RuntimeError(f"the checklist does not hold the last messages: {checklist}")
    finally:
        system.stop()
    return readings


def run_memory(runs: int, counts=(10000, 100000), clients: int = 20) -> list[dict]:
    """The manager's resident memory after 10,000 and 100,000 messages."""
    runs_readings = [measure_memory(counts, clients) for _ in range(runs)]
    first = statistics.median(r[counts[0]] for r in runs_readings)
    last = statistics.median(r[counts[-1]] for r in runs_readings)
    growths = [(r[counts[-1]] - r[counts[0]]) / r[counts[0]] * 100 for r in runs_readings]
    growth = statistics.median(growths)
    print(
        f"{'manager memory':<34} {first:10.1f} MiB after {counts[0]:,} msgs, {last:.1f} MiB after "
        f"{counts[-1]:,}: growth {growth:+.1f}% ({min(growths):+.1f}-{max(growths):+.1f}, "
        f"n={runs})   target {verdict([('< +10%', growth < 10)])}"
    )
    return [{"name": "manager memory", "MiB": [first, last], "growth %": growth, "samples": runs}]


FANOUT_WORKER = """
from nowcast import NowcastWorker

def work(parsed_args, config, tell_manager):
    return {{parsed_args.index: True}} if {WITH_INDEX} else {{}}

worker = NowcastWorker("{NAME}", "a no-op worker of the fan-out", package="")
worker.init_cli()
if {WITH_INDEX}:
    worker.cli.add_argument("index")
worker.run(work, lambda args: "success", lambda args: "failure")
"""

FANOUT_NEXT_WORKERS = """
import time
from nowcast import NextWorker

MEMBERS = {MEMBERS}

def stamp(what):
    with open("fanout.txt", "a") as f:
        f.write(what + " " + repr(time.time()) + "\\n")

def after_start(msg, config, checklist):
    stamp("start")
    members = [NextWorker("member", args=[str(i)]) for i in range(MEMBERS)]
    return members, {{"member"}}

def after_member(msg, config, checklist):
    return [NextWorker("final")]

def after_final(msg, config, checklist):
    stamp("final")
    return []
"""


class FanOut:
    """A system whose ``start`` worker's ``after_`` function launches ``members``
    no-op members, joined by a race group, then one ``final`` worker."""

    def __init__(self, members: int) -> None:
        self.members = members
        entry = {"success": "s", "failure": "f", "crash": "c"}
        self.system = system = System(
            {"start": entry, "member": {"checklist key": "members", **entry}, "final": entry},
            next_workers=FANOUT_NEXT_WORKERS.format(MEMBERS=members),
        )
        for name in ("start", "member", "final"):
            (system.dir / f"{name}.py").write_text(
                FANOUT_WORKER.format(NAME=name, WITH_INDEX=name == "member")
            )
        subprocess.run([PY, "-m", "compileall", "-q", str(system.dir)], check=True)
        system.start()
        wait_for_log(system, "fork server (pid")

    def run(self) -> dict:
        """Run the fan-out once: seconds from the start worker's success to the final
        worker's, the manager's resident memory before it and its peak (MiB), and
        the CPU time (ms) of the manager, the broker, the fork server and the
        workers it forked, each a member."""
        system = self.system
        pid = system.manager_pid()
        before = rss_kib(pid, "VmRSS") / 1024
        log = (system.dir / "nowcast.log").read_text()
        server = int(re.findall(r"fork server \(pid (\d+)\) ready", log)[-1])
        pids = {"manager": pid, "broker": system.procs[0].pid, "fork server": server}
        cpu_before = {name: cpu_seconds(p, True) for name, p in pids.items()}
        subprocess.run([PY, "-m", "start", str(system.config_file)], cwd=system.dir, check=True)
        stamps = system.dir / "fanout.txt"
        deadline = time.monotonic() + 60 + self.members * 0.1
        while not (stamps.exists() and "final" in stamps.read_text()):
            if time.monotonic() > deadline:
                raise RuntimeError(f"the fan-out did not finish; see {system.dir}/nowcast.log")
            time.sleep(0.05)
        times = dict(line.split() for line in stamps.read_text().splitlines())
        peak = rss_kib(pid, "VmHWM") / 1024
        # every member reported once, and the final worker ran once (the commit
        # that launched it holds every member's report)
        checklist = yaml.safe_load((system.dir / "checklist.yaml").read_text())
        reported = checklist.get("members") or {}
        if len(reported) != self.members or len(stamps.read_text().splitlines()) != 2:
            raise RuntimeError(
                f"{len(reported)} of {self.members} members in the checklist; "
                f"{stamps.read_text()!r}; see {system.dir}/nowcast.log"
            )
        cpu = {
            name: (cpu_seconds(p, True) - cpu_before[name]) * 1000 / self.members
            for name, p in pids.items()
        }
        return {
            "seconds": float(times["final"]) - float(times["start"]),
            "before MiB": before,
            "peak MiB": peak,
            "cpu ms": cpu,
        }


def run_fanout(runs: int, sizes=(1000, 10000)) -> list[dict]:
    """A fan-out: one ``after_`` function launches ``size`` no-op members, a race
    group joins them, then one final worker runs. The time from the first worker's
    report to the final worker's, and the manager's peak memory (VmHWM), each
    system fresh; at the largest size, per member against the smallest."""
    results: dict[int, list[dict]] = {size: [] for size in sizes}
    for size in sizes:
        for _ in range(runs if size == sizes[0] else max(1, runs // 3)):
            fanout = FanOut(size)
            try:
                results[size].append(fanout.run())
            finally:
                fanout.system.stop()
    rows = []
    per_member = {}
    for size in sizes:
        seconds = [r["seconds"] for r in results[size]]
        peaks = [r["peak MiB"] for r in results[size]]
        grown = [(r["peak MiB"] - r["before MiB"]) * 1024 / size for r in results[size]]
        t, tlo, thi = median_spread(seconds)
        m, mlo, mhi = median_spread(peaks)
        per_member[size] = (t / size * 1000, statistics.median(grown))
        growth_target = "-" if size == sizes[0] else f"<= 1.2x per member of {sizes[0]:,}"
        time_target = verdict([("<= 4 s", t <= 4)]) if size == 1000 else growth_target
        print(
            f"{f'fan-out {size:,}: report to final':<34} {t:10.2f} s      ({tlo:.2f}-{thi:.2f}, "
            f"n={len(seconds)})   {per_member[size][0]:.2f} ms a member   target {time_target}"
        )
        cpu = {
            name: statistics.median(r["cpu ms"][name] for r in results[size])
            for name in results[size][0]["cpu ms"]
        }
        print(
            f"{f'  CPU a member, {size:,}':<34} {sum(cpu.values()):10.2f} ms     "
            + ", ".join(f"{name} {ms:.2f}" for name, ms in cpu.items())
            + " (the fork server's with the members it forked; user + system, /proc)"
        )
        if size == 1000 and t > 4:
            on_cores = sum(cpu.values()) * size / 1000 / (os.cpu_count() or 1)
            print(
                f"{'  why not, and what it would take':<34} the CPU the members cost (above), "
                f"spread over {os.cpu_count()} cores, is {on_cores:.2f} s by itself: each member's "
                "start (its fork, and a copy of each page of the fork server's memory it writes "
                "to, reference counts written in every object it uses) is most of it; it would "
                "take fewer pages written by a member's start (README, Performance: Fan-out)"
            )
        print(
            f"{f'  manager peak RSS, {size:,}':<34} {m:10.1f} MiB    ({mlo:.1f}-{mhi:.1f}, "
            f"n={len(peaks)})   {per_member[size][1]:.2f} KiB a member over its start   "
            f"target {verdict([('<= 40 MiB', m <= 40)]) if size == 1000 else growth_target}"
        )
        rows.append({"name": f"fan-out {size}", "seconds": seconds, "peak MiB": peaks})
    if len(sizes) > 1:
        small, large = per_member[sizes[0]], per_member[sizes[-1]]
        time_ratio = large[0] / small[0]
        memory_ratio = large[1] / small[1] if small[1] > 0 else float("nan")
        print(
            f"{f'  per member, {sizes[-1]:,} / {sizes[0]:,}':<34} time {time_ratio:.2f}x, "
            f"memory {memory_ratio:.2f}x   target "
            + verdict(
                [("time <= 1.2x", time_ratio <= 1.2), ("memory <= 1.2x", memory_ratio <= 1.2)]
            )
        )
        rows.append({"name": "fan-out ratio", "time": time_ratio, "memory": memory_ratio})
    return rows


def run_web(runs: int, show) -> list[dict]:
    """The dashboard's pages with 60 workers and 400 days of history (bench_web.py)."""
    from bench_web import run_web as run

    return run(runs, show)


def run_history(runs: int, n: int = 1000, clients: int = 20, hops: int = 10) -> list[dict]:
    """What the run history database costs: the burst and the hop with it on (the
    default) and off, interleaved, the same systems otherwise; and the manager's
    CPU time per message in the burst, which a loaded machine moves less than
    the rates."""
    rounds = iter(range(10**6))
    cpu: dict[bool, list[float]] = {True: [], False: []}
    bursts = interleaved(
        {
            on: lambda on=on: [measure_burst(1000, f"h{on}{next(rounds)}", n, clients, on, cpu[on])]
            for on in (True, False)
        },
        runs,
    )
    chains = {}
    try:
        for on in (True, False):
            chains[on] = HopChain(hops, True, history=on)
        times = interleaved({on: chains[on].run for on in (True, False)}, runs)
    finally:
        for chain in chains.values():
            chain.system.stop()
    return [
        show(
            f"burst {n} msgs, history on",
            bursts[True],
            "msg/s",
            "history off",
            bursts[False],
            ">= 0.9x (costs <= 10%)",
            lambda v, r: [(">= 0.9x (costs <= 10%)", r >= 0.9)],
        ),
        show(
            "  manager CPU per message, history on",
            cpu[True],
            "us",
            "history off",
            cpu[False],
            "-",
        ),
        show(
            f"hop ({hops}-worker chain), history on",
            times[True],
            "ms",
            "history off",
            times[False],
            "<= 1.1x (costs <= 10%)",
            lambda v, r: [("<= 1.1x (costs <= 10%)", r <= 1.1)],
        ),
    ]


SLURM_KICK = """
import time
from nowcast import NowcastWorker

def work(parsed_args, config, tell_manager):
    return {}

worker = NowcastWorker("kick", "launches the batch job", package="")
worker.init_cli()
worker.run(work, lambda args: "success", lambda args: "failure")
"""

SLURM_JOB = """
import time
from nowcast import NowcastWorker

def work(parsed_args, config, tell_manager):
    with open("running.txt", "a") as f:
        f.write(repr(time.time()) + "\\n")
    return {}

worker = NowcastWorker("job", "a no-op batch job", package="")
worker.init_cli()
worker.run(work, lambda args: "success", lambda args: "failure")
"""


def run_slurm(runs: int) -> list[dict]:
    """From an ``after_`` function's return to its worker running as a SLURM job on
    the node, against ``sbatch --wrap`` to the job running, on a local cluster."""
    from nowcast.batch import local_cluster

    why = local_cluster.missing()
    if why:
        print(f"{'slurm: after_ -> job running':<34} skipped: {why}")
        return []
    cluster = Path(tempfile.mkdtemp(prefix="nowcast-bench-slurm-"))
    environment = local_cluster.start(cluster)
    os.environ["SLURM_CONF"] = environment["SLURM_CONF"]
    entry = {"success": "s", "failure": "f", "crash": "c"}
    system = None
    try:
        system = System(
            {"kick": entry, "job": entry},
            next_workers=(
                "import time\nfrom nowcast import NextWorker\n"
                "def after_kick(msg, config, checklist):\n"
                "    with open('after.txt', 'a') as f:\n"
                "        f.write(repr(time.time()) + '\\n')\n"
                "    return [NextWorker('job', host='cluster')]\n"
                "def after_job(msg, config, checklist):\n    return []\n"
            ),
        )
        config = yaml.safe_load(system.config_file.read_text())
        # the job's first instant on the node, as the floor's: a stamp from the envvars
        # file the job script sources before it starts the worker
        started = system.dir / "started.txt"
        (system.dir / "stamp.sh").write_text(f"date +%s.%N >> {started}\n")
        config["run"] = {
            "enabled hosts": {
                "cluster": {
                    "batch": "slurm",
                    "poll interval": 5,
                    "envvars": str(system.dir / "stamp.sh"),
                }
            }
        }
        system.config_file.write_text(yaml.safe_dump(config, sort_keys=False))
        (system.dir / "kick.py").write_text(SLURM_KICK)
        (system.dir / "job.py").write_text(SLURM_JOB)
        system.start()

        worker_running: list[float] = []

        def nowcast_job() -> list[float]:
            running = system.dir / "running.txt"
            before = len(running.read_text().splitlines()) if running.exists() else 0
            subprocess.run([PY, "-m", "kick", str(system.config_file)], cwd=system.dir, check=True)
            wait_lines(running, before + 1)
            after = float((system.dir / "after.txt").read_text().splitlines()[-1])
            worker_running.append((float(running.read_text().splitlines()[-1]) - after) * 1000)
            return [(float(started.read_text().splitlines()[-1]) - after) * 1000]

        def bare_job() -> list[float]:
            stamp = cluster / "stamp.txt"
            stamp.unlink(missing_ok=True)
            start = time.time()
            subprocess.run(
                ["sbatch", "--parsable", "-o", "/dev/null", "--wrap", f"date +%s.%N > {stamp}"],
                env=environment,
                check=True,
                stdout=subprocess.DEVNULL,
            )
            wait_lines(stamp, 1)
            return [(float(stamp.read_text().split()[0]) - start) * 1000]

        times = interleaved({"nowcast": nowcast_job, "sbatch": bare_job}, runs)
    finally:
        if system is not None:
            system.stop()
        local_cluster.stop(cluster)
        shutil.rmtree(cluster, ignore_errors=True)
    return [
        show(
            "slurm: after_ -> job running",
            times["nowcast"],
            "ms",
            "sbatch --wrap -> job running",
            times["sbatch"],
            "-",
        ),
        show(
            "  (reference) -> worker's function",
            worker_running,
            "ms",
            "sbatch --wrap -> job running",
            times["sbatch"],
            "-",
        ),
    ]


def wait_lines(path: Path, count: int, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while not (path.exists() and len(path.read_text().splitlines()) >= count):
        if time.monotonic() > deadline:
            raise RuntimeError(f"{path} has not {count} lines after {timeout} s")
        time.sleep(0.005)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true", help="fewer repeats")
    parser.add_argument("--only", nargs="*", default=None)
    parser.add_argument(
        "--fanout-sizes", nargs="+", type=int, default=[1000, 10000], help="members of the fan-out"
    )
    args = parser.parse_args()
    # TERM (a time limit around the run) stops it through the finally blocks,
    # which stop the systems it started
    signal.signal(signal.SIGTERM, lambda signum, frame: sys.exit(128 + signum))
    runs = 3 if args.quick else 5
    print(
        f"nowcast benchmarks on {platform.node() and 'this machine'}: {platform.machine()}, "
        f"{os.cpu_count()} cores, Python {platform.python_version()}, pyzmq {zmq.__version__}, "
        f"libzmq {zmq.zmq_version()}"
    )
    print("medians (min-max, n = number of samples of each figure and of its floor)")
    benches = {
        "startup": lambda: run_startup(runs * 4),
        "hop": lambda: run_hop(runs),
        "burst": lambda: run_burst(runs),
        "growth": lambda: run_growth(max(2, runs - 2)),
        "memory": lambda: run_memory(max(1, runs - 2)),
        "web": lambda: run_web(runs * 2, show),
        # the history's cost is a ratio of two noisy figures: more rounds of each
        "history": lambda: run_history(runs * 4),
        "slurm": lambda: run_slurm(runs),
        "fanout": lambda: run_fanout(runs, tuple(args.fanout_sizes)),
    }
    for name, bench in benches.items():
        if args.only is None or name in args.only:
            bench()


if __name__ == "__main__":
    main()
