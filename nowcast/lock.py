"""The manager's lock: one manager per checklist.

A second manager on the same checklist would take half the messages and
acknowledge them into its own memory. So the manager holds an exclusive
``flock`` on ``<checklist file>.manager-lock`` for as long as it runs, with its
pid written in the file for the one that is refused. The kernel lets the lock go
when the process ends, however it ends (kill -9 included), so a stale lock file
never stops a start.
"""

from __future__ import annotations

import fcntl
import os

from nowcast.errors import AlreadyRunningError, ConfigError


def lock_path(checklist_file: str) -> str:
    """The lock file that goes with ``checklist_file``."""
    return f"{checklist_file}.manager-lock"


class ManagerLock:
    """An exclusive lock on a file, held until ``release`` or the process's end."""

    def __init__(self, path: str) -> None:
        self.path = path
        self._fd: int | None = None

    def acquire(self) -> None:
        """Take the lock and write this process's pid in the file.

        :raises AlreadyRunningError: another process holds it; names its pid.
        """
        try:
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
        except OSError as e:
            raise ConfigError(
                f"cannot open the manager's lock file {self.path}: {e.strerror} (it goes "
                "beside the 'checklist file'; is its directory there, and writable?)"
            ) from None
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = _read_pid(fd)
            os.close(fd)
            raise AlreadyRunningError(
                f"another manager (pid {holder or 'unknown'}) is running on this checklist: "
                f"it holds {self.path}; stop it first"
            ) from None
        except OSError:
            os.close(fd)
            raise
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
        self._fd = fd

    def release(self) -> None:
        if self._fd is not None:
            os.close(self._fd)  # closing the last descriptor lets the lock go
            self._fd = None


def _read_pid(fd: int) -> str:
    try:
        text = os.pread(fd, 32, 0).decode("ascii", "replace").strip()
    except OSError:
        return ""
    return text if text.isdigit() else ""
