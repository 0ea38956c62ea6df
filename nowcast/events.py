"""Events and the actions the ``events:`` section maps them to.

The manager records an event (``failure``, ``late``, ...) in its history; once
the commit holding it is on disk, ``EventActions.publish`` hands it to the
actions of every rule that matches. The actions run on a thread of their own,
from a bounded queue, so they never block or slow the manager's message path.
Each action sends at most ``burst`` notifications a minute; more events within
the minute are held and sent as one digest when it is over. What every action
did (sent, failed and why, dropped) goes into the history's ``notifications``.

See docs/events.md.
"""

from __future__ import annotations

import collections
import logging
import queue
import sqlite3
import threading
import time
from datetime import datetime
from typing import Any

import attrs

from nowcast import defaults
from nowcast.errors import ConfigError

logger = logging.getLogger(__name__)

# Every event there is, in the order docs/events.md describes them.
EVENTS = (
    "failure",
    "crash",
    "timeout",
    "retry",
    "retries exhausted",
    "late",
    "cycle complete",
    "manager started",
    "manager stopped unexpectedly",
    "fork server down",
)

ACTION_KINDS = ("command", "webhook", "email")


@attrs.frozen
class Event:
    """Something an operator may want to be told about."""

    event: str
    time: float
    worker: str | None = None
    run: str | None = None
    detail: dict = attrs.field(factory=dict)

    def fields(self) -> dict:
        """The event as a flat dict (what actions send)."""
        return {
            "event": self.event,
            "time": self.time,
            "time_iso": datetime.fromtimestamp(self.time).astimezone().isoformat(),
            "worker": self.worker,
            "run": self.run,
            **self.detail,
        }

    def text(self) -> str:
        """One line for people."""
        said = self.detail.get("summary") or (self.worker or "")
        return f"nowcast {self.event}: {said}" if said else f"nowcast {self.event}"


def digest_fields(events: list[Event]) -> dict:
    """What an action sends for ``events``: the event itself when alone, else a digest."""
    if len(events) == 1:
        return events[0].fields()
    return {
        "event": "digest",
        "count": len(events),
        "summary": digest_text(events),
        "events": [e.fields() for e in events],
    }


def digest_text(events: list[Event]) -> str:
    if len(events) == 1:
        return events[0].text()
    counts = collections.Counter(e.event for e in events)
    workers = sorted({e.worker for e in events if e.worker})
    kinds = ", ".join(f"{name} x{n}" for name, n in counts.most_common())
    about = f" ({', '.join(workers[:10])}{', ...' if len(workers) > 10 else ''})" if workers else ""
    return f"nowcast: {len(events)} events: {kinds}{about}"


class ActionError(Exception):
    """An action could not deliver; the text says why."""


@attrs.define
class Rule:
    """One item of ``events:``: which events, which workers, what to do."""

    on: frozenset[str]
    workers: frozenset[str] | None
    action: Any  # an object with kind, target and send(events)

    def matches(self, event: Event) -> bool:
        if event.event not in self.on:
            return False
        return self.workers is None or event.worker in self.workers


def rules_of(config: Any) -> list[Rule]:
    """The ``events:`` section, checked; each mistake is a ``ConfigError``
    naming the file, the key and the value."""
    section = config.get("events")
    if section is None:
        return []
    if not isinstance(section, list):
        raise ConfigError(
            f"{config.file}: key 'events' must be a list of rules "
            f"(each with 'on' and one of {', '.join(ACTION_KINDS)}), got {section!r}"
        )
    return [_rule(config, i, item) for i, item in enumerate(section)]


def _rule(config: Any, index: int, item: Any) -> Rule:
    where = f"{config.file}: key 'events: {index}"
    if not isinstance(item, dict):
        raise ConfigError(f"{where}' must be a mapping with 'on' and an action, got {item!r}")
    if True in item and "on" not in item:  # YAML 1.1 reads a bare `on:` key as true
        item = {("on" if k is True else k): v for k, v in item.items()}
    on = item.get("on")
    names = [on] if isinstance(on, str) else on
    if not isinstance(names, list) or not names or not all(isinstance(n, str) for n in names):
        raise ConfigError(f"{where}: on' must be an event or a list of events, got {on!r}")
    for name in names:
        if name not in EVENTS:
            raise ConfigError(
                f"{where}: on' names an unknown event {name!r}; events are: {', '.join(EVENTS)}"
            )
    workers = item.get("workers")
    if workers is not None:
        if isinstance(workers, str):
            workers = [workers]
        if not isinstance(workers, list) or not all(isinstance(w, str) for w in workers):
            raise ConfigError(f"{where}: workers' must be a list of worker names, got {workers!r}")
        workers = frozenset(workers)
    kinds = [k for k in ACTION_KINDS if k in item]
    if len(kinds) != 1:
        raise ConfigError(
            f"{where}' must have exactly one action of {', '.join(ACTION_KINDS)}, "
            f"got {kinds or 'none'}"
        )
    unknown = set(item) - {"on", "workers", "timeout", *ACTION_KINDS}
    if unknown:
        raise ConfigError(
            f"{where}' has unknown key(s) {sorted(unknown)}; expected on, workers, timeout "
            f"and one of {', '.join(ACTION_KINDS)}"
        )
    from nowcast import actions

    action = actions.make(kinds[0], item, f"{where}: {kinds[0]}'", config)
    return Rule(frozenset(names), workers, action)


class _Held:
    """One action's rate: when it last sent, and the events held for a digest."""

    def __init__(self) -> None:
        self.sent: collections.deque[float] = collections.deque()
        self.events: list[Event] = []
        self.action: Any = None


class EventActions:
    """Runs the actions of the rules an event matches, on a thread of its own."""

    def __init__(
        self,
        rules: list[Rule],
        db_path: str | None = None,
        window: float = defaults.EVENT_DIGEST_WINDOW,
        burst: int = defaults.EVENT_BURST,
        size: int = defaults.EVENT_QUEUE,
        clock=time.monotonic,
    ) -> None:
        self.rules = rules
        self.db_path = db_path
        self.window = window
        self.burst = burst
        self.clock = clock
        self._queue: queue.Queue = queue.Queue(size)
        self._dropped: collections.Counter = collections.Counter()
        self._lock = threading.Lock()
        self._held: dict[int, _Held] = {}
        self._conn: sqlite3.Connection | None = None
        self._thread = threading.Thread(target=self._run, name="event actions", daemon=True)
        self._thread.start()

    def publish(self, event: Event) -> None:
        """Queue ``event`` for the actions of the rules it matches; never blocks.
        When the queue is full the event is dropped for that action (and that is
        recorded)."""
        for rule in self.rules:
            if rule.matches(event):
                try:
                    self._queue.put_nowait((rule.action, event))
                except queue.Full:
                    with self._lock:
                        self._dropped[rule.action] += 1

    def close(self, wait: float = defaults.EVENT_CLOSE_WAIT) -> None:
        """Let the queued actions run for up to ``wait`` seconds, then stop."""
        deadline = time.monotonic() + wait
        try:
            self._queue.put(None, timeout=wait)
        except queue.Full:
            pass
        self._thread.join(max(0.0, deadline - time.monotonic()))

    # the thread

    def _run(self) -> None:
        stopping = False
        while True:
            try:
                item = self._queue.get(timeout=self._until_digest())
            except queue.Empty:
                item = ()
            if item is None:
                stopping = True
            elif item:
                self._take(*item)
            self._record_dropped()
            self._send_digests(flush=stopping)
            if stopping:
                if self._conn is not None:
                    self._conn.close()
                return

    def _take(self, action: Any, event: Event) -> None:
        held = self._held.setdefault(id(action), _Held())
        now = self.clock()
        while held.sent and held.sent[0] <= now - self.window:
            held.sent.popleft()
        if not held.events and len(held.sent) < self.burst:
            held.sent.append(now)
            self._deliver(action, [event])
        else:
            if not held.events:
                logger.info(
                    "%s %s: more than %d events in %g s; holding them for one digest",
                    action.kind,
                    action.target,
                    self.burst,
                    self.window,
                )
            held.action = action
            held.events.append(event)

    def _until_digest(self) -> float:
        waits = [
            max(0.0, held.sent[0] + self.window - self.clock()) if held.sent else 0.0
            for held in self._held.values()
            if held.events
        ]
        return min(waits, default=1.0) + 0.01 if waits else 1.0

    def _send_digests(self, flush: bool = False) -> None:
        now = self.clock()
        for held in self._held.values():
            if not held.events:
                continue
            while held.sent and held.sent[0] <= now - self.window:
                held.sent.popleft()
            if flush or len(held.sent) < self.burst:
                events, held.events = held.events, []
                held.sent.append(now)
                self._deliver(held.action, events)

    def _deliver(self, action: Any, events: list[Event]) -> None:
        try:
            detail = action.send(events)
            outcome = "sent"
        except ActionError as e:
            detail, outcome = str(e), "failed"
        except Exception as e:  # an action must never stop the thread
            detail, outcome = f"{type(e).__name__}: {e}", "failed"
        if outcome == "failed":
            logger.error(
                "event action %s %s failed for %s: %s",
                action.kind,
                action.target,
                digest_text(events),
                detail,
            )
        else:
            logger.info("event action %s %s: %s", action.kind, action.target, digest_text(events))
        self._record(action, outcome, events, detail)

    def _record_dropped(self) -> None:
        with self._lock:
            dropped, self._dropped = self._dropped, collections.Counter()
        for action, count in dropped.items():
            logger.error(
                "event action %s %s: %d event(s) dropped, the queue was full",
                action.kind,
                action.target,
                count,
            )
            self._record(action, "dropped", [], f"{count} event(s) dropped: the queue was full")

    def _record(self, action: Any, outcome: str, events: list[Event], detail: str) -> None:
        if self.db_path is None:
            return
        first = events[0] if events else None
        try:
            if self._conn is None:
                from nowcast import history

                self._conn = history.open_for_writing(self.db_path)
            self._conn.execute(
                "INSERT INTO notifications (time, action, target, outcome, events, event,"
                " worker, detail) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    time.time(),
                    action.kind,
                    action.target,
                    outcome,
                    len(events),
                    first.event if first else None,
                    first.worker if first else None,
                    str(detail)[:2000],
                ),
            )
        except Exception as e:
            logger.warning("cannot record a notification in %s: %s", self.db_path, e)
