"""What keeps the dashboard's pages live: a watch on the history database and the
checklist file, and the manager's status, asked once a second.

When any of them changes, ``version`` goes up and every open page's event
stream (server-sent events) says so; the page then fetches its data again. The
database is watched with ``PRAGMA data_version`` on a read-only connection,
which changes when the manager commits, so a message shows within a poll
(``WEB_POLL``, 0.2 s) of reaching the database.
"""

from __future__ import annotations

import asyncio
import logging
import os
import sqlite3
import time
from typing import Any

from nowcast import defaults
from nowcast.config import Config

logger = logging.getLogger("web")

# Keys of a worker in the manager's status that change at every asking.
_VOLATILE = ("running for", "due in")


def _steady(status: dict | None) -> Any:
    """The status without the parts that change by themselves as time passes."""
    if status is None:
        return None

    def strip(value: Any) -> Any:
        if isinstance(value, dict):
            return {k: strip(v) for k, v in value.items() if k not in _VOLATILE}
        if isinstance(value, list):
            return [strip(v) for v in value]
        return value

    return strip(status)


class Live:
    """The shared state of one dashboard process: the last status, and a version
    number that goes up at every change anyone should see."""

    def __init__(self, config: Config, db_path: str) -> None:
        self.config = config
        self.db_path = db_path
        self.status: dict | None = None
        self.status_time: float | None = None
        self.version = 0
        self._changed = asyncio.Event()
        self._conn: sqlite3.Connection | None = None
        self._data_version: Any = None
        self._checklist_stamp: Any = None
        self._db_inode: int | None = None
        self._stopping = False

    # the watchers (tasks of the server's event loop)

    def bump(self) -> None:
        self.version += 1
        self._changed.set()
        self._changed = asyncio.Event()

    async def wait_change(self, seen: int, timeout: float) -> int:
        """Wait until ``version`` passes ``seen`` (or ``timeout`` s); return it."""
        if self.version == seen and not self._stopping:
            try:
                await asyncio.wait_for(self._changed.wait(), timeout)
            except TimeoutError:
                pass
        return self.version

    def stop(self) -> None:
        self._stopping = True
        self._changed.set()

    @property
    def stopping(self) -> bool:
        return self._stopping

    async def watch_files(self) -> None:
        while not self._stopping:
            try:
                if self._files_changed():
                    self.bump()
            except Exception:
                logger.exception("cannot watch the history database %s", self.db_path)
                self._close()
            await asyncio.sleep(defaults.WEB_POLL)

    def _files_changed(self) -> bool:
        stamp = _stamp(str(self.config.get("checklist file", "")))
        changed = stamp != self._checklist_stamp
        self._checklist_stamp = stamp
        db_stamp = _stamp(self.db_path)
        if self._conn is not None and (db_stamp is None or db_stamp[2] != self._db_inode):
            self._close()  # the database was replaced: read the new one
        if self._conn is None and db_stamp is not None:
            from nowcast import history

            try:
                self._conn = history.open_readonly(self.db_path)
                self._db_inode = db_stamp[2]
            except history.HistoryError as e:
                logger.debug("history database not readable yet: %s", e)
        if self._conn is not None:
            try:
                version = self._conn.execute("PRAGMA data_version").fetchone()[0]
            except sqlite3.Error:
                self._close()
                return True
            changed = changed or version != self._data_version
            self._data_version = version
        return changed

    def _close(self) -> None:
        if self._conn is not None:
            self._conn.close()
            self._conn = None
        self._data_version = None

    async def watch_status(self) -> None:
        from nowcast.errors import MessageError
        from nowcast.status import ask

        while not self._stopping:
            began = time.monotonic()
            try:
                status = await asyncio.to_thread(ask, self.config, defaults.WEB_STATUS_EVERY)
            except MessageError as e:
                logger.warning("unexpected status answer from the manager: %s", e)
                status = None
            except Exception:
                logger.exception("cannot ask the manager for its status")
                status = None
            if status is not None:
                self.status_time = time.time()
            if _steady(status) != _steady(self.status):
                self.status = status
                self.bump()
            else:
                self.status = status
            await asyncio.sleep(max(0.0, defaults.WEB_STATUS_EVERY - (time.monotonic() - began)))

    def close(self) -> None:
        self._close()


def _stamp(path: str) -> Any:
    try:
        st = os.stat(path)
    except OSError:
        return None
    return (st.st_mtime_ns, st.st_size, st.st_ino)
