"""nowcast next to its peers: the same workloads on nowcast, on Cylc 8 and, when
its source is at hand, on NEMO_Nowcast, measured in turn in one run.

Usage: ``python benchmarks/peers.py [--quick] [--only chain fanout retry timeout]``

Workloads, each defined the same way on every system:

- chain: 10 no-op workers (tasks), each launched when the one before it
  finished; the mean time from one's first instant to the next one's.
- fan-out 200 and 1,000: one step launches that many no-op members; the time
  from the framework handling that step's success to it handling the success of
  a final step that runs once every member has finished (a race group in
  nowcast, a ``member<m> => final`` dependency in Cylc).
- retry: a member fails on its first try and is retried at once; the time from
  its failure (its last instant) to the retry's first instant.
- time limit: a member that sleeps past a limit of 1 s; the time from its first
  instant plus the limit to the framework handling the kill.

Cylc 8 (cylc-flow from the package index) is installed, the first time, into a
virtual environment of its own under ``benchmarks/.cache`` (never a dependency of
nowcast). Its workflows are generated here; their ``flow.cylc`` files are kept
under ``benchmarks/.cache/cylc-flows`` and their paths printed, so anyone can see
what was compared. Each runs with the background job runner on localhost under
``cylc play --no-detach``, with ``HOME`` and ``CYLC_CONF_PATH`` in the cache.

NEMO_Nowcast is not on the package index: it runs only when ``NEMO_NOWCAST_SRC``
names a local source checkout, otherwise one line says it is skipped.
"""

from __future__ import annotations

import argparse
import os
import platform
import shlex
import shutil
import signal
import sqlite3
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import yaml
from run import PY, FanOut, HopChain, System, interleaved, median_spread, wait_for_log

HERE = Path(__file__).resolve().parent
CACHE = HERE / ".cache"
CYLC_VENV = CACHE / "cylc-venv"
CYLC_REQUIREMENT = "cylc-flow>=8,<9"
CYLC_HOME = CACHE / "cylc-home"  # HOME of the Cylc commands: their run dirs are HOME/cylc-run
CYLC_CONF = CACHE / "cylc-conf"  # CYLC_CONF_PATH: the global.cylc below
CYLC_FLOWS = CACHE / "cylc-flows"  # the generated workflow sources, one directory each
STAMPS = CACHE / "stamps"  # where every system's members write their time stamps

HOPS = 10
TIME_LIMIT = 1  # seconds, the time limit of the overrunning member


def stamp_lines(path: Path) -> list[tuple[str, float]]:
    """``what time`` lines, as the members and handlers write them."""
    if not path.exists():
        return []
    return [(w, float(t)) for w, t, *_ in (line.split() for line in path.read_text().splitlines())]


def wait_stamp(path: Path, what: str, timeout: float, where: str) -> list[tuple[str, float]]:
    """Wait until ``path`` holds a ``what`` stamp; every stamp it holds."""
    deadline = time.monotonic() + timeout
    while True:
        lines = stamp_lines(path)
        if any(w == what for w, _ in lines):
            return lines
        if time.monotonic() > deadline:
            raise RuntimeError(f"no {what!r} stamp in {path} after {timeout} s; see {where}")
        time.sleep(0.01)


# ---------------------------------------------------------------- nowcast

MEMBER_WORKER = """
import os, time
from nowcast import NowcastWorker, WorkerError

def stamp(what):
    with open("stamps.txt", "a") as f:
        f.write(what + " " + repr(time.time()) + "\\n")

def work(parsed_args, config, tell_manager):
    if not {MEMBER}:
        return {{}}
    stamp("start")
    if {RETRY} and not os.path.exists("failed-once"):
        open("failed-once", "w").close()
        stamp("fail")
        raise WorkerError("the first try fails")
    if {OVERRUN}:
        time.sleep(60)
    return {{}}

worker = NowcastWorker("{NAME}", "a member of the peers benchmark", package="")
worker.init_cli()
worker.run(work, lambda args: "success", lambda args: "failure")
"""

MEMBER_NEXT_WORKERS = """
import time
from nowcast import NextWorker

def after_kick(msg, config, checklist):
    return [NextWorker("member")]

def after_member(msg, config, checklist):
    with open("stamps.txt", "a") as f:
        f.write("handled " + repr(time.time()) + " " + msg.type + "\\n")
    return []
"""


class NowcastMember:
    """A system whose ``kick`` worker's ``after_`` function launches one ``member``
    that either fails once and is retried (``retry``) or overruns its ``timeout``
    (``timeout``); the stamps of one run go to ``stamps.txt`` in its directory."""

    def __init__(self, workload: str) -> None:
        self.workload = workload
        entry = {"success": "s", "failure": "f", "crash": "c"}
        member = dict(entry)
        if workload == "retry":
            member.update({"retries": 1, "retry delay": 0})
        else:
            member.update({"timeout": TIME_LIMIT})
        self.system = system = System(
            {"kick": entry, "member": member}, next_workers=MEMBER_NEXT_WORKERS
        )
        for name in ("kick", "member"):
            (system.dir / f"{name}.py").write_text(
                MEMBER_WORKER.format(
                    NAME=name,
                    MEMBER=name == "member",
                    RETRY=name == "member" and workload == "retry",
                    OVERRUN=name == "member" and workload == "timeout",
                )
            )
        subprocess.run([PY, "-m", "compileall", "-q", str(system.dir)], check=True)
        system.start()
        wait_for_log(system, "fork server (pid")

    def run(self) -> list[float]:
        """One run; its figure in ms."""
        system = self.system
        stamps = system.dir / "stamps.txt"
        stamps.unlink(missing_ok=True)
        (system.dir / "failed-once").unlink(missing_ok=True)
        subprocess.run([PY, "-m", "kick", str(system.config_file)], cwd=system.dir, check=True)
        lines = wait_stamp(stamps, "handled", 60, f"{system.dir}/nowcast.log")
        return [figure(self.workload, lines, stamps)]


def figure(workload: str, lines: list[tuple[str, float]], where: Path) -> float:
    """The retry or time-limit figure (ms) from one run's stamps, on any system."""
    names = [w for w, _ in lines]
    if workload == "retry":
        if names != ["start", "fail", "start"] + names[3:] or "handled" in names[:3]:
            raise RuntimeError(f"the member was not retried once after failing: {lines} ({where})")
        return (lines[2][1] - lines[1][1]) * 1000
    if names[:2] != ["start", "handled"]:
        raise RuntimeError(f"the overrunning member was not stopped once: {lines} ({where})")
    return (lines[1][1] - (lines[0][1] + TIME_LIMIT)) * 1000


def nowcast_fanout(members: int) -> Callable[[], list[float]]:
    """A fan-out of ``members`` on nowcast (run.py's FanOut), each run on a fresh
    system as there; seconds."""

    def measure() -> list[float]:
        fanout = FanOut(members)
        try:
            return [fanout.run()["seconds"]]
        finally:
            fanout.system.stop()

    return measure


# ---------------------------------------------------------------- Cylc 8

GLOBAL_CYLC = """\
# global.cylc of the peers benchmark (benchmarks/peers.py): jobs on this host, in
# the background; Cylc is found where the benchmark installed it
[scheduler]
    [[run hosts]]
        available = localhost
    [[host self-identification]]
        method = hardwired
        host = localhost
[platforms]
    [[localhost]]
        hosts = localhost
        job runner = background
        cylc path = {BIN}
"""

STAMP_SH = """\
#!/bin/sh
# stamp FILE WHAT [anything]: append "WHAT <seconds since the epoch>" to FILE
echo "$2 $(date +%s.%N)" >> "$1"
"""


def cylc_flow(workload: str, stamps: Path, stamp: Path, members: int = 0) -> str:
    """The ``flow.cylc`` of one workload: ``chain``, ``fanout`` (``members``),
    ``retry`` or ``timeout``. Its tasks and handlers call ``stamp`` (STAMP_SH) to
    write their stamps to ``stamps``, as nowcast's workers do."""
    s = f"{shlex.quote(str(stamp))} {shlex.quote(str(stamps))}"
    head = [
        f"# {workload}: generated by benchmarks/peers.py; see its docstring",
        "[scheduler]",
        "    allow implicit tasks = False",
        "    [[events]]",
        "        # a run that stops short fails the benchmark instead of waiting",
        "        stall timeout = PT0S",
        "        abort on stall timeout = True",
        "        inactivity timeout = PT10M",
        "        abort on inactivity timeout = True",
        "[scheduling]",
        "    # Cylc's default queue: at most 100 tasks active at once (nowcast launches",
        "    # at most 64 a write; both bound what runs at once on a small machine)",
        "    [[graph]]",
    ]
    runtime = ["[runtime]", "    [[root]]", "        platform = localhost", "        script = true"]
    if workload == "chain":
        graph = " => ".join(f"hop{i}" for i in range(HOPS))
        runtime += [f"    [[{', '.join(f'hop{i}' for i in range(HOPS))}]]"]
        runtime += ['        script = """', f"            {s} $CYLC_TASK_NAME", '        """']
    elif workload == "fanout":
        head[1:1] = ["[task parameters]", f"    m = 0..{members - 1}"]
        graph = "start => member<m> => final"
        runtime += [
            "    [[start]]",
            "        [[[events]]]",
            f"            succeeded handlers = {s} start",
            "    [[member<m>]]",
            "    [[final]]",
            "        [[[events]]]",
            f"            succeeded handlers = {s} final",
        ]
    elif workload == "retry":
        failed = shlex.quote(f"{stamps}.failed-once")
        graph = "member"
        runtime += [
            "    [[member]]",
            "        execution retry delays = PT0S",
            '        script = """',
            f"            {s} start",
            f"            if [ ! -e {failed} ]; then",
            f"                touch {failed}",
            f"                {s} fail",
            "                exit 1",
            "            fi",
            '        """',
        ]
    elif workload == "timeout":
        graph = "member:fail? => handled"
        runtime += [
            "    [[member]]",
            f"        execution time limit = PT{TIME_LIMIT}S",
            '        script = """',
            f"            {s} start",
            "            sleep 60",
            '        """',
            "        [[[events]]]",
            f"            failed handlers = {s} handled",
            "    [[handled]]",
        ]
    else:
        raise ValueError(f"no workload {workload!r}")
    return "\n".join(head + [f'        R1 = "{graph}"'] + runtime) + "\n"


class Cylc:
    """Cylc 8 in a virtual environment of its own in the bench's cache."""

    def __init__(self) -> None:
        self.bin = CYLC_VENV / "bin"
        self.env = dict(
            os.environ,
            HOME=str(CYLC_HOME),
            CYLC_CONF_PATH=str(CYLC_CONF),
            PATH=f"{self.bin}{os.pathsep}{os.environ.get('PATH', '')}",
        )
        self.env.pop("VIRTUAL_ENV", None)
        self.version = ""
        self.flows: dict[str, Path] = {}

    def install(self) -> str | None:
        """Install cylc-flow into the cache if it is not there; why not, or None."""
        cylc = self.bin / "cylc"
        if not cylc.exists():
            print(f"installing {CYLC_REQUIREMENT} into {CYLC_VENV} (once) ...", flush=True)
            try:
                subprocess.run([sys.executable, "-m", "venv", str(CYLC_VENV)], check=True)
                subprocess.run(
                    [str(self.bin / "pip"), "install", "--quiet", CYLC_REQUIREMENT],
                    check=True,
                    stdout=subprocess.DEVNULL,
                )
            except subprocess.CalledProcessError as e:
                shutil.rmtree(CYLC_VENV, ignore_errors=True)
                return f"installing {CYLC_REQUIREMENT} failed ({e})"
        out = subprocess.run(
            [str(cylc), "version"], env=self.env, capture_output=True, text=True, check=True
        )
        self.version = out.stdout.strip()
        CYLC_HOME.mkdir(parents=True, exist_ok=True)
        CYLC_CONF.mkdir(parents=True, exist_ok=True)
        (CYLC_CONF / "global.cylc").write_text(GLOBAL_CYLC.format(BIN=self.bin))
        return None

    def write_flow(self, name: str, workload: str, members: int = 0) -> Path:
        """Generate the workflow ``name``; its source directory."""
        source = CYLC_FLOWS / name
        source.mkdir(parents=True, exist_ok=True)
        stamp = CYLC_FLOWS / "stamp.sh"
        stamp.write_text(STAMP_SH)
        stamp.chmod(0o755)
        stamps = STAMPS / f"cylc-{name}.txt"
        (source / "flow.cylc").write_text(cylc_flow(workload, stamps, stamp, members))
        self.flows[name] = source / "flow.cylc"
        return source

    def play(self, name: str, timeout: float) -> tuple[list[tuple[str, float]], Path]:
        """Install the workflow ``name`` afresh and run it to its end under
        ``cylc play --no-detach``; its stamps and its run's database."""
        stamps = STAMPS / f"cylc-{name}.txt"
        stamps.parent.mkdir(parents=True, exist_ok=True)
        stamps.unlink(missing_ok=True)
        Path(f"{stamps}.failed-once").unlink(missing_ok=True)
        # the run directory, as `cylc install --no-run-name` makes it (which needs rsync)
        workflow = f"peers-{name}"
        run_dir = CYLC_HOME / "cylc-run" / workflow
        shutil.rmtree(run_dir, ignore_errors=True)
        run_dir.mkdir(parents=True)
        shutil.copy(CYLC_FLOWS / name / "flow.cylc", run_dir / "flow.cylc")
        log = run_dir / "log" / "scheduler" / "log"
        scheduler = subprocess.Popen(
            [str(self.bin / "cylc"), "play", "--no-detach", "--color=never", workflow],
            env=self.env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        try:
            code = scheduler.wait(timeout)
        except subprocess.TimeoutExpired:
            self.stop(workflow, scheduler)
            raise RuntimeError(f"{workflow} did not finish in {timeout} s; see {log}") from None
        except BaseException:
            self.stop(workflow, scheduler)
            raise
        if code:
            raise RuntimeError(f"cylc play {workflow} exited {code}; see {log}")
        return stamp_lines(stamps), run_dir / "log" / "db"

    def stop(self, workflow: str, scheduler: subprocess.Popen) -> None:
        """Stop a scheduler this benchmark started: by its own command, then its pid."""
        subprocess.run(
            [str(self.bin / "cylc"), "stop", "--now", "--now", workflow],
            env=self.env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            timeout=60,
        )
        try:
            scheduler.wait(30)
        except subprocess.TimeoutExpired:
            scheduler.kill()
            scheduler.wait()

    def measure(self, name: str, workload: str, members: int = 0) -> Callable[[], list[float]]:
        """A function that runs the workflow once and returns its figure."""
        self.write_flow(name, workload, members)

        def run() -> list[float]:
            lines, db = self.play(name, 300 + members * 5)
            stamps = dict(lines)
            if workload == "chain":
                hops = [t for w, t in lines if w.startswith("hop")]
                if len(hops) != HOPS:
                    raise RuntimeError(f"{len(hops)} of {HOPS} hops ran: {lines}")
                return [(hops[-1] - hops[0]) / (HOPS - 1) * 1000]
            if workload == "fanout":
                done = succeeded(db)
                if done != members + 2 or "final" not in stamps:
                    raise RuntimeError(f"{done} of {members + 2} tasks succeeded; see {db}")
                return [stamps["final"] - stamps["start"]]
            return [figure(workload, lines, db)]

        return run


def succeeded(db: Path) -> int:
    """How many tasks of a finished Cylc run succeeded, from its database."""
    with sqlite3.connect(db) as conn:
        return conn.execute(
            "select count(*) from task_states where status = 'succeeded'"
        ).fetchone()[0]


# ---------------------------------------------------------------- NEMO_Nowcast

NEMO_VENV = CACHE / "nemo-venv"
NEMO_WORKER_MIB = 25  # a NEMO_Nowcast worker's resident memory, about (its imports: 20 MiB)

NEMO_WORKER = """
import time
from nemo_nowcast import NowcastWorker

def work(parsed_args, config, tell_manager):
    if {STAMP}:
        with open("stamps.txt", "a") as f:
            f.write("{NAME} " + repr(time.time()) + "\\n")
    return {{}}

worker = NowcastWorker("{NAME}", "a no-op worker of the peers benchmark", package="")
worker.init_cli()
worker.run(work, lambda args: "success", lambda args: "failure")
"""

NEMO_NEXT_WORKERS = """
import time
from nemo_nowcast import NextWorker

HOPS, MEMBERS = {HOPS}, {MEMBERS}

def stamp(what):
    with open("stamps.txt", "a") as f:
        f.write(what + " " + repr(time.time()) + "\\n")

def after_hop(msg, config, checklist):
    i = int(msg.source[3:])
    return [NextWorker("hop%d" % (i + 1))] if i + 1 < HOPS else []

# a race group names workers, and NEMO_Nowcast's counts each name once: every
# member is a worker of its own
def after_start(msg, config, checklist):
    stamp("start")
    names = ["member%d" % i for i in range(MEMBERS)]
    return [NextWorker(name) for name in names], set(names)

def after_member(msg, config, checklist):
    # what the group launches is every member's return, duplicates kept: one says final
    return [NextWorker("final")] if msg.source == "member0" else []

def after_final(msg, config, checklist):
    stamp("final")
    return []

for i in range(HOPS):
    globals()["after_hop%d" % i] = after_hop
for i in range(MEMBERS):
    globals()["after_member%d" % i] = after_member
"""

# the replies NEMO_Nowcast's workers look up in the registry
NEMO_MANAGER_REPLIES = {
    "ack": "message acknowledged",
    "checklist cleared": "system checklist cleared",
    "unregistered worker": "message received from unregistered worker",
    "unregistered message type": "message type not registered for worker",
    "no after_worker function": "no after_worker function in next workers module",
}


class NemoSystem(System):
    """run.py's System with NEMO_Nowcast's broker and manager, the manager in a
    process group of its own that the workers it launches share: a NEMO_Nowcast
    worker waits for its reply without end, so ``stop`` ends the group."""

    def __init__(self, python: str, workers: dict[str, dict], next_workers: str) -> None:
        super().__init__(workers, next_workers=next_workers, history=False)
        self.python = python
        config = yaml.safe_load(self.config_file.read_text())
        config["python"] = python
        config["message registry"]["manager"] = NEMO_MANAGER_REPLIES
        self.config_file.write_text(yaml.safe_dump(config, sort_keys=False))

    modules = ("nemo_nowcast.message_broker", "nemo_nowcast.manager")

    def spawn(self, module: str) -> subprocess.Popen:
        return subprocess.Popen(
            [self.python, "-m", module, str(self.config_file)],
            cwd=self.dir,
            start_new_session=module.endswith("manager"),
        )

    def stop(self) -> None:
        group = self.procs[1].pid if len(self.procs) > 1 else None
        super().stop()
        if group is not None:
            try:
                os.killpg(group, signal.SIGKILL)
            except ProcessLookupError:
                pass


class Nemo:
    """NEMO_Nowcast from a local source checkout, in a virtual environment of its
    own in the bench's cache."""

    def __init__(self, source: Path) -> None:
        self.source = source
        self.python = str(NEMO_VENV / "bin" / "python")

    def install(self) -> str | None:
        """Install the checkout (editable) if it is not installed; why not, or None."""
        marker = NEMO_VENV / "installed-from"
        if marker.exists() and marker.read_text() == str(self.source):
            return None
        print(f"installing NEMO_Nowcast from {self.source} into {NEMO_VENV} ...", flush=True)
        shutil.rmtree(NEMO_VENV, ignore_errors=True)
        try:
            subprocess.run([sys.executable, "-m", "venv", str(NEMO_VENV)], check=True)
            # its metadata asks for a newer Python than some machines have; it runs on 3.11
            subprocess.run(
                [self.python, "-m", "pip", "install", "--quiet", "--ignore-requires-python"]
                + ["-e", str(self.source)],
                check=True,
                stdout=subprocess.DEVNULL,
            )
        except subprocess.CalledProcessError as e:
            shutil.rmtree(NEMO_VENV, ignore_errors=True)
            return f"installing NEMO_Nowcast from {self.source} failed ({e})"
        marker.write_text(str(self.source))
        return None

    def system(self, hops: int = 0, members: int = 0) -> NemoSystem:
        """A NEMO_Nowcast broker and manager for a chain of ``hops`` workers or a
        fan-out of ``members``."""
        names = [f"hop{i}" for i in range(hops)]
        if members:
            names += ["start", "final"] + [f"member{i}" for i in range(members)]
        entry = {"checklist key": "done", "success": "s", "failure": "f", "crash": "c"}
        system = NemoSystem(
            self.python,
            {name: entry for name in names},
            next_workers=NEMO_NEXT_WORKERS.format(HOPS=hops, MEMBERS=members),
        )
        for name in names:
            (system.dir / f"{name}.py").write_text(
                NEMO_WORKER.format(NAME=name, STAMP=name.startswith("hop"))
            )
        subprocess.run([self.python, "-m", "compileall", "-q", str(system.dir)], check=True)
        system.start()
        return system

    def chain(self) -> tuple[System, Callable[[], list[float]]]:
        system = self.system(hops=HOPS)

        def run() -> list[float]:
            stamps = system.dir / "stamps.txt"
            stamps.unlink(missing_ok=True)
            subprocess.run(
                [self.python, "-m", "hop0", str(system.config_file)], cwd=system.dir, check=True
            )
            lines = wait_stamp(stamps, f"hop{HOPS - 1}", 120, f"{system.dir}/nowcast.log")
            return [(lines[-1][1] - lines[0][1]) / (HOPS - 1) * 1000]

        return system, run

    def too_big(self, members: int) -> str | None:
        """Why a fan-out of ``members`` may not run here, or None: NEMO_Nowcast's
        manager starts every member at once, each a Python process of its own."""
        need = members * NEMO_WORKER_MIB
        with open("/proc/meminfo") as f:
            meminfo = dict(line.split(":", 1) for line in f)
        available = int(meminfo["MemAvailable"].split()[0]) // 1024
        if need > available // 2:
            return (
                f"it starts all {members:,} members at once, about {need:,} MiB, "
                f"over half of the {available:,} MiB this machine has free"
            )
        return None

    def fanout(self, members: int) -> Callable[[], list[float]]:
        """A fan-out of ``members``, each run on a fresh system; seconds."""

        def run() -> list[float]:
            system = self.system(members=members)
            try:
                subprocess.run(
                    [self.python, "-m", "start", str(system.config_file)],
                    cwd=system.dir,
                    check=True,
                )
                stamps = system.dir / "stamps.txt"
                lines = wait_stamp(stamps, "final", 300 + members * 2, f"{system.dir}/nowcast.log")
                if [w for w, _ in lines] != ["start", "final"]:
                    raise RuntimeError(f"the final worker ran more than once: {lines}")
                checklist = yaml.safe_load((system.dir / "checklist.yaml").read_text())
                if not checklist or "done" not in checklist:
                    raise RuntimeError(f"no members in the checklist; see {system.dir}")
                return [lines[1][1] - lines[0][1]]
            finally:
                system.stop()

        return run


def nemo_nowcast_source() -> tuple[Path | None, str]:
    """NEMO_Nowcast's source checkout, from ``NEMO_NOWCAST_SRC``; or None and why not."""
    src = os.environ.get("NEMO_NOWCAST_SRC")
    if not src:
        return None, (
            "NEMO_NOWCAST_SRC is not set (NEMO_Nowcast is not on the package index; "
            "point NEMO_NOWCAST_SRC at a source checkout to include it)"
        )
    path = Path(src).resolve()
    if not (path / "nemo_nowcast" / "manager.py").exists():
        return None, f"NEMO_NOWCAST_SRC={src} holds no nemo_nowcast/manager.py"
    return path, ""


# ---------------------------------------------------------------- the table


def show(name: str, unit: str, figures: dict[str, list[float]], skipped: dict[str, str]) -> None:
    """One workload: each system's median (range, n) and its ratio to nowcast's."""
    base = statistics.median(figures["nowcast"])
    for i, (system, values) in enumerate(figures.items()):
        m, lo, hi = median_spread(values)
        ratio = "" if system == "nowcast" else f"   {m / base:.1f}x nowcast"
        print(
            f"{name if i == 0 else '':<30} {system:<14} {m:10.1f} {unit:<2} "
            f"({lo:.1f}-{hi:.1f}, n={len(values)}){ratio}",
            flush=True,
        )
    for system, why in skipped.items():
        print(f"{'':<30} {system:<14} skipped: {why}", flush=True)


def cpu_model() -> str:
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "CPU model unknown"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument(
        "--quick", action="store_true", help="one run each; no peer's fan-out of 1,000"
    )
    parser.add_argument("--only", nargs="*", default=None, help="chain fanout retry timeout")
    parser.add_argument("--peers", nargs="*", default=["cylc", "nemo"], help="cylc nemo")
    args = parser.parse_args()
    # TERM (a time limit around the run) stops it through the finally blocks
    signal.signal(signal.SIGTERM, lambda signum, frame: sys.exit(128 + signum))
    runs = 1 if args.quick else 3

    def wanted(name: str) -> bool:
        return args.only is None or name in args.only

    print(
        f"nowcast next to its peers: {platform.machine()}, {os.cpu_count()} cores "
        f"({cpu_model()}), Python {platform.python_version()}",
        flush=True,
    )
    nemo = cylc = None
    if "nemo" in args.peers:
        source, why = nemo_nowcast_source()
        if source is not None:
            nemo = Nemo(source)
            why = nemo.install()
        if why:
            print(f"NEMO_Nowcast: skipped: {why}", flush=True)
            nemo = None
        else:
            print(f"NEMO_Nowcast: from {source}, in {NEMO_VENV}", flush=True)
    if "cylc" in args.peers and (args.only is None or args.only):
        cylc = Cylc()
        why = cylc.install()
        if why:
            print(f"Cylc: skipped: {why}", flush=True)
            cylc = None
        else:
            print(f"Cylc {cylc.version}: in {CYLC_VENV}; workflows in {CYLC_FLOWS}", flush=True)
    cylc_name = f"Cylc {cylc.version}" if cylc else ""
    print("medians (min-max, n = samples); the systems take turns, run after run", flush=True)
    STAMPS.mkdir(parents=True, exist_ok=True)

    if wanted("chain"):
        chain = HopChain(HOPS, True)
        nemo_chain = None
        try:
            measures = {"nowcast": chain.run}
            if nemo:
                nemo_chain, measures["NEMO_Nowcast"] = nemo.chain()
            if cylc:
                measures[cylc_name] = cylc.measure("chain", "chain")
            show(f"hop ({HOPS}-step chain)", "ms", interleaved(measures, runs), {})
        finally:
            chain.system.stop()
            if nemo_chain:
                nemo_chain.stop()

    if wanted("fanout"):
        for members in (200, 1000):
            measures = {"nowcast": nowcast_fanout(members)}
            skipped = {}
            if args.quick and members == 1000:
                peers = (("NEMO_Nowcast", nemo), (cylc_name, cylc))
                skipped = {name: "--quick; it takes many minutes" for name, p in peers if p}
            else:
                if nemo:
                    why = nemo.too_big(members)
                    if why:
                        skipped["NEMO_Nowcast"] = why
                    else:
                        measures["NEMO_Nowcast"] = nemo.fanout(members)
                if cylc:
                    measures[cylc_name] = cylc.measure(f"fanout{members}", "fanout", members)
            results = interleaved(measures, runs if members == 200 else 1)
            show(f"fan-out {members:,} to joined", "s", results, skipped)

    for workload, label, nemo_why in (
        ("retry", "retry: failure to next try", "NEMO_Nowcast does not retry"),
        ("timeout", f"time limit ({TIME_LIMIT} s) to kill", "NEMO_Nowcast has no time limits"),
    ):
        if not wanted(workload):
            continue
        member = NowcastMember(workload)
        try:
            measures = {"nowcast": member.run}
            if cylc:
                measures[cylc_name] = cylc.measure(workload, workload)
            figures = interleaved(measures, runs)
            skipped = {"NEMO_Nowcast": nemo_why} if nemo else {}
            show(label, "ms", figures, skipped)
        finally:
            member.system.stop()

    if cylc and cylc.flows:
        print("the Cylc workflows compared:")
        for path in cylc.flows.values():
            print(f"  {path}")


if __name__ == "__main__":
    main()
