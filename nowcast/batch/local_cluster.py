"""A single-node SLURM cluster on this machine, in a directory of its own, for
trying the SLURM backend and for the test suite.

It runs Debian's ``munged``, ``slurmctld`` and ``slurmd`` with a generated
``slurm.conf`` (this host as controller and only node, its CPUs and memory, ports
of its own, state, spool and log files in the directory) and a munge key made for
it. Commands find it through ``SLURM_CONF``: ``env(directory)`` gives the
environment to run them with.

Usage::

    python -m nowcast.batch.local_cluster start DIR   # prints: export SLURM_CONF=...
    python -m nowcast.batch.local_cluster stop DIR

The daemons run as the user who starts them (``SlurmUser`` is that user), so a
cluster started as root runs jobs as root. Stopping signals the pids it started,
kept in ``DIR/pids``.
"""

from __future__ import annotations

import argparse
import getpass
import os
import random
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

DAEMONS = ("munged", "slurmctld", "slurmd")
PACKAGES = "slurmctld slurmd slurm-client munge"


class ClusterError(Exception):
    """The local cluster cannot be started; the message says why."""


def missing() -> str | None:
    """Why no local cluster can be started here (a program missing), or None."""
    for program in (*DAEMONS, "mungekey", "sbatch", "squeue", "scancel"):
        if shutil.which(program) is None and not os.path.exists(f"/usr/sbin/{program}"):
            return f"{program} is not installed (Debian packages: {PACKAGES})"
    return None


def _program(name: str) -> str:
    return shutil.which(name) or f"/usr/sbin/{name}"


def _free_port() -> int:
    for _ in range(200):
        port = random.randint(20000, 30000)
        with socket.socket() as s:
            try:
                s.bind(("127.0.0.1", port))
            except OSError:
                continue
            return port
    raise ClusterError("no free port found")


def _machine() -> tuple[int, int]:
    """This machine's CPUs and memory (MiB), as slurmd sees them."""
    out = subprocess.run([_program("slurmd"), "-C"], capture_output=True, text=True).stdout
    fields = dict(f.split("=", 1) for f in out.split() if "=" in f)
    try:
        return int(fields["CPUs"]), int(fields["RealMemory"])
    except (KeyError, ValueError):
        return os.cpu_count() or 1, 1024


def env(directory: str | Path) -> dict[str, str]:
    """The environment that points SLURM commands at the cluster in ``directory``."""
    return {**os.environ, "SLURM_CONF": str(Path(directory) / "slurm.conf")}


def write_config(directory: Path, name: str) -> Path:
    """Write ``slurm.conf`` for a cluster called ``name`` in ``directory``."""
    cpus, memory = _machine()
    user = getpass.getuser()
    host = socket.gethostname()
    node = f"{name}n1"
    for sub in ("state", "spool", "log", "munge"):
        (directory / sub).mkdir(parents=True, exist_ok=True)
    conf = directory / "slurm.conf"
    conf.write_text(
        f"""# a single-node cluster for nowcast, made by nowcast.batch.local_cluster
ClusterName={name}
SlurmctldHost={host}(127.0.0.1)
SlurmctldPort={_free_port()}
SlurmdPort={_free_port()}
SlurmUser={user}
SlurmdUser={user}
AuthType=auth/munge
CredType=cred/munge
AuthInfo=socket={directory / "munge" / "munge.socket"}
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
JobCompType=jobcomp/none
MpiDefault=none
MailProg=/bin/true
SchedulerType=sched/backfill
SchedulerParameters=sched_interval=1
SelectType=select/cons_tres
SelectTypeParameters=CR_Core_Memory
DefMemPerCPU=100
KillWait=3
MinJobAge=300
ReturnToService=2
SlurmctldTimeout=10
SlurmdTimeout=30
StateSaveLocation={directory / "state"}
SlurmdSpoolDir={directory / "spool"}
SlurmctldPidFile={directory / "slurmctld.pid"}
SlurmdPidFile={directory / "slurmd.pid"}
SlurmctldLogFile={directory / "log" / "slurmctld.log"}
SlurmdLogFile={directory / "log" / "slurmd.log"}
NodeName={node} NodeHostname={host} NodeAddr=127.0.0.1 CPUs={cpus} RealMemory={memory} State=UNKNOWN
PartitionName=debug Nodes={node} Default=YES MaxTime=INFINITE State=UP
"""
    )
    return conf


def start(directory: str | Path, timeout: float = 60, tied: bool = False) -> dict[str, str]:
    """Start munged, slurmctld and slurmd for a cluster in ``directory``; return
    once ``sbatch --wrap true`` runs to its end there. Returns the environment
    for SLURM commands. Stops what it started if the cluster does not come up.
    ``tied``: the daemons get SIGTERM when the calling process dies (a test
    session killed before it could stop them)."""
    why = missing()
    if why:
        raise ClusterError(why)
    directory = Path(directory).resolve()
    directory.mkdir(parents=True, exist_ok=True)
    name = "nc" + "".join(random.choice("abcdefghijklmnopqrstuvwxyz") for _ in range(6))
    conf = write_config(directory, name)
    munge = directory / "munge"
    os.chmod(munge, 0o755)
    key = directory / "munge.key"
    subprocess.run(
        [_program("mungekey"), "-c", "-f", "-b", "1024", "-k", str(key)],
        check=True,
        capture_output=True,
    )
    os.chmod(key, 0o600)
    environment = env(directory)
    pids = directory / "pids"
    pids.write_text("")
    log = directory / "log"

    def spawn(args: list[str], out: str) -> None:
        with open(log / out, "ab") as f:
            process = subprocess.Popen(
                args,
                env=environment,
                stdout=f,
                stderr=subprocess.STDOUT,
                start_new_session=True,
                preexec_fn=_die_with_parent if tied else None,
            )
        with open(pids, "a") as f:
            f.write(f"{process.pid}\n")

    try:
        spawn(
            [
                _program("munged"),
                "-F",
                "-f",
                f"--socket={munge / 'munge.socket'}",
                f"--key-file={key}",
                f"--log-file={log / 'munged.log'}",
                f"--pid-file={directory / 'munged.pid'}",
                f"--seed-file={directory / 'munged.seed'}",
            ],
            "munged.out",
        )
        _wait(lambda: (munge / "munge.socket").exists(), timeout, "munged's socket", directory)
        spawn([_program("slurmctld"), "-D", "-i", "-f", str(conf)], "slurmctld.out")
        spawn(
            [_program("slurmd"), "-D", "-f", str(conf), "-N", f"{name}n1"],
            "slurmd.out",
        )
        _wait(lambda: _runs_a_job(environment, directory), timeout, "a first job", directory)
    except BaseException:
        stop(directory)
        raise
    return environment


def _die_with_parent() -> None:
    """In the child, before exec: SIGTERM when the parent dies (Linux's prctl)."""
    import ctypes

    try:
        ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        pass


def _runs_a_job(environment: dict, directory: Path) -> bool:
    """Whether ``sbatch --wrap true`` runs to completion within a few seconds."""
    submitted = subprocess.run(
        ["sbatch", "--parsable", "--wrap", "true", "-o", "/dev/null"],
        env=environment,
        capture_output=True,
        text=True,
        timeout=30,
    )
    if submitted.returncode != 0:
        time.sleep(0.5)
        return False
    job = submitted.stdout.strip().split(";")[0]
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        state = subprocess.run(
            ["squeue", "-h", "--states=all", "-j", job, "-O", "State"],
            env=environment,
            capture_output=True,
            text=True,
            timeout=30,
        ).stdout.strip()
        if state == "COMPLETED":
            return True
        time.sleep(0.2)
    subprocess.run(["scancel", job], env=environment, capture_output=True, timeout=30)
    return False


def _wait(predicate, timeout: float, what: str, directory: Path) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            tail = ""
            for name in ("slurmctld.log", "slurmd.log", "munged.log"):
                path = directory / "log" / name
                if path.exists():
                    lines = path.read_text(errors="replace").splitlines()[-5:]
                    tail += f"\n{name}:\n  " + "\n  ".join(lines)
            raise ClusterError(
                f"local SLURM cluster in {directory}: no {what} in {timeout} s{tail}"
            )
        time.sleep(0.1)


def stop(directory: str | Path, timeout: float = 10) -> None:
    """Stop the daemons started for ``directory`` (by the pids it kept)."""
    pids_file = Path(directory) / "pids"
    try:
        pids = [int(p) for p in pids_file.read_text().split()]
    except (OSError, ValueError):
        return
    for pid in reversed(pids):
        _signal(pid, signal.SIGTERM)
    deadline = time.monotonic() + timeout
    for pid in reversed(pids):
        while _exists(pid) and time.monotonic() < deadline:
            time.sleep(0.05)
        if _exists(pid):
            _signal(pid, signal.SIGKILL)
    pids_file.write_text("")


def _signal(pid: int, signum: int) -> None:
    try:
        os.kill(pid, signum)
    except ProcessLookupError:
        pass


def _exists(pid: int) -> bool:
    try:
        waited, _ = os.waitpid(pid, os.WNOHANG)
        if waited == pid:
            return False
    except ChildProcessError:
        pass
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            return f.read().rsplit(b")", 1)[-1].split()[0] != b"Z"
    except OSError:
        return False


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        prog="python -m nowcast.batch.local_cluster", description=__doc__.split("\n\n")[0]
    )
    parser.add_argument("action", choices=["start", "stop"])
    parser.add_argument("directory")
    args = parser.parse_args(argv)
    if args.action == "stop":
        stop(args.directory)
        return
    try:
        environment = start(args.directory)
    except ClusterError as e:
        print(f"cannot start a local SLURM cluster: {e}", file=sys.stderr)
        sys.exit(1)
    print(f"export SLURM_CONF={environment['SLURM_CONF']}")


if __name__ == "__main__":
    main()
