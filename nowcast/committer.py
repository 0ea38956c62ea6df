"""Durable writes on a thread of their own, so the manager applies the next
messages while the last ones' files are flushed to disk (group commit).

The manager hands over a ``Commit``: bytes already made, to be written in order.
Writing them is system calls that release the GIL (write, fdatasync, rename,
fsync), so on a machine with two cores the manager's Python and the disk work
overlap. The manager learns that a commit is done through a pipe it polls with
its socket, and only then sends the replies that commit makes true.
"""

from __future__ import annotations

import os
import queue
import threading
from typing import Any

from nowcast.fileutils import append_durably, append_synced, fsync_dir, write_temporaries


class Commit:
    """Files to write, in this order: the replaced ones (each atomically), one
    sync of their directory, the history's rows (one transaction), then the
    appended ones.

    Appends come last so that a journal line never reaches the disk before the
    data it vouches for: a message id in the reply journal means its effects are
    already in the checklist and the state file. The history comes after the
    replaced files, so what it records (the replies it keeps among it) is in the
    checklist and the state file too; a state file renamed before a crash kept
    the history from being written carries that history's rows
    (``nowcast.state``).
    """

    __slots__ = ("replace", "append", "directory", "history")

    def __init__(self, directory: str) -> None:
        self.directory = directory
        self.replace: list[tuple[str, bytes]] = []
        self.append: list[tuple[str, bytes]] = []
        # rows to commit, as nowcast.recorder.Rows: prepare(), then finish() or abort()
        self.history: Any = None

    def __bool__(self) -> bool:
        return bool(self.replace or self.append or self.history)

    def write(self, files: OpenFiles | None = None) -> None:
        """Put every file on disk; raises ``OSError`` (the files then hold either
        their old content or the new, and appends are cut back). ``files``: the
        descriptors the committer keeps open between commits.

        The replaced files are all written and flushed first, then renamed one
        after the other, so they change together as nearly as can be.

        The history's rows are made first (its transaction begun, ``prepare``),
        on this thread, and the transaction is committed at its place in the
        order, after the renames are synced: nothing of the history reaches the
        disk before the files it must follow. (Making them on a thread of their
        own while the files were flushed cost more in hand-offs between threads
        than it saved.)
        """
        history = self.history
        if history:
            history.prepare()  # its OSError: the commit failed (rolled back)
        try:
            self._replace(files)
        except BaseException:
            if history:
                history.abort()
            raise
        if history:
            history.finish()
        for path, data in self.append:
            if files is not None:
                files.append(path, data)
            else:
                append_durably(path, data)

    def _replace(self, files: OpenFiles | None) -> None:
        """Write, flush and rename the replaced files, then sync their directory."""
        temporaries = write_temporaries(self.replace)  # (none left when it raises)
        written = list(zip(temporaries, [path for path, _ in self.replace], strict=True))
        for tmp, path in written:
            os.replace(tmp, path)
            if files is not None:
                files.forget(path)  # another file now: opened afresh for its next append
        if written:
            if files is not None:
                files.sync_directory(self.directory)
            else:
                fsync_dir(self.directory)


class OpenFiles:
    """The directory and the appended files (the reply journal) of the commits,
    kept open between them by the committer's thread, so that a commit does not
    open and close each again. A file a commit replaced is opened afresh."""

    def __init__(self) -> None:
        self._fds: dict[tuple[str, bool], int] = {}

    def _fd(self, path: str, directory: bool) -> int:
        fd = self._fds.get((path, directory))
        if fd is None:
            flags = os.O_RDONLY if directory else os.O_WRONLY | os.O_CREAT | os.O_APPEND
            fd = self._fds[(path, directory)] = os.open(path, flags, 0o644)
        return fd

    def sync_directory(self, directory: str) -> None:
        try:
            os.fsync(self._fd(directory, True))
        except OSError:
            self.forget(directory, True)
            raise

    def append(self, path: str, data: bytes) -> None:
        """As ``append_durably``: on failure the file is cut back to its old length."""
        fd = self._fd(path, False)
        try:
            append_synced(fd, data)
        except OSError:
            self.forget(path)
            raise

    def forget(self, path: str, directory: bool = False) -> None:
        fd = self._fds.pop((path, directory), None)
        if fd is not None:
            os.close(fd)

    def close(self) -> None:
        for path, directory in list(self._fds):
            self.forget(path, directory)


class Committer:
    """One thread that writes commits, one at a time; ``fileno()`` becomes
    readable when the one handed over is done.

    ``checkpoints``: the history database's (``nowcast.history.Checkpoints``),
    made on this thread between commits, after the done signal of the commit
    that makes one due (its replies wait for no checkpoint), when no commit
    came for a while, and at the close (the last, which cuts the log)."""

    def __init__(self, checkpoints: Any = None) -> None:
        self._checkpoints = checkpoints
        self._jobs: queue.SimpleQueue = queue.SimpleQueue()
        self._done_r, self._done_w = os.pipe()
        os.set_blocking(self._done_r, False)
        self._error: Exception | None = None
        self.busy = False
        self._files = OpenFiles()  # used by the thread only
        self._thread = threading.Thread(target=self._run, name="committer", daemon=True)
        self._thread.start()

    def fileno(self) -> int:
        return self._done_r

    def submit(self, commit: Commit) -> None:
        """Start writing ``commit``; one at a time."""
        if self.busy:
            raise RuntimeError("a commit is already being written")
        self.busy = True
        self._jobs.put(commit)

    def finish(self) -> bool:
        """Collect the commit that is done, if it is; raises what writing it
        raised (an ``OSError``, mostly), if anything."""
        try:
            os.read(self._done_r, 1)
        except BlockingIOError:
            return False
        self.busy = False
        error, self._error = self._error, None
        if error is not None:
            raise error
        return True

    def wait(self) -> bool:
        """Block until the commit being written is done, then ``finish`` it."""
        if not self.busy:
            return False
        os.set_blocking(self._done_r, True)
        try:
            return self.finish()
        finally:
            os.set_blocking(self._done_r, False)

    def close(self) -> None:
        """Stop the thread after the commit being written, if any."""
        self._jobs.put(None)
        self._thread.join()
        os.close(self._done_r)
        os.close(self._done_w)

    def _run(self) -> None:
        checkpoints = self._checkpoints
        while True:
            try:
                commit = self._jobs.get(timeout=checkpoints.wait() if checkpoints else None)
            except queue.Empty:  # no commit for a while
                checkpoints.checkpoint()
                continue
            if commit is None:
                if checkpoints is not None:
                    checkpoints.last()  # no log left while the manager is stopped
                self._files.close()
                return
            try:
                commit.write(self._files)
                wrote_rows = checkpoints is not None and bool(commit.history)
            except Exception as e:  # any failure is reported, and the thread lives on
                self._error = e
                wrote_rows = False
            os.write(self._done_w, b".")
            # the replies are on their way: the next commit waits for this, if it comes
            if wrote_rows and checkpoints.committed():
                checkpoints.checkpoint()
