"""Finding out, after a crash, whether a decided launch happened: launch at most once.

A launch is decided and written to disk (a pending launch, with a token of its
own) before it is made; the record of the launched worker reaches the state file
with the next commit. A manager killed between the two would launch the worker a
second time at its restart. Two things close that gap:

- the token is in the worker's environment (``NOWCAST_LAUNCH``), so a worker
  started cold, or ssh for a worker on another host, can be found by it in
  ``/proc/<pid>/environ``;
- right after each launch, the manager appends ``token pid`` to the launch
  journal, ``<checklist file>.manager-launches``; a worker started through the
  fork server (whose token is not in ``/proc``) runs only once its line is
  there, as the fork server waits for the manager's word. It is not flushed to
  disk: a manager killed with ``kill -9`` leaves what it wrote to the kernel, and
  a machine that stops takes the workers with it. It is emptied once a commit
  holds the launches it lists.

At start, a pending launch found either way is watched as a launched worker (one
that has exited without reporting is then handled as a crash), not launched again.
"""

from __future__ import annotations

import json
import logging
import os

logger = logging.getLogger(__name__)


def journal_path(checklist_file: str) -> str:
    """The launch journal that goes with ``checklist_file``."""
    return f"{checklist_file}.manager-launches"


class Adopted:
    """A worker found running (or found to have run) at start, watched by pid."""

    adopted = True

    def __init__(self, pid: int, proc_start: str | None = None) -> None:
        self.pid = pid
        self.proc_start = proc_start


class LaunchJournal:
    """The launches made since the last commit that holds them: token, pid,
    start time, one JSON line each."""

    def __init__(self, path: str) -> None:
        self.path = path
        self.written = 0  # bytes written since it was last emptied
        self._fd: int | None = None

    def read(self) -> dict[str, dict]:
        """The launches recorded: token -> {"pid", "proc start", "started"}.
        A line cut short is ignored."""
        try:
            with open(self.path, "rb") as f:
                lines = f.read().splitlines()
        except FileNotFoundError:
            return {}
        found = {}
        for line in lines:
            try:
                record = json.loads(line)
                found[str(record["token"])] = record
            except (ValueError, TypeError, KeyError):
                continue
        return found

    def record(self, token: str, pid: int, proc_start: str | None, started: float) -> None:
        """Note a launch just made (appended, not flushed: see the module's doc)."""
        self.record_many([(token, pid, proc_start, started)])

    def record_many(self, launches: list[tuple[str, int, str | None, float]]) -> None:
        """Note the launches ``(token, pid, proc start, started)`` just made, in one
        append (not flushed: see the module's doc)."""
        if not launches:
            return
        data = b"".join(
            json.dumps(
                {"token": token, "pid": pid, "proc start": proc_start, "started": started}
            ).encode()
            + b"\n"
            for token, pid, proc_start, started in launches
        )
        try:
            if self._fd is None:
                self._fd = os.open(
                    self.path, os.O_WRONLY | os.O_CREAT | os.O_APPEND | os.O_CLOEXEC, 0o644
                )
            os.write(self._fd, data)
            self.written += len(data)
        except OSError as e:
            pids = ", ".join(str(pid) for _, pid, _, _ in launches)
            logger.warning("cannot note the launch of pid(s) %s in %s: %s", pids, self.path, e)

    def empty(self) -> None:
        """Forget the launches listed: a commit now holds them."""
        try:
            if self._fd is not None:
                os.ftruncate(self._fd, 0)
            elif os.path.exists(self.path):
                os.truncate(self.path, 0)
        except OSError as e:
            logger.warning("cannot empty %s: %s", self.path, e)
        self.written = 0

    def close(self) -> None:
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None


def find_by_token(tokens: set[str]) -> dict[str, int]:
    """The processes of this machine whose environment holds one of ``tokens``
    as ``NOWCAST_LAUNCH``: token -> pid."""
    from nowcast import defaults

    if not tokens:
        return {}
    wanted = {f"{defaults.LAUNCH_TOKEN_ENV}={t}".encode(): t for t in tokens}
    found: dict[str, int] = {}
    try:
        pids = [int(p) for p in os.listdir("/proc") if p.isdigit()]
    except OSError:
        return {}
    for pid in pids:
        try:
            with open(f"/proc/{pid}/environ", "rb") as f:
                variables = f.read().split(b"\0")
        except OSError:
            continue
        for variable in variables:
            token = wanted.get(variable)
            if token is not None:
                found.setdefault(token, pid)
    return found
