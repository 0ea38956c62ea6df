"""Lateness: a worker that has not reported success by a set time.

``message registry: workers: NAME: late after:`` is either a time of day,
``"08:30"`` (in ``scheduler: timezone``, else the machine's), or a duration,
``"2h"``, ``"90m"``, ``"1h30m"``, ``"45s"`` or a number of seconds, counted from
the first launch of the cycle. The ``late`` event fires at most once a day per
worker. The time is given to ``due(now)``, so tests drive it with their own clock.
"""

from __future__ import annotations

import re
import sqlite3
from datetime import datetime, timedelta, tzinfo
from typing import Any

from nowcast.errors import ConfigError

_TIME_OF_DAY = re.compile(r"^([01]?\d|2[0-3]):([0-5]\d)$")
_DURATION = re.compile(r"^(?:(\d+(?:\.\d+)?)h)?\s*(?:(\d+(?:\.\d+)?)m)?\s*(?:(\d+(?:\.\d+)?)s)?$")


def parse(value: Any, where: str) -> tuple[str, Any]:
    """``("time", (hour, minute))`` or ``("after", seconds)``; raises
    ``ConfigError`` naming ``where`` (file and key) and the value."""
    if isinstance(value, bool):
        pass
    elif isinstance(value, (int, float)) and value > 0:
        return "after", float(value)
    elif isinstance(value, str):
        text = value.strip()
        match = _TIME_OF_DAY.match(text)
        if match:
            return "time", (int(match[1]), int(match[2]))
        match = _DURATION.match(text.replace(" ", ""))
        if match and any(match.groups()):
            hours, minutes, seconds = (float(g) if g else 0.0 for g in match.groups())
            total = hours * 3600 + minutes * 60 + seconds
            if total > 0:
                return "after", total
    raise ConfigError(
        f'{where} must be a time of day like "08:30" or a duration after the cycle\'s '
        f'first launch like "2h", "90m", "1h30m" or a number of seconds, got {value!r}'
    )


def rules_of(config: Any) -> dict[str, tuple[str, Any]]:
    """Every worker's ``late after``, checked."""
    rules = {}
    registry = (config.get("message registry") or {}).get("workers") or {}
    for name, entry in registry.items():
        if isinstance(entry, dict) and "late after" in entry:
            where = f"{config.file}: key 'message registry: workers: {name}: late after'"
            rules[name] = parse(entry["late after"], where)
    return rules


class Lateness:
    """Which workers are late, given what was reported and the time."""

    def __init__(self, config: Any, zone: tzinfo | None) -> None:
        self.rules = rules_of(config)
        self.zone = zone
        self.last_success: dict[str, float] = {}
        self.cycle_success: dict[str, set[str]] = {}
        self.cycle_start: dict[str, float] = {}
        self.fired: set[tuple[str, str]] = set()  # (worker, day)
        self._forgotten_at = 0.0

    def load(self, conn: sqlite3.Connection, now: float) -> None:
        """Pick up the successes and late events of the last two days."""
        since = now - 2 * 86400
        for worker, ended in conn.execute(
            "SELECT worker, max(ended) FROM runs WHERE outcome LIKE 'success%' AND ended > ?"
            " GROUP BY worker",
            (since,),
        ):
            self.last_success[worker] = ended
        for worker, when in conn.execute(
            "SELECT worker, time FROM events WHERE event = 'late' AND time > ?", (since,)
        ):
            self.fired.add((worker, self._day(when)))

    def reported(self, worker: str, msg_type: str, cycle: str | None, now: float) -> None:
        if msg_type.startswith("success"):
            self.last_success[worker] = now
            if cycle in self.cycle_start:
                self.cycle_success.setdefault(cycle, set()).add(worker)

    def cycle_began(self, cycle: str, when: float) -> None:
        """Note a cycle's first launch; only needed (and kept) for duration rules."""
        if cycle not in self.cycle_start and self._durations():
            self.cycle_start[cycle] = when

    def _durations(self) -> bool:
        return any(kind == "after" for kind, _ in self.rules.values())

    def _forget_old_cycles(self, now: float) -> None:
        for old in [c for c, t in self.cycle_start.items() if t < now - 2 * 86400]:
            del self.cycle_start[old]
            self.cycle_success.pop(old, None)

    def due(self, now: float) -> list[tuple[str, dict]]:
        """The late events to fire at ``now``: (worker, detail)."""
        if not self.rules:
            return []
        late = []
        if now - self._forgotten_at > 60:
            self._forgotten_at = now
            self._forget_old_cycles(now)
        today = self._day(now)
        for worker, (kind, value) in self.rules.items():
            if (worker, today) in self.fired:
                continue
            if kind == "time":
                local = datetime.fromtimestamp(now, self.zone)
                midnight = local.replace(hour=0, minute=0, second=0, microsecond=0)
                deadline = _at(local, *value, self.zone)
                if now < deadline or self.last_success.get(worker, 0) >= _stamp(midnight):
                    continue
                why = f"no success by {value[0]:02d}:{value[1]:02d}"
            else:
                cycles = [
                    (start, c)
                    for c, start in self.cycle_start.items()
                    if now >= start + value
                    and worker not in self.cycle_success.get(c, ())
                    and self._day(start) == today
                ]
                if not cycles:
                    continue
                start, _ = min(cycles)
                deadline = start + value
                why = f"no success {_duration(value)} after the cycle's first launch"
            self.fired.add((worker, today))
            late.append(
                (
                    worker,
                    {
                        "summary": f"{worker} is late: {why}",
                        "late after": why,
                        "deadline": deadline,
                        "day": today,
                    },
                )
            )
        return late

    def _day(self, when: float) -> str:
        return datetime.fromtimestamp(when, self.zone).date().isoformat()


def _at(local: datetime, hour: int, minute: int, zone: tzinfo | None) -> float:
    """The Unix time of ``hour:minute`` on ``local``'s date in ``zone`` (a time
    that a DST change skips counts as the same wall time after the change)."""
    naive = datetime(local.year, local.month, local.day, hour, minute)
    if zone is None:
        return naive.timestamp()
    return naive.replace(tzinfo=zone).timestamp()


def _stamp(moment: datetime) -> float:
    return moment.timestamp()


def _duration(seconds: float) -> str:
    return str(timedelta(seconds=round(seconds)))
