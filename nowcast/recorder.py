"""What the manager does, turned into rows of the history database and into
events, written with each commit.

The manager calls the recorder at each step of a message's path (reported,
decided, launched, exited); the recorder keeps the rows until the manager's next
commit, which writes them in one SQLite transaction after the checklist and
state, before the reply journal (``nowcast.committer``). Events (``failure``,
``late``, ...) go to the event actions only once their commit is on disk.

Every row is written so that writing it twice is harmless (upserts keyed by the
run's and the message's id): after a failed or lost commit the next one writes
them again.
"""

from __future__ import annotations

import json
import logging
import os
import sqlite3
import threading
import time
from collections.abc import Callable
from datetime import datetime
from typing import TYPE_CHECKING, Any
from zoneinfo import ZoneInfo

from nowcast import defaults, history
from nowcast.config import lookup
from nowcast.errors import ConfigError
from nowcast.events import Event, EventActions, rules_of
from nowcast.lateness import Lateness
from nowcast.lateness import rules_of as lateness_rules
from nowcast.supervision import is_failure, worker_name

if TYPE_CHECKING:
    from nowcast.message import Message
    from nowcast.supervision import Launched
    from nowcast.worker import NextWorker

logger = logging.getLogger(__name__)

# Message types that do not end a run.
NOT_FINAL = frozenset({"need", "clear checklist"})

_INSERT_RUN = (
    "INSERT INTO runs (id, worker, module, args, host, launched_by, parent, launched, started,"
    " ended, outcome, exit_code, signal, try, pid, job_id, cycle, day)"
    " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
    " ON CONFLICT (id) DO UPDATE SET ended = excluded.ended, outcome = excluded.outcome,"
    " exit_code = coalesce(excluded.exit_code, exit_code),"
    " signal = coalesce(excluded.signal, signal),"
    " job_id = coalesce(excluded.job_id, job_id)"
)
_LAUNCH_RUN = (
    "INSERT INTO runs (id, worker, module, args, host, launched_by, parent, launched, started,"
    " try, pid, job_id, cycle, day) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
    " ON CONFLICT (id) DO NOTHING"
)
_EXIT_RUN = (
    "UPDATE runs SET exit_code = coalesce(?, exit_code), signal = coalesce(?, signal) WHERE id = ?"
)
_INSERT_MESSAGE = (
    "INSERT INTO messages (id, time, source, type, payload, reply, run, answer)"
    " VALUES (?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (id) DO NOTHING"
)
_INSERT_EVENT = "INSERT INTO events (time, event, worker, run, detail) VALUES (?, ?, ?, ?, ?)"
# a run the manager did not launch (by hand, by the scheduler), made at its final
# message: only the columns it has a value for, each bound once (binding is most
# of what a row costs; the others keep their defaults)
_OUTSIDE_RUN = (
    "INSERT INTO runs (id, worker, module, launched_by, launched, started, ended, outcome,"
    " pid, cycle, day) VALUES (?1, ?2, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?1, ?9)"
    " ON CONFLICT (id) DO UPDATE SET ended = excluded.ended, outcome = excluded.outcome"
)


# The order a commit's rows are written in: a run's launch, then its end, then its
# exit (each a statement run once over all of the commit's rows of its kind). The
# runs from outside come last, as a state file written before they were kept apart
# has five lists (``Recorder.replay``).
_ORDER = (_LAUNCH_RUN, _INSERT_RUN, _EXIT_RUN, _INSERT_MESSAGE, _INSERT_EVENT, _OUTSIDE_RUN)


_STATE_COMMIT = "INSERT OR REPLACE INTO meta (key, value) VALUES ('state commit', ?)"


class Rows:
    """The rows of one commit, by statement; ``write`` runs on the committer's thread.
    ``state_commit``: the number of the commit when the manager's state file
    carries these rows too (``to_plain``), written with them."""

    __slots__ = ("conn", "rows", "state_commit")

    def __init__(self, conn: sqlite3.Connection, rows: dict[str, list[tuple]]) -> None:
        self.conn = conn
        self.rows = rows
        self.state_commit: int | None = None

    def to_plain(self) -> list[list]:
        """The rows as JSON can hold them, one list per statement in order."""
        return [self.rows[sql] for sql in _ORDER]

    def __bool__(self) -> bool:
        return any(self.rows.values())

    def write(self) -> None:
        """One transaction; a failure is an ``OSError`` (the commit failed)."""
        self.prepare()
        self.finish()

    def prepare(self) -> None:
        """Begin the transaction and make its rows, without committing it: the
        committer does this before it writes the checklist and ``finish``es it
        after (``nowcast.committer``)."""
        conn = self.conn
        try:
            conn.execute("BEGIN IMMEDIATE")
            for sql in _ORDER:
                if self.rows[sql]:
                    conn.executemany(sql, self.rows[sql])
            if self.state_commit is not None:
                conn.execute(_STATE_COMMIT, (self.state_commit,))
        except sqlite3.Error as e:
            self.abort()
            raise OSError(f"history database: {e}") from None

    def finish(self) -> None:
        """Commit the transaction ``prepare`` made (flushed to disk)."""
        try:
            self.conn.execute("COMMIT")
        except sqlite3.Error as e:
            self.abort()
            raise OSError(f"history database: {e}") from None

    def abort(self) -> None:
        """Roll the transaction back, if one is open."""
        try:
            self.conn.execute("ROLLBACK")
        except sqlite3.Error:
            pass


def run_id(name: str, pid: int | None, started: float) -> str:
    """The id of a run: stable, so a row can be written again after a crash."""
    return f"{name}:{pid}:{int(started * 1000)}"


def launched_run_id(launched: Launched) -> str:
    return run_id(launched.name, launched.pid, launched.started)


def history_enabled(config: Any) -> bool:
    """The ``history: enabled`` switch, checked to be a boolean (default on)."""
    value = lookup(config, "history", "enabled", default=True)
    if not isinstance(value, bool):
        raise ConfigError(
            f"{config.file}: key 'history: enabled' must be true or false, got {value!r}"
        )
    return value


def validate(config: Any) -> None:
    """Check the ``history:`` and ``events:`` sections and ``late after`` settings."""
    rules_of(config)
    lateness_rules(config)
    section = config.get("history")
    if section is None:
        return
    if not isinstance(section, dict):
        raise ConfigError(
            f"{config.file}: key 'history' must be a mapping (enabled, keep days, file), "
            f"got {section!r}"
        )
    unknown = set(section) - {"enabled", "keep days", "file"}
    if unknown:
        raise ConfigError(
            f"{config.file}: key 'history' has unknown key(s) {sorted(unknown)}; "
            f"expected enabled, keep days, file"
        )
    history_enabled(config)
    keep = section.get("keep days", defaults.HISTORY_KEEP_DAYS)
    if isinstance(keep, bool) or not isinstance(keep, (int, float)) or keep <= 0:
        raise ConfigError(
            f"{config.file}: key 'history: keep days' must be a number of days above 0, "
            f"got {keep!r}"
        )
    if "file" in section and not isinstance(section["file"], str):
        raise ConfigError(
            f"{config.file}: key 'history: file' must be a path, got {section['file']!r}"
        )


def zone_of(config: Any) -> ZoneInfo | None:
    name = lookup(config, "scheduler", "timezone", default=None)
    if not name:
        return None
    try:
        return ZoneInfo(str(name))
    except (ValueError, KeyError, OSError):
        return None  # the scheduler reports a bad zone; the day is then local


class Recorder:
    """The manager's bookkeeping of runs, messages and events."""

    def __init__(
        self,
        conn: sqlite3.Connection | None,
        config: Any,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.conn = conn  # None: the history is off (events still fire)
        self.clock = clock
        self.zone = zone_of(config)
        self.lateness = Lateness(config, self.zone)
        self.on_event: Callable[[Event], None] | None = None  # after the commit is on disk
        self._rows: dict[str, list[tuple]] = _no_rows()
        self._in_flight_rows: dict[str, list[tuple]] = _no_rows()
        self._events: list[Event] = []
        self._in_flight_events: list[Event] = []
        self._current: tuple | None = None  # (message, its run, cycle, day)
        self._decided: list[tuple[NextWorker, str | None, str, str | None, str | None]] = []
        self._open: dict[str, tuple[str | None, str | None]] = {}  # run -> (cycle, day)
        self._cycles_touched: set[str] = set()
        self._cycle_days: dict[str, str | None] = {}
        self._cycle_outcomes: dict[str, list[tuple[str, str]]] = {}
        self._fork_server_up: bool | None = None
        self._pruner: Pruner | None = None
        # when the committer's thread checkpoints the database's log (the manager's recorder)
        self.checkpoints: history.Checkpoints | None = None
        self._day_minute, self._day = -1, ""
        self._unknown_runs = 0  # runs of final messages from processes not known
        self.actions: EventActions | None = None

    # opening

    @classmethod
    def open(cls, config: Any, clock: Callable[[], float] = time.time) -> Recorder:
        """The recorder of the system ``config`` describes; its database opened
        (created or migrated) unless ``history: enabled: false``."""
        if not history_enabled(config):
            recorder = cls(None, config, clock)
            recorder._start_actions(config, None)
            return recorder
        path = history.history_path(config)
        try:
            conn = history.open_for_writing(path)
        except history.HistoryError as e:
            if "newer" in str(e):
                raise ConfigError(str(e)) from None
            aside = f"{path}.unreadable-{time.strftime('%Y%m%dT%H%M%S')}"
            os.replace(path, aside)
            logger.error("%s; moved it to %s and started a new one", e, aside)
            conn = history.open_for_writing(path)
        recorder = cls(conn, config, clock)
        recorder.checkpoints = history.Checkpoints(conn)
        history.preallocate_log(conn, defaults.HISTORY_LOG_PREALLOCATE)
        keep = lookup(config, "history", "keep days", default=defaults.HISTORY_KEEP_DAYS)
        from nowcast.core import keep_ids_for

        # the ids of messages applied within the time the manager remembers them
        # for are read back from their rows: never pruned, however few the days
        recorder._pruner = Pruner(path, float(keep), keep_answers_for=keep_ids_for(config))
        recorder._pruner.start()
        recorder._start_actions(config, path)
        return recorder

    def applied_since(self, since: float) -> list[tuple[str, str, float]]:
        """The ids of messages applied at ``since`` or later that the database
        keeps the reply of: ``(id, reply, time applied)``, oldest first."""
        if self.conn is None:
            return []
        try:
            return history.answers_since(self.conn, since)
        except sqlite3.Error as e:
            logger.error(
                "cannot read the replies to recent messages from the history database "
                "(%s): a worker re-sending one of them would have it applied again",
                e,
            )
            return []

    def _start_actions(self, config: Any, path: str | None) -> None:
        self.actions = EventActions(rules_of(config), path)
        self.on_event = self.actions.publish

    def reconfigure(self, config: Any) -> None:
        """After a config reload: the new ``late after`` settings and event rules."""
        self.lateness.rules = lateness_rules(config)
        if self.actions is not None:
            self.actions.rules = rules_of(config)

    def start(self, running: list[Launched]) -> None:
        """At the manager's start: notice an unexpected stop of the previous
        manager, and pick up what the database knows (open runs, successes)."""
        now = self.clock()
        if self.conn is not None:
            last = self.conn.execute(
                "SELECT event, time FROM events WHERE event IN ('manager started',"
                " 'manager stopped') ORDER BY seq DESC LIMIT 1"
            ).fetchone()
            if last is not None and last[0] == "manager started":
                self.event(
                    "manager stopped unexpectedly",
                    summary="the previous manager stopped without shutting down "
                    f"(it started at {_iso(last[1])})",
                    previous_start=last[1],
                )
            for rid, cycle, day in self.conn.execute(
                "SELECT id, cycle, day FROM runs WHERE ended IS NULL AND started > ?",
                (now - 7 * 86400,),
            ):
                self._open[rid] = (cycle, day)
            self.lateness.load(self.conn, now)
        for launched in running:
            rid = launched_run_id(launched)
            self._open.setdefault(rid, (rid, self.day_of(launched.started)))
        self.event(
            "manager started", summary=f"manager started (pid {os.getpid()})", pid=os.getpid()
        )

    def stopping(self) -> None:
        """At a clean stop: the next manager then knows it was not unexpected."""
        self.event("manager stopped", summary="manager stopped", pid=os.getpid())

    # what the manager does

    def reported(
        self, msg: Message, launched: Launched | None, retries: int = 0, will_retry: bool = False
    ) -> None:
        """A final message from a worker (or the crash the manager makes up for
        one that died silently): end its run."""
        now = self.clock()
        if launched is None:
            rid, cycle, day = self._outside_run(msg, now)
        else:
            rid = launched_run_id(launched)
            cycle, day = self._open.pop(rid, (rid, self.day_of(launched.started)))
            outcome = msg.type
            if msg.type == "crash" and launched.term_sent is not None and launched.exited:
                outcome = history.TIMED_OUT
            code, sig = _exit(launched.exit_code if launched.exited else None)
            self._add(
                _INSERT_RUN,
                (
                    rid,
                    launched.name,
                    launched.module,
                    json.dumps(launched.args),
                    launched.host or "localhost",
                    "manager restart",
                    None,
                    launched.started,
                    launched.started,
                    now,
                    outcome,
                    code,
                    sig,
                    launched.tries,
                    launched.pid,
                    launched.job_id,
                    cycle,
                    day,
                ),
            )
            if outcome == history.TIMED_OUT:
                self.event(
                    "timeout",
                    msg.source,
                    rid,
                    summary=f"ran past its timeout of {launched.timeout} s and was stopped",
                    timeout=launched.timeout,
                    try_=launched.tries,
                )
        self._current = (msg, rid, cycle, day)
        if cycle is not None:
            self._cycles_touched.add(cycle)
            self._cycle_outcomes.setdefault(cycle, []).append((msg.source, msg.type))
            self._cycle_days[cycle] = day
        self.lateness.reported(msg.source, msg.type, cycle, now)
        tries = launched.tries if launched is not None else 1
        if msg.type == "crash" and not (launched is not None and launched.term_sent is not None):
            self.event("crash", msg.source, rid, summary=f"{msg.source} crashed", try_=tries)
        elif msg.type.startswith("failure"):
            self.event(
                "failure", msg.source, rid, summary=f"{msg.source} reported {msg.type}", try_=tries
            )
        if is_failure(msg.type) and retries and not will_retry and launched is not None:
            self.event(
                "retries exhausted",
                msg.source,
                rid,
                summary=f"{msg.source} failed on all {tries} tries",
                tries=tries,
            )

    def message(
        self,
        msg: Message,
        reply_type: str,
        size: int | None = None,
        answer: str | None = None,
        now: float | None = None,
    ) -> None:
        """A message applied at ``now``, with the type of the reply it got
        (``size``: of its text, when known, so a large payload is not encoded whole
        for its summary) and, when the manager remembers its id, the reply's text
        (``answer``: the database then keeps it for the next manager)."""
        if self.conn is None:
            return
        rid = None
        if self._current is not None and self._current[0] is msg:
            rid = self._current[1]
        self._current = None
        self._add(
            _INSERT_MESSAGE,
            (
                msg.id,
                self.clock() if now is None else now,
                msg.source,
                msg.type,
                _summary(msg.payload, size),
                reply_type,
                rid,
                answer,
            ),
        )

    def retry(self, launched: Launched, worker: NextWorker, delay: float, of: int) -> None:
        """Another try of ``launched`` is decided."""
        rid = launched_run_id(launched)
        cycle, day = self._cycle_of(rid, launched.started)
        self._decided.append((worker, rid, "retry", cycle, day))
        self.event(
            "retry",
            launched.name,
            rid,
            summary=f"{launched.name} failed on try {launched.tries} of {of}; "
            f"trying again in {delay:g} s",
            try_=launched.tries,
            delay=delay,
        )

    def decided(
        self, source: str, workers: list[NextWorker], group: list[str] | None = None
    ) -> None:
        """``after_<source>`` decided to launch ``workers`` (for the message just
        reported); when its report completed a race-condition group, the launch is
        the whole ``group``'s, and names every member's function."""
        parent = self._current[1] if self._current is not None else None
        cycle, day = self._cycle_of(parent, None)
        by = "+".join(f"after_{name}" for name in group) if group else f"after_{source}"
        for worker in workers:
            self._decided.append((worker, parent, by, cycle, day))

    def launched(self, worker: NextWorker, launched: Launched) -> None:
        """``worker`` was started as ``launched``."""
        rid = launched_run_id(launched)
        found = next((i for i, d in enumerate(self._decided) if d[0] == worker), None)
        if found is None:
            parent, by, cycle, day = None, "manager restart", None, None
        else:
            _, parent, by, cycle, day = self._decided.pop(found)
        if cycle is None:
            cycle, day = rid, self.day_of(launched.started)
        self._open[rid] = (cycle, day)
        self.lateness.cycle_began(cycle, launched.started)
        self._add(
            _LAUNCH_RUN,
            (
                rid,
                launched.name,
                launched.module,
                json.dumps(launched.args),
                launched.host or "localhost",
                by,
                parent,
                launched.started,
                launched.started,
                launched.tries,
                launched.pid,
                launched.job_id,
                cycle,
                day,
            ),
        )

    def not_launched(self, worker: NextWorker) -> None:
        """``worker`` could not be launched: its cycle does not wait for it."""
        for i, (decided, _, _, cycle, _) in enumerate(self._decided):
            if decided == worker:
                del self._decided[i]
                if cycle is not None:
                    self._cycles_touched.add(cycle)
                return

    def exited(self, launched: Launched) -> None:
        """A run that had reported has exited: its exit code or signal."""
        code, sig = _exit(launched.exit_code)
        if code is None and sig is None:
            return
        self._add(_EXIT_RUN, (code, sig, launched_run_id(launched)))

    def tick(self, now: float, fork_server_up: bool | None) -> None:
        """At each supervision: lateness, and a fork server going down."""
        for worker, detail in self.lateness.due(now):
            self.event("late", worker, None, **detail)
        if fork_server_up is not None:
            if self._fork_server_up and not fork_server_up:
                self.event(
                    "fork server down",
                    summary="the fork server died; workers are started cold until another starts",
                )
            self._fork_server_up = fork_server_up

    def event(self, name: str, worker: str | None = None, run: str | None = None, **detail) -> None:
        """Record event ``name``; its actions run once the commit is on disk."""
        if "try_" in detail:
            detail["try"] = detail.pop("try_")
        event = Event(name, self.clock(), worker, run, detail)
        self._events.append(event)
        self._add(
            _INSERT_EVENT,
            (event.time, name, worker, run, json.dumps(detail, ensure_ascii=False, default=str)),
        )

    @property
    def has_rows(self) -> bool:
        """Whether something waits for a commit (events with no database too)."""
        return bool(self._events) or any(self._rows.values())

    # commits

    @property
    def keeps_answers(self) -> bool:
        """Whether the database keeps the replies to applied messages (``answer``)."""
        return self.conn is not None

    def add_to(self, commit: Any) -> Rows | None:
        """Hand the rows since the last commit to ``commit``; return them (None
        when there are none)."""
        self._check_cycles()
        rows = None
        if self.conn is not None and any(self._rows.values()):
            rows = commit.history = Rows(self.conn, self._rows)
        self._in_flight_rows, self._rows = self._rows, _no_rows()
        self._in_flight_events, self._events = self._events, []
        return rows

    def state_commit(self) -> int:
        """The number of the last commit the state file carried that the database
        has (0 when none or the history is off)."""
        if self.conn is None:
            return 0
        found = self.conn.execute("SELECT value FROM meta WHERE key = 'state commit'").fetchone()
        return found[0] if found is not None and isinstance(found[0], int) else 0

    def replay(self, state_commit: int, plain: list) -> bool:
        """At start: write again the rows of commit ``state_commit``, which the
        state file carries (``Rows.to_plain``), when the database has not got
        them (the manager stopped between the state file's rename and the
        history's transaction). Return whether it did."""
        if self.conn is None or not state_commit:
            return False
        if not plain or self.state_commit() >= state_commit:
            return False
        made = _no_rows()
        for sql, part in zip(_ORDER, plain, strict=False):  # five lists from before: the first
            made[sql] = [tuple(r) for r in part]
        rows = Rows(self.conn, made)
        rows.state_commit = state_commit
        rows.write()
        return True

    def committed(self) -> None:
        """The commit is on disk: its events go to their actions."""
        events, self._in_flight_events = self._in_flight_events, []
        self._in_flight_rows = _no_rows()
        if self.on_event is not None:
            for event in events:
                if event.event != "manager stopped":
                    self.on_event(event)

    def failed(self) -> None:
        """The commit was not written: its rows go into the next one."""
        for sql, rows in self._in_flight_rows.items():
            rows.extend(self._rows[sql])
        self._rows = self._in_flight_rows
        self._events[:0] = self._in_flight_events
        self._in_flight_rows, self._in_flight_events = _no_rows(), []

    def close(self) -> None:
        if self._pruner is not None:
            self._pruner.stop()
        if self.actions is not None:
            self.actions.close()
            self.actions = None
        if self.conn is not None:
            self.conn.close()
            self.conn = None

    # helpers

    def day_of(self, when: float) -> str:
        minute = int(when // 60)  # the date changes on a whole minute in every zone
        if minute != self._day_minute:
            self._day_minute = minute
            self._day = datetime.fromtimestamp(minute * 60, self.zone).date().isoformat()
        return self._day

    def _add(self, sql: str, params: tuple) -> None:
        if self.conn is not None:
            self._rows[sql].append(params)

    def _cycle_of(self, rid: str | None, started: float | None) -> tuple[str | None, str | None]:
        """The cycle and day of run ``rid``: the one just reported, an open one,
        or one in the database."""
        if rid is None:
            return None, None
        if self._current is not None and self._current[1] == rid:
            return self._current[2], self._current[3]
        if rid in self._open:
            return self._open[rid]
        if self.conn is not None:
            row = self.conn.execute("SELECT cycle, day FROM runs WHERE id = ?", (rid,)).fetchone()
            if row is not None and row[0] is not None:
                return row[0], row[1]
        return rid, self.day_of(started if started is not None else self.clock())

    def _outside_run(self, msg: Message, now: float) -> tuple[str, str, str]:
        """A final message from a worker the manager did not launch: a run of its
        own, by the scheduler or by hand."""
        pid = _pid_from_id(msg.id)
        started, parent_cmd = _process_start(pid, msg.source) if pid else (None, "")
        by = "scheduler" if "nowcast.scheduler" in parent_cmd else "by hand"
        if started is not None:
            rid = run_id(msg.source, pid, started)
        else:
            # its process is not known: the message is a run of its own (two
            # such messages in the same millisecond are two runs, not one)
            started = now
            self._unknown_runs += 1
            rid = f"{run_id(msg.source, pid, started)}:{self._unknown_runs}"
        day = self.day_of(started)
        launched = started if by == "scheduler" else None
        self._add(_OUTSIDE_RUN, (rid, msg.source, by, launched, started, now, msg.type, pid, day))
        self.lateness.cycle_began(rid, started)
        return rid, rid, day

    def _check_cycles(self) -> None:
        """A cycle with nothing running, decided or waiting is complete."""
        if not self._cycles_touched:
            return
        busy = {c for c, _ in self._open.values()} | {d[3] for d in self._decided}
        for cycle in self._cycles_touched - busy:
            outcomes = self._cycle_outcomes.pop(cycle, [])
            if len(outcomes) < 2:  # a lone run: its own events say how it went
                self._cycle_days.pop(cycle, None)
                continue
            failed = [f"{name} ({kind})" for name, kind in outcomes if is_failure(kind)]
            day = self._cycle_days.pop(cycle, None)
            begun = f"the cycle {cycle.split(':', 1)[0]} began" + (f" on {day}" if day else "")
            self.event(
                "cycle complete",
                None,
                cycle,
                summary=f"{begun} is complete: {len(outcomes)} run(s), "
                + (f"{len(failed)} failed: {', '.join(failed)}" if failed else "none failed"),
                runs=len(outcomes),
                failed=failed,
                day=day,
            )
        self._cycles_touched.clear()


class Pruner(threading.Thread):
    """Deletes rows older than ``history: keep days``, in the background, on a
    connection of its own: a minute after start, then every hour."""

    def __init__(
        self, path: str, keep_days: float, every: float | None = None, keep_answers_for: float = 0.0
    ) -> None:
        super().__init__(name="history pruner", daemon=True)
        self.path = path
        self.keep_days = keep_days
        self.keep_answers_for = keep_answers_for  # seconds: see history.prune
        self.every = defaults.HISTORY_PRUNE_EVERY if every is None else every
        self._stop_event = threading.Event()

    def run(self) -> None:
        wait = min(60.0, self.every)
        while not self._stop_event.wait(wait):
            wait = self.every
            try:
                conn = history.open_for_writing(self.path)
                try:
                    deleted = history.prune(
                        conn, self.keep_days, keep_answers_for=self.keep_answers_for
                    )
                finally:
                    conn.close()
            except (sqlite3.Error, history.HistoryError) as e:
                logger.warning("cannot prune the history database %s: %s", self.path, e)
                continue
            if deleted:
                logger.info(
                    "pruned %d row(s) older than %g days from %s",
                    deleted,
                    self.keep_days,
                    self.path,
                )

    def stop(self) -> None:
        self._stop_event.set()
        self.join(5)


def _no_rows() -> dict[str, list[tuple]]:
    return {sql: [] for sql in _ORDER}


def _iso(when: float) -> str:
    return datetime.fromtimestamp(when).astimezone().isoformat(timespec="seconds")


def _exit(code: int | None) -> tuple[int | None, int | None]:
    if code is None:
        return None, None
    if code < 0:
        return None, -code
    return code, None


_ENCODER = json.JSONEncoder(ensure_ascii=False, default=str)


def _encoder() -> Any:
    """``_ENCODER.encode``, without the encoder ``json`` makes for each call: one
    made once (its C form, where there is one; with no check for a value that
    holds itself, which then ends in a RecursionError instead of a ValueError)."""
    make = getattr(json.encoder, "c_make_encoder", None)
    if make is None:
        return _ENCODER.encode
    e = _ENCODER
    encode = make(
        None,  # no markers: no check for a value that holds itself
        e.default,
        json.encoder.encode_basestring,  # ensure_ascii=False
        e.indent,
        e.key_separator,
        e.item_separator,
        e.sort_keys,
        e.skipkeys,
        e.allow_nan,
    )
    return lambda value: "".join(encode(value, 0))


_encode = _encoder()


def _summary(payload: Any, size: int | None = None) -> str | None:
    """The payload as JSON, cut at ``HISTORY_PAYLOAD_CHARS``. A message of more
    than ``size`` bytes has its payload encoded only as far as the cut."""
    if payload is None:
        return None
    limit = defaults.HISTORY_PAYLOAD_CHARS
    try:
        if size is not None and size > 8 * limit:
            chunks, length = [], 0
            for chunk in _ENCODER.iterencode(payload):  # piece by piece, stopped at the cut
                chunks.append(chunk)
                length += len(chunk)
                if length > limit:
                    break
            text = "".join(chunks)
        else:
            text = _encode(payload)
    except (TypeError, ValueError, RecursionError):
        text = repr(payload)
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _pid_from_id(msg_id: str | None) -> int | None:
    if not msg_id:
        return None
    parts = msg_id.split(":")
    if len(parts) >= 4 and parts[-3].isdigit():
        return int(parts[-3])
    return None


_BOOT_TIME: float | None = None


def _process_start(pid: int, name: str) -> tuple[float | None, str]:
    """When local process ``pid`` started and its parent's command line, if it
    is the worker ``name`` (a pid from another host is someone else here)."""
    global _BOOT_TIME
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as f:
            cmdline = f.read().replace(b"\0", b" ").decode(errors="replace")
        if worker_name(name) not in cmdline:
            return None, ""
        with open(f"/proc/{pid}/stat", "rb") as f:
            fields = f.read().rsplit(b")", 1)[-1].split()
        ppid, ticks = int(fields[1]), int(fields[19])
        if _BOOT_TIME is None:
            with open("/proc/stat", "rb") as f:
                for line in f:
                    if line.startswith(b"btime"):
                        _BOOT_TIME = float(line.split()[1])
        started = _BOOT_TIME + ticks / os.sysconf("SC_CLK_TCK") if _BOOT_TIME else None
        with open(f"/proc/{ppid}/cmdline", "rb") as f:
            parent = f.read().replace(b"\0", b" ").decode(errors="replace")
        return started, parent
    except (OSError, ValueError, IndexError):
        return None, ""
