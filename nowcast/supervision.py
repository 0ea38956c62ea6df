"""The table of workers the manager launched, and what it watches them for.

Each launched worker is remembered with its name, args, host, pid and start time,
and saved with the manager's state, so a restarted manager goes on watching the
workers its predecessor launched (by pid, as they are no longer its children).
A worker that exits without having reported is handled as a crash; one that runs
past its registry ``timeout`` is sent SIGTERM, then SIGKILL after a grace period.
"""

from __future__ import annotations

import os
import signal
import time
from typing import Any

import attrs

from nowcast import defaults
from nowcast.next_worker import NextWorker


def worker_name(module: str) -> str:
    """The registry name of a worker module: ``workers.get_forcing`` -> ``get_forcing``."""
    return module.rsplit(".", 1)[-1]


def is_failure(msg_type: str) -> bool:
    """Whether a message type reports failure or crash (retries apply to these)."""
    return msg_type == "crash" or msg_type.startswith("failure")


@attrs.define
class Launched:
    """One worker process the manager started."""

    module: str
    args: list[str]
    host: str
    pid: int | None  # None for a batch job (see ``job``)
    started: float  # time.time() at launch
    tries: int = 1  # 1 for the first run, 2 for the first retry, ...
    timeout: float | None = None
    grace: float = defaults.TIMEOUT_GRACE
    proc_start: str | None = None  # the kernel's start time of pid, against pid reuse
    term_sent: float | None = None
    kill_sent: float | None = None
    reported: bool = False
    stderr_path: str | None = None  # ssh's standard error, for a worker on another host
    exit_code: int | None = None
    exited: bool = False
    job: dict | None = None  # a batch job's id, state, node, ... (nowcast.batch.jobs)
    queue_timeout: float | None = None  # a batch job's longest wait in the queue
    end_note: str | None = None  # how it ended, when nowcast.batch.jobs saw it end
    end_payload: dict | None = None  # the crash message's payload, when it did not report
    token: str | None = None  # the launch token the worker got in its environment
    process: Any = attrs.field(default=None, eq=False, repr=False)

    @property
    def name(self) -> str:
        return worker_name(self.module)

    @property
    def job_id(self) -> str | None:
        """A batch job's id (None for a process, or before the batch system gave one)."""
        return self.job.get("id") if self.job is not None else None

    def label(self) -> str:
        """Which worker this is, for log lines."""
        if self.job is not None:
            return f"{self.name} (job {self.job['id']}, args {self.args}, host {self.host})"
        return f"{self.name} (pid {self.pid}, args {self.args}, host {self.host})"

    def job_view(self, now: float) -> dict:
        """A batch job as ``nowcast status`` shows it: id, state, node, time in the queue."""
        job = self.job or {}
        running_since = job.get("running since")
        return {
            "id": job.get("id"),
            "state": job.get("state"),
            "node": job.get("node"),
            "reason": job.get("reason"),
            "in queue": (running_since or now) - job.get("queued since", now),
            "running for": now - running_since if running_since else None,
            "script": job.get("script"),
            "output": job.get("output"),
        }

    def next_worker(self) -> NextWorker:
        return NextWorker(self.module, list(self.args), self.host)

    def to_plain(self) -> dict:
        data = attrs.asdict(self, filter=lambda a, v: a.name != "process")
        return data

    @classmethod
    def from_plain(cls, data: dict) -> Launched:
        fields = {a.name for a in attrs.fields(cls)} - {"process"}
        return cls(**{k: v for k, v in data.items() if k in fields})


@attrs.define
class Retry:
    """A worker to launch again at ``due`` (time.time())."""

    worker: dict  # module, args, host
    tries: int
    due: float


class Supervision:
    """The launched workers still running (or exited but not yet handled)."""

    def __init__(self) -> None:
        self.running: list[Launched] = []
        self.retries: list[Retry] = []
        # process groups of timed-out workers whose leader exited on SIGTERM while
        # others in the group may not have: [pgid, when to send them SIGKILL]
        self.stopping: list[list] = []

    def add(
        self,
        worker: NextWorker,
        process: Any,
        entry: dict,
        tries: int = 1,
        token: str | None = None,
        started: float | None = None,
    ) -> Launched:
        timeout = entry.get("timeout") if isinstance(entry, dict) else None
        grace = (
            entry.get("timeout grace", defaults.TIMEOUT_GRACE)
            if isinstance(entry, dict)
            else defaults.TIMEOUT_GRACE
        )
        launched = Launched(
            worker.module,
            [str(a) for a in worker.args],
            worker.host,
            process.pid,
            time.time() if started is None else started,
            tries,
            timeout,
            grace,
            getattr(process, "proc_start", None) or proc_start(process.pid),
            stderr_path=getattr(process, "stderr_path", None),
            token=token,
            process=None if getattr(process, "adopted", False) else process,
        )
        self.running.append(launched)
        return launched

    def claim(self, source: str, msg_id: str | None) -> Launched | None:
        """The launched worker a final message from ``source`` came from, marked
        as reported, or None when it came from no worker the manager launched
        (one run by hand, say).

        A nowcast worker's message id carries the launch token the manager gave
        it in its environment; that token names the launched worker. A message
        without an id (a NEMO_Nowcast worker's) can only be matched by name: the
        oldest of that name that has not reported.
        """
        candidates = [w for w in self.running if w.name == source and not w.reported]
        if msg_id is None:
            chosen = candidates[0] if candidates else None
        else:
            token = token_from_id(msg_id)
            chosen = next((w for w in candidates if w.token and w.token == token), None)
            if chosen is None:  # a batch job, or a record of an earlier version: by name
                chosen = next((w for w in candidates if w.token is None), None)
        if chosen is not None:
            chosen.reported = True
        return chosen

    def poll_exits(self) -> list[Launched]:
        """Note which workers have exited; return them (reported or not)."""
        gone = []
        for launched in self.running:
            if launched.exited:
                gone.append(launched)
                continue
            if launched.job is not None:
                continue  # a batch job: nowcast.batch.jobs marks it exited
            if launched.process is not None:
                code = launched.process.poll()
                if code is not None:
                    launched.exit_code = code
                elif getattr(launched.process, "lost", False):
                    launched.process = None  # its fork server died: watched by pid from now on
                else:
                    continue
            if launched.process is None and _alive(launched.pid, launched.proc_start):
                continue
            launched.exited = True
            gone.append(launched)
        return gone

    def remove(self, launched: Launched) -> None:
        """Forget a worker that exited. If it was sent SIGTERM for its timeout and
        not yet SIGKILL, what else runs in its process group is still sent
        SIGKILL when the grace period ends (``groups_to_kill``)."""
        self.running.remove(launched)
        if (
            launched.term_sent is not None
            and launched.kill_sent is None
            and launched.host in ("localhost", "", None)
            and _group_alive(launched.pid)
        ):
            self.stopping.append([launched.pid, launched.term_sent + launched.grace])

    def groups_to_kill(self, now: float) -> list[int]:
        """Process groups of stopped workers whose grace period is over and which
        still have processes; forgets groups that are empty."""
        due, kept = [], []
        for pgid, kill_at in self.stopping:
            if now >= kill_at:
                due.append(pgid)
            else:
                kept.append([pgid, kill_at])
        self.stopping = [entry for entry in kept if _group_alive(entry[0])]
        return [pgid for pgid in due if _group_alive(pgid)]

    def overdue(self, now: float) -> list[tuple[Launched, int]]:
        """Signals to send now: SIGTERM past the timeout, SIGKILL past the grace."""
        due = []
        for launched in self.running:
            if launched.exited or launched.timeout is None or launched.job is not None:
                continue
            if launched.term_sent is None and now - launched.started >= launched.timeout:
                launched.term_sent = now
                due.append((launched, signal.SIGTERM))
            elif (
                launched.term_sent is not None
                and launched.kill_sent is None
                and now - launched.term_sent >= launched.grace
            ):
                launched.kill_sent = now
                due.append((launched, signal.SIGKILL))
        return due

    def next_deadline(self) -> float | None:
        """When the next timeout, grace period or retry falls due (``time.time()``
        seconds), or None when nothing waits: the manager wakes for it rather than
        at its next idle poll."""
        times = [r.due for r in self.retries]
        times += [kill_at for _, kill_at in self.stopping]
        for launched in self.running:
            if launched.exited or launched.timeout is None or launched.job is not None:
                continue
            if launched.term_sent is None:
                times.append(launched.started + launched.timeout)
            elif launched.kill_sent is None:
                times.append(launched.term_sent + launched.grace)
        return min(times) if times else None

    def due_retries(self, now: float) -> list[Retry]:
        due = [r for r in self.retries if r.due <= now]
        for retry in due:
            self.retries.remove(retry)
        return due

    def to_plain(self) -> dict:
        return {
            "running": [w.to_plain() for w in self.running],
            "retries": [attrs.asdict(r) for r in self.retries],
            "stopping": self.stopping,
        }

    @classmethod
    def from_plain(cls, data: dict) -> Supervision:
        table = cls()
        table.running = [Launched.from_plain(w) for w in data.get("running", [])]
        table.retries = [Retry(**r) for r in data.get("retries", [])]
        table.stopping = [[int(pgid), float(kill_at)] for pgid, kill_at in data.get("stopping", [])]
        return table


def signal_worker(launched: Launched, signum: int) -> None:
    """Signal a local worker's whole process group (it runs in a session of its
    own), so what it started stops too; for an ssh worker, its ssh process."""
    try:
        if launched.host in ("localhost", "", None):
            os.killpg(launched.pid, signum)
        else:
            os.kill(launched.pid, signum)
    except ProcessLookupError:
        pass
    except PermissionError:
        os.kill(launched.pid, signum)


def kill_group(pgid: int) -> None:
    """Send SIGKILL to every process of the process group ``pgid``."""
    try:
        os.killpg(pgid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass


def _group_alive(pgid: int) -> bool:
    """Whether the process group ``pgid`` has a process that is not a zombie."""
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:
        entries = os.listdir("/proc")
    except OSError:
        return True
    for entry in entries:
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat", "rb") as f:
                fields = f.read().rsplit(b")", 1)[-1].split()
        except OSError:
            continue
        if int(fields[2]) == pgid and fields[0] != b"Z":
            return True
    return False


def describe_exit(code: int | None) -> str:
    if code is None:
        return (
            "exited (exit code unknown: it was launched by an earlier manager, "
            "or by a fork server that died)"
        )
    if code < 0:
        try:
            name = signal.Signals(-code).name
        except ValueError:
            name = f"signal {-code}"
        return f"was killed by {name}"
    return f"exited with code {code}"


def token_from_id(msg_id: str | None) -> str | None:
    """The launch token in a nowcast worker's message id
    (``name:pid:token:count``), or None."""
    if not msg_id:
        return None
    parts = msg_id.split(":")
    return parts[-2] if len(parts) >= 4 else None


def proc_start(pid: int) -> str | None:
    """The start time of ``pid`` from /proc, where there is one."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            stat = f.read()
    except OSError:
        return None
    # fields after the command name, which is in parentheses and may hold spaces
    return stat.rsplit(b")", 1)[-1].split()[19].decode()


def _alive(pid: int, started: str | None) -> bool:
    """Whether ``pid`` still runs and is the same process (not a reused pid)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    if started is not None and proc_start(pid) not in (None, started):
        return False
    try:  # a zombie whose parent is gone has exited
        with open(f"/proc/{pid}/stat", "rb") as f:
            state = f.read().rsplit(b")", 1)[-1].split()[0]
        return state != b"Z"
    except OSError:
        return True
