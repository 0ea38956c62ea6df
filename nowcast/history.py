"""The run history: every run of a worker and every message, in a SQLite database
beside the checklist.

The manager writes it in the same commit as the checklist and its state (see
``nowcast.recorder``); everyone else (``nowcast history``, the web dashboard)
opens it read-only. The database is in WAL mode, so readers never block the
manager and the manager never blocks them.

Times are Unix times in seconds (UTC, fractions allowed); ``day`` is the date
of the cycle a run belongs to, ``YYYY-MM-DD`` in the scheduler's time zone.

Usage: ``python -m nowcast.history config.yaml [WORKER] [--days N] [--json]``
"""

from __future__ import annotations

import json
import logging
import os
import sqlite3
import statistics
import time
from collections.abc import Iterable
from typing import Any

from nowcast import defaults
from nowcast.errors import ConfigError, NowcastError

logger = logging.getLogger(__name__)

# The schema, one list of statements per version; a database at version N is
# brought to the newest by running the lists after N in order, in one transaction.
MIGRATIONS: list[list[str]] = [
    # version 1: runs and messages
    [
        """CREATE TABLE runs (
            id TEXT PRIMARY KEY,
            worker TEXT NOT NULL,
            module TEXT NOT NULL,
            args TEXT NOT NULL DEFAULT '[]',
            host TEXT NOT NULL DEFAULT 'localhost',
            launched_by TEXT NOT NULL,
            parent TEXT,
            launched REAL,
            started REAL,
            ended REAL,
            outcome TEXT,
            exit_code INTEGER,
            signal INTEGER,
            try INTEGER NOT NULL DEFAULT 1,
            pid INTEGER,
            job_id TEXT,
            cycle TEXT,
            day TEXT
        )""",
        "CREATE INDEX runs_by_worker ON runs (worker, started)",
        "CREATE INDEX runs_by_day ON runs (day)",
        "CREATE INDEX runs_by_start ON runs (started)",
        """CREATE TABLE messages (
            seq INTEGER PRIMARY KEY,
            id TEXT UNIQUE,
            time REAL NOT NULL,
            source TEXT NOT NULL,
            type TEXT NOT NULL,
            payload TEXT,
            reply TEXT,
            run TEXT
        )""",
        "CREATE INDEX messages_by_time ON messages (time)",
        "CREATE INDEX messages_by_run ON messages (run)",
    ],
    # version 2: events and what their actions did
    [
        """CREATE TABLE events (
            seq INTEGER PRIMARY KEY,
            time REAL NOT NULL,
            event TEXT NOT NULL,
            worker TEXT,
            run TEXT,
            detail TEXT
        )""",
        "CREATE INDEX events_by_time ON events (time)",
        """CREATE TABLE notifications (
            seq INTEGER PRIMARY KEY,
            time REAL NOT NULL,
            action TEXT NOT NULL,
            target TEXT NOT NULL,
            outcome TEXT NOT NULL,
            events INTEGER NOT NULL DEFAULT 1,
            event TEXT,
            worker TEXT,
            detail TEXT
        )""",
        "CREATE INDEX notifications_by_time ON notifications (time)",
    ],
    # version 3: the reply each message got, as sent (the manager's memory of
    # applied message ids, so a re-sent message is answered, not applied again)
    [
        "ALTER TABLE messages ADD COLUMN answer TEXT",
        # the number of the last commit whose rows the manager's state file also
        # carried ("history commit"): a state file with a higher one was renamed
        # into place and its commit's transaction never made, so its rows are
        # written again at the next start
        "CREATE TABLE meta (key TEXT PRIMARY KEY, value)",
    ],
    # version 4: two index entries fewer for each run the manager writes (its
    # commits write a fifth less): a worker's runs and a day's are found through
    # runs_by_start, as every query of them is bounded in time (runs_for_day)
    [
        "DROP INDEX IF EXISTS runs_by_worker",
        "DROP INDEX IF EXISTS runs_by_day",
    ],
    # version 5: an index entry fewer for each message: a run's messages are
    # found through messages_by_time, between its start and its end
    # (messages_of_run)
    ["DROP INDEX IF EXISTS messages_by_run"],
    # version 6: the meta table for a database made at version 3 before that
    # version made it (its first form added the answer column only)
    ["CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value)"],
]

VERSION = len(MIGRATIONS)

# Run outcomes that are not message types: set by the manager, not by the worker.
CRASHED = "crash"  # exited without reporting
TIMED_OUT = "timeout"  # ran past its registry timeout and was stopped
LOST = "lost"  # its end could not be seen (launched before a manager restart that lost it)


class HistoryError(NowcastError):
    """The history database cannot be opened or is of a newer schema."""


def history_path(config: Any) -> str:
    """The database of the system ``config`` describes: ``history: file``, or
    ``<checklist file>.history.sqlite`` beside the checklist."""
    section = config.get("history") or {}
    if isinstance(section, dict) and section.get("file"):
        return str(section["file"])
    checklist = config.get("checklist file")
    if not isinstance(checklist, str) or not checklist:
        raise ConfigError(
            f"{config.file}: key 'checklist file' must be a path (the history database "
            f"goes beside it), got {checklist!r}"
        )
    return f"{checklist}.history.sqlite"


# opening


def open_for_writing(path: str) -> sqlite3.Connection:
    """Open (creating, or migrating to the newest schema) the database at ``path``
    for the one process that writes it."""
    conn = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
    try:
        conn.execute("PRAGMA journal_mode=WAL")
        # FULL: each transaction is flushed to disk before it returns. The manager's
        # commit writes the history after the checklist and before the reply journal
        # (nowcast.committer), whose ids vouch that their effects are on disk, in
        # the history too; with NORMAL a power cut could lose history rows whose ids
        # the flushed journal holds (docs/history.md, "Durability and cost")
        conn.execute("PRAGMA synchronous=FULL")
        conn.execute(f"PRAGMA busy_timeout={int(defaults.HISTORY_BUSY_TIMEOUT * 1000)}")
        migrate(conn, path)
    except sqlite3.DatabaseError as e:
        conn.close()
        raise HistoryError(f"{path}: cannot open the history database: {e}") from None
    return conn


class Checkpoints:
    """The checkpoints of the manager's connection (the pages of SQLite's log
    moved into the database file), made by the committer's thread off the
    commits' path (``nowcast.committer``).

    Left to itself, SQLite checkpoints inside the commit that takes its log past
    1,000 pages, and that commit's replies wait for it (2 to 6 ms, a commit in
    50 of a burst). Here the committer's thread makes one after every
    ``every`` commits that wrote rows, once their replies are on their way, and
    after ``idle`` seconds without a commit. SQLite's own is kept as a bound,
    for a log past ``max_pages`` pages: commits larger than these checkpoints
    keep up with. A checkpoint decides nothing of durability: each commit's
    transaction is flushed to the log before its replies go, and readers read
    the log as part of the database until it is checkpointed.
    """

    def __init__(
        self,
        conn: sqlite3.Connection,
        every: int = defaults.HISTORY_CHECKPOINT_COMMITS,
        idle: float = defaults.HISTORY_CHECKPOINT_IDLE,
        max_pages: int = defaults.HISTORY_LOG_MAX_PAGES,
    ) -> None:
        conn.execute(f"PRAGMA wal_autocheckpoint={int(max_pages)}")
        self.conn = conn
        self.every = every
        self.idle = idle
        self.commits = 0  # commits that wrote rows since the last checkpoint
        self.made = 0  # checkpoints made

    def committed(self) -> bool:
        """A commit wrote rows to the log; return whether a checkpoint is due."""
        self.commits += 1
        return self.commits >= self.every

    def wait(self) -> float | None:
        """Seconds without a commit after which a checkpoint is due; None when
        the log holds nothing since the last one."""
        return self.idle if self.commits else None

    def checkpoint(self) -> None:
        """Move what the log holds into the database file, as far as readers
        let it (PASSIVE: it waits for no one, and no one waits for it but the
        next commit, if one comes meanwhile)."""
        self.commits = 0
        self.made += 1
        try:
            self.conn.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchall()
        except sqlite3.Error as e:  # readers read the log as it is; the next one tries again
            logger.warning("cannot checkpoint the history database's log: %s", e)

    def last(self) -> None:
        """At the manager's stop: move all of the log into the database file
        and cut the log to nothing, so that it takes no room while a reader
        (the dashboard) keeps the database open; SQLite removes it anyway
        when no connection is left. A reader in the middle of a read is
        waited for a moment at most; then the log stays as it is."""
        self.made += 1
        self.commits = 0
        try:
            self.conn.execute(
                f"PRAGMA busy_timeout={int(defaults.HISTORY_LAST_CHECKPOINT_WAIT * 1000)}"
            )
            self.conn.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchall()
        except sqlite3.Error as e:
            logger.warning("cannot checkpoint the history database's log: %s", e)


def preallocate_log(conn: sqlite3.Connection, size: int) -> None:
    """Extend the database's log (its ``-wal`` file, which ``conn`` opened) with
    zeros to ``size`` bytes, flushed, unless it is that long already.

    A commit that appends to the log past its end makes the file longer, and
    its flush writes the file's new size too: about 150 us more a commit than
    one that overwrites blocks already there (measured on a 2-core virtual
    machine). The log is written from its start again after each checkpoint,
    so this spares the commits until the log has first reached its usual
    length, which after each start (SQLite removes the log when the last
    connection closes) are a burst's. SQLite reads the log's frames up to the
    first that is not valid (checked by the salts of its header and by
    checksums): zeros are none. The write lock is held meanwhile, so no other
    connection writes to the log at the same time."""
    path = conn.execute("PRAGMA database_list").fetchone()[2] + "-wal"
    try:
        conn.execute("BEGIN IMMEDIATE")
        try:
            _extend(path, size)
        finally:
            conn.execute("COMMIT")
    except (OSError, sqlite3.Error) as e:  # the log grows as it would have
        logger.warning("cannot extend the history database's log %s: %s", path, e)


def _extend(path: str, size: int) -> None:
    """Zeros from the end of the existing file ``path`` to ``size`` bytes, flushed."""
    fd = os.open(path, os.O_WRONLY)
    try:
        end = os.fstat(fd).st_size
        if end >= size:
            return
        zeros = bytes(1 << 20)
        for offset in range(end, size, len(zeros)):
            os.pwrite(fd, zeros[: size - offset], offset)
        os.fsync(fd)
    finally:
        os.close(fd)


def migrate(conn: sqlite3.Connection, path: str = "history database") -> int:
    """Bring the schema to ``VERSION``; return the version found."""
    found = conn.execute("PRAGMA user_version").fetchone()[0]
    if found > VERSION:
        raise HistoryError(
            f"{path}: schema version {found} is newer than this nowcast knows ({VERSION}); "
            f"upgrade nowcast"
        )
    if found == VERSION:
        return found
    conn.execute("BEGIN IMMEDIATE")
    try:
        for statements in MIGRATIONS[found:]:
            for statement in statements:
                conn.execute(statement)
        conn.execute(f"PRAGMA user_version={VERSION}")
        conn.execute("COMMIT")
    except BaseException:
        conn.execute("ROLLBACK")
        raise
    return found


def open_readonly(path: str) -> sqlite3.Connection:
    """Open the database for reading (``nowcast history``, the dashboard): it
    never blocks the manager's writes. Rows come as ``sqlite3.Row``."""
    if not os.path.exists(path):
        raise HistoryError(f"{path}: no history database (the manager has not run yet?)")
    try:
        conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True, check_same_thread=False)
        conn.row_factory = sqlite3.Row
        conn.execute(f"PRAGMA busy_timeout={int(defaults.HISTORY_BUSY_TIMEOUT * 1000)}")
        version = conn.execute("PRAGMA user_version").fetchone()[0]
    except sqlite3.DatabaseError as e:
        raise HistoryError(f"{path}: cannot read the history database: {e}") from None
    if version > VERSION:
        conn.close()
        raise HistoryError(
            f"{path}: schema version {version} is newer than this nowcast knows ({VERSION})"
        )
    return conn


def answers_since(conn: sqlite3.Connection, since: float) -> list[tuple[str, str, float]]:
    """The messages applied at ``since`` or later whose reply the database keeps
    (``answer``): ``(id, reply, time applied)``, oldest first."""
    return conn.execute(
        "SELECT id, answer, time FROM messages WHERE time >= ? AND answer IS NOT NULL"
        " ORDER BY time",
        (since,),
    ).fetchall()


# queries (each takes an open connection; results are plain dicts)


def _rows(cursor: Iterable[sqlite3.Row]) -> list[dict]:
    rows = []
    for row in cursor:
        item = dict(row)
        if "args" in item and isinstance(item["args"], str):
            try:
                item["args"] = json.loads(item["args"])
            except ValueError:
                pass
        if "started" in item:
            item["duration"] = duration(item)
        rows.append(item)
    return rows


def duration(run: dict) -> float | None:
    """Seconds from a run's start to its end; None while it runs."""
    if run.get("ended") is None or run.get("started") is None:
        return None
    return max(0.0, run["ended"] - run["started"])


# A run's day is its cycle's first start's date in the scheduler's time zone, so
# no run of a day started before that day began in the zone furthest east (UTC+14);
# a margin of two days covers any zone, and the clock set back by some hours.
DAY_MARGIN = 2 * 86400


def day_start(day: str) -> float | None:
    """The earliest time a run of cycle day ``day`` (``YYYY-MM-DD``) can have
    started, in any time zone; None if ``day`` is not a date."""
    from datetime import UTC, date, datetime

    try:
        midnight = datetime.combine(date.fromisoformat(day), datetime.min.time(), UTC)
    except ValueError:
        return None
    return midnight.timestamp() - DAY_MARGIN


def runs_for_day(conn: sqlite3.Connection, day: str) -> list[dict]:
    """The runs of cycle day ``day`` (``YYYY-MM-DD``), in the order they started."""
    since = day_start(day)
    if since is None:  # not a date: any row's day
        cursor = conn.execute("SELECT * FROM runs WHERE day = ? ORDER BY started, rowid", (day,))
    else:
        cursor = conn.execute(
            "SELECT * FROM runs WHERE started >= ? AND day = ? ORDER BY started, rowid",
            (since, day),
        )
    return _rows(cursor)


def runs_since(
    conn: sqlite3.Connection, days: float, worker: str | None = None, now: float | None = None
) -> list[dict]:
    """The runs started in the last ``days`` days (of ``worker`` only, if given),
    oldest first."""
    since = (time.time() if now is None else now) - days * 86400
    if worker is None:
        cursor = conn.execute(
            "SELECT * FROM runs WHERE started >= ? ORDER BY started, rowid", (since,)
        )
    else:
        cursor = conn.execute(
            "SELECT * FROM runs WHERE worker = ? AND started >= ? ORDER BY started, rowid",
            (worker, since),
        )
    return _rows(cursor)


def runs_for_worker(
    conn: sqlite3.Connection, worker: str, days: float = 30, now: float | None = None
) -> list[dict]:
    """The runs of ``worker`` started in the last ``days`` days, oldest first."""
    return runs_since(conn, days, worker, now)


def run(conn: sqlite3.Connection, run_id: str) -> dict | None:
    """One run by its id, or None."""
    rows = _rows(conn.execute("SELECT * FROM runs WHERE id = ?", (run_id,)))
    return rows[0] if rows else None


def recent_messages(
    conn: sqlite3.Connection, limit: int = 100, since: float | None = None
) -> list[dict]:
    """The last ``limit`` messages (after ``since``, if given), newest first."""
    if since is None:
        cursor = conn.execute("SELECT * FROM messages ORDER BY seq DESC LIMIT ?", (limit,))
    else:
        cursor = conn.execute(
            "SELECT * FROM messages WHERE time > ? ORDER BY seq DESC LIMIT ?", (since, limit)
        )
    return [dict(row) for row in cursor]


def messages_of_run(conn: sqlite3.Connection, run_id: str) -> list[dict]:
    """The messages a run sent, oldest first: those applied from its start to its
    end (``DAY_MARGIN`` either side, for a clock set back or forth meanwhile)."""
    found = conn.execute("SELECT started, ended FROM runs WHERE id = ?", (run_id,)).fetchone()
    if found is None or found[0] is None:  # no such run: any message that names it
        cursor = conn.execute("SELECT * FROM messages WHERE run = ? ORDER BY seq", (run_id,))
    else:
        started, ended = found[0], found[1]
        cursor = conn.execute(
            "SELECT * FROM messages WHERE time BETWEEN ? AND ? AND run = ? ORDER BY seq",
            (
                started - DAY_MARGIN,
                (ended if ended is not None else time.time()) + DAY_MARGIN,
                run_id,
            ),
        )
    return [dict(row) for row in cursor]


def recent_events(conn: sqlite3.Connection, limit: int = 100) -> list[dict]:
    """The last ``limit`` events, newest first."""
    cursor = conn.execute("SELECT * FROM events ORDER BY seq DESC LIMIT ?", (limit,))
    return [dict(row) for row in cursor]


def recent_notifications(conn: sqlite3.Connection, limit: int = 100) -> list[dict]:
    """What the event actions did (sent, failed and why), newest first."""
    cursor = conn.execute("SELECT * FROM notifications ORDER BY seq DESC LIMIT ?", (limit,))
    return [dict(row) for row in cursor]


def percentile(values: list[float], fraction: float) -> float | None:
    """The ``fraction`` percentile of ``values`` (linear between the nearest ranks)."""
    if not values:
        return None
    ordered = sorted(values)
    position = (len(ordered) - 1) * fraction
    low = int(position)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (position - low)


def duration_stats(
    conn: sqlite3.Connection,
    worker: str | None = None,
    days: float = defaults.HISTORY_TREND_DAYS,
    now: float | None = None,
) -> dict[str, dict]:
    """Per worker, over the finished runs of the last ``days`` days: ``count``,
    ``median``, ``p90`` and ``last`` duration in seconds."""
    by_worker: dict[str, list[float]] = {}
    for item in runs_since(conn, days, worker, now):
        if item["duration"] is not None:
            by_worker.setdefault(item["worker"], []).append(item["duration"])
    return {
        name: {
            "count": len(values),
            "median": statistics.median(values),
            "p90": percentile(values, 0.9),
            "last": values[-1],
        }
        for name, values in sorted(by_worker.items())
    }


def is_slow(run: dict, median: float | None) -> bool:
    """Whether a finished run took more than twice the median (the trend mark)."""
    d = run.get("duration")
    return d is not None and median is not None and median > 0 and d > 2 * median


# retention

_PRUNE = {
    "runs": "coalesce(ended, started, launched)",
    "messages": "time",
    "events": "time",
    "notifications": "time",
}


def prune(
    conn: sqlite3.Connection,
    keep_days: float,
    now: float | None = None,
    batch: int = 1000,
    keep_answers_for: float = 0.0,
) -> int:
    """Delete what is older than ``keep_days``, ``batch`` rows per transaction
    (so the manager's commits never wait long for the lock); return how many.
    Messages applied less than ``keep_answers_for`` seconds ago are kept whatever
    ``keep_days`` says: the manager remembers their ids from their rows."""
    now = time.time() if now is None else now
    before = now - keep_days * 86400
    deleted = 0
    for table, column in _PRUNE.items():
        cutoff = min(before, now - keep_answers_for) if table == "messages" else before
        while True:
            cursor = conn.execute(
                f"DELETE FROM {table} WHERE rowid IN "
                f"(SELECT rowid FROM {table} WHERE {column} < ? LIMIT ?)",
                (cutoff, batch),
            )
            deleted += cursor.rowcount
            if cursor.rowcount < batch:
                break
    return deleted


# nowcast history config.yaml [WORKER] [--days N] [--json]


def report(
    conn: sqlite3.Connection,
    worker: str | None = None,
    days: float = defaults.HISTORY_REPORT_DAYS,
    now: float | None = None,
) -> dict:
    """The runs of the last ``days`` days (of ``worker``, if given), each with
    ``slow`` (more than twice its worker's 30-day median), and per worker the
    duration statistics of the last 30 days."""
    stats = duration_stats(conn, worker, defaults.HISTORY_TREND_DAYS, now)
    runs = runs_since(conn, days, worker, now)
    for item in runs:
        item["slow"] = is_slow(item, stats.get(item["worker"], {}).get("median"))
    return {"runs": runs, "stats": stats}


def render(data: dict, zone: Any = None, days: float = defaults.HISTORY_REPORT_DAYS) -> str:
    """``report``'s result as text tables for people."""
    from datetime import datetime

    def when(t: float | None) -> str:
        return datetime.fromtimestamp(t, zone).strftime("%Y-%m-%d %H:%M:%S") if t else "-"

    def secs(d: float | None) -> str:
        if d is None:
            return "-"
        if d < 60:
            return f"{d:.1f} s"
        if d < 3600:
            return f"{d / 60:.1f} min"
        return f"{d / 3600:.1f} h"

    out = [f"runs of the last {days:g} day(s), times in {zone or 'local time'}:", ""]
    if not data["runs"]:
        out.append("  (none)")
    else:
        rows = [("started", "worker", "try", "duration", "outcome", "launched by", "")]
        for r in data["runs"]:
            rows.append(
                (
                    when(r["started"]),
                    r["worker"],
                    str(r["try"]),
                    secs(r["duration"]) if r["ended"] else "running",
                    r["outcome"] or "-",
                    r["launched_by"],
                    "* more than 2x its median" if r["slow"] else "",
                )
            )
        out.extend(_table(rows, right={2, 3}))
    out += ["", f"durations per worker, last {defaults.HISTORY_TREND_DAYS} days:", ""]
    if not data["stats"]:
        out.append("  (no finished runs)")
    else:
        rows = [("worker", "runs", "median", "p90", "last")]
        for name, s in data["stats"].items():
            rows.append((name, str(s["count"]), secs(s["median"]), secs(s["p90"]), secs(s["last"])))
        out.extend(_table(rows, right={1, 2, 3, 4}))
    return "\n".join(out)


def _table(rows: list[tuple], right: set[int]) -> list[str]:
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    lines = []
    for row in rows:
        cells = [
            cell.rjust(widths[i]) if i in right else cell.ljust(widths[i])
            for i, cell in enumerate(row)
        ]
        lines.append("  " + "  ".join(cells).rstrip())
    return lines


def _unknown_worker(conn: sqlite3.Connection, config: Any, worker: str) -> str | None:
    """What to say of ``worker`` when it is neither in the message registry nor in
    the history (a misspelt name, most likely), with the names it may have meant;
    None when it is known to either."""
    import difflib

    registry = config.get("message registry")
    workers = registry.get("workers") if isinstance(registry, dict) else None
    known = set(workers) if isinstance(workers, dict) else set()
    if worker in known:
        return None
    known.update(row[0] for row in conn.execute("SELECT DISTINCT worker FROM runs"))
    if worker in known:
        return None
    close = difflib.get_close_matches(worker, sorted(known, key=str), n=3)
    hint = f"; did you mean {' or '.join(close)}?" if close else ""
    return f"no worker {worker!r} in the message registry of {config.file} nor in the history{hint}"


def main(argv: list[str] | None = None) -> None:
    """Entry point of ``nowcast history`` and ``python -m nowcast.history``."""
    import argparse
    import sys

    from nowcast.config import Config

    parser = argparse.ArgumentParser(
        prog="nowcast history",
        description="Show the runs of the last days and each worker's durations, from the "
        "history database the manager keeps.",
    )
    parser.add_argument("config_file", help="the system's config file (YAML)")
    parser.add_argument("worker", nargs="?", help="only this worker")
    parser.add_argument(
        "--days",
        type=float,
        default=defaults.HISTORY_REPORT_DAYS,
        help=f"show the runs of this many days; default {defaults.HISTORY_REPORT_DAYS}",
    )
    parser.add_argument("--json", action="store_true", help="print JSON instead of tables")
    args = parser.parse_args(argv)
    if args.days <= 0:
        parser.error(f"--days must be above 0, got {args.days:g}")
    config = Config()
    try:
        config.load(args.config_file)
        path = history_path(config)
        conn = open_readonly(path)
    except (OSError, KeyError, ConfigError, HistoryError) as e:
        print(f"nowcast history: {e.args[0] if isinstance(e, KeyError) else e}", file=sys.stderr)
        sys.exit(2 if not isinstance(e, HistoryError) else 1)
    try:
        data = report(conn, args.worker, args.days)
        unknown = args.worker is not None and _unknown_worker(conn, config, args.worker)
    except sqlite3.DatabaseError as e:
        print(f"nowcast history: {path}: {e}", file=sys.stderr)
        sys.exit(1)
    finally:
        conn.close()
    if unknown:
        print(f"nowcast history: {unknown}", file=sys.stderr)
        sys.exit(2)
    if args.json:
        print(json.dumps(data, indent=2))
        return
    from nowcast.recorder import zone_of

    print(render(data, zone_of(config), args.days))


if __name__ == "__main__":
    main()
