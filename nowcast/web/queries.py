"""What the dashboard's pages show, read from the history database (read-only),
the checklist file, the schedule and the manager's live status.

Each ``*_view`` function returns plain data (JSON-ready) for one page; the page's
template embeds it and its script draws it, and the live updates fetch it again.
None of them writes anything.
"""

from __future__ import annotations

import json
import os
import sqlite3
import statistics
import time
from collections import defaultdict
from datetime import datetime, timedelta
from typing import Any

from nowcast import defaults, history
from nowcast.config import Config

# How a run's outcome is drawn (a CSS class each): the manager's own outcomes,
# and message types by their leading word (NEMO-style types such as
# "success daily" or "failure nowcast" count as success and failure).
RUNNING = "running"


def outcome_class(outcome: str | None, ended: float | None) -> str:
    """The colour class of a run: running, success, failure, crash, timeout, lost, other."""
    if outcome is None:
        return RUNNING if ended is None else "lost"
    word = outcome.split()[0] if outcome.split() else outcome
    if word in ("success", "failure", "crash", "timeout", "lost", "killed"):
        return word
    return "other"


def cycle_day(config: Config, now: float) -> tuple[str, float, float, str]:
    """Today in ``scheduler: timezone``: (YYYY-MM-DD, its start, its end, zone name)."""
    from zoneinfo import ZoneInfo

    name = zone_name(config)
    zone = ZoneInfo(name)
    local = datetime.fromtimestamp(now, zone)
    start = local.replace(hour=0, minute=0, second=0, microsecond=0)
    end = (start + timedelta(days=1, hours=2)).replace(hour=0)  # 23 or 25 hours on DST days
    return start.strftime("%Y-%m-%d"), start.timestamp(), end.timestamp(), name


def zone_name(config: Config) -> str:
    """The time zone the dashboard counts days and shows times in, as the history
    counts a run's day (``nowcast.recorder.zone_of``): ``scheduler: timezone``,
    else (absent, or not a zone) the machine's own."""
    from zoneinfo import ZoneInfo

    section = config.get("scheduler")
    name = section.get("timezone") if isinstance(section, dict) else None
    if name:
        try:
            ZoneInfo(str(name))
            return str(name)
        except (ValueError, KeyError, OSError):
            pass  # the scheduler reports it; the history counts days in local time then
    return machine_zone_name()


def machine_zone_name() -> str:
    """The machine's time zone by its name in the zone database, for the browser to
    show times in: ``TZ`` when it names one, else what ``/etc/localtime`` links
    to, else ``/etc/timezone``; UTC when none of them names a zone."""
    from zoneinfo import ZoneInfo

    candidates = []
    tz = os.environ.get("TZ", "").lstrip(":")
    if tz:
        candidates.append(tz)
    target = os.path.realpath("/etc/localtime")
    if "/zoneinfo/" in target:
        candidates.append(target.split("/zoneinfo/", 1)[1])
    try:
        with open("/etc/timezone", encoding="utf-8") as f:
            candidates.append(f.read().strip())
    except OSError:
        pass
    for name in candidates:
        try:
            ZoneInfo(name)
        except (ValueError, KeyError, OSError):
            continue
        return "UTC" if name in _UTC_NAMES else name
    return "UTC"


# Names the zone database gives UTC by, shown as UTC.
_UTC_NAMES = frozenset(
    {"Etc/UTC", "Etc/UCT", "Etc/Universal", "Etc/Zulu", "UCT", "Universal", "Zulu"}
)


def registry_workers(config: Config) -> list[str]:
    registry = (config.get("message registry") or {}).get("workers") or {}
    return [str(name) for name in registry] if isinstance(registry, dict) else []


def _run_view(run: dict) -> dict:
    """A run as the pages draw it."""
    return {
        "id": run["id"],
        "worker": run["worker"],
        "module": run["module"],
        "args": run["args"] if isinstance(run["args"], list) else [str(run["args"])],
        "host": run["host"],
        "launched_by": run["launched_by"],
        "launched": run["launched"],
        "started": run["started"] if run["started"] is not None else run["launched"],
        "ended": run["ended"],
        "outcome": run["outcome"],
        "class": outcome_class(run["outcome"], run["ended"]),
        "exit_code": run["exit_code"],
        "signal": run["signal"],
        "try": run["try"],
        "pid": run["pid"],
        "job_id": run["job_id"],
        "duration": history.duration(run),
    }


# Seconds a computation of the 30-day medians is reused (they move slowly).
MEDIANS_TTL = 30.0
_medians_cache: dict[Any, tuple[float, dict[str, float]]] = {}


def medians(conn: sqlite3.Connection, now: float, days: float = 30) -> dict[str, float]:
    """Each worker's median duration over its finished runs of the last ``days``
    days (computed at most every ``MEDIANS_TTL`` seconds per database)."""
    key = (conn.execute("PRAGMA database_list").fetchone()[2], days)
    cached = _medians_cache.get(key)
    if cached is not None and 0 <= now - cached[0] < MEDIANS_TTL:
        return cached[1]
    found = _medians(conn, now, days)
    _medians_cache[key] = (now, found)
    return found


def _medians(conn: sqlite3.Connection, now: float, days: float) -> dict[str, float]:
    durations: dict[str, list[float]] = defaultdict(list)
    cursor = conn.execute(
        "SELECT worker, ended - started FROM runs WHERE started >= ? AND ended IS NOT NULL",
        (now - days * 86400,),
    )
    for worker, seconds in cursor:
        if seconds is not None:
            durations[worker].append(max(0.0, seconds))
    return {worker: statistics.median(values) for worker, values in durations.items()}


def _mark_retried(runs: list[dict]) -> None:
    """A failed try followed by another try of the same worker and args is 'retried'."""
    tries = {(r["worker"], tuple(r["args"]), r["try"]) for r in runs}
    for r in runs:
        if r["class"] in ("failure", "crash", "timeout", "lost") and (
            (r["worker"], tuple(r["args"]), r["try"] + 1) in tries
        ):
            r["retried"] = True


def today_view(
    conn: sqlite3.Connection | None, config: Config, status: dict | None, now: float
) -> dict:
    """The Today page: the runs of today's cycle and any started today, per worker;
    scheduled launches still to come, retries waiting and results held in
    race-condition groups."""
    day, start, end, zone = cycle_day(config, now)
    runs: list[dict] = []
    typical: dict[str, float] = {}
    if conn is not None:
        # the runs of today's cycle (none started before history.DAY_MARGIN
        # before today) and those started today
        rows = history._rows(
            conn.execute(
                "SELECT * FROM runs WHERE started >= ? AND (day = ? OR started >= ?) "
                "ORDER BY started, rowid",
                (start - history.DAY_MARGIN, day, start),
            )
        )
        runs = [_run_view(r) for r in rows]
        typical = medians(conn, now)
    _mark_retried(runs)
    for r in runs:
        r["median"] = typical.get(r["worker"])
    live = live_parts(status, now)
    held = set(live["held"])
    for r in runs:
        if r["class"] == "success" and r["worker"] in held:
            r["held"] = True
    scheduled = upcoming_launches(config, now, 50, until=end)
    order: list[str] = []
    for r in runs:
        if r["worker"] not in order:
            order.append(r["worker"])
    for item in scheduled + live["retries"]:
        if item["worker"] not in order:
            order.append(item["worker"])
    return {
        "page": "today",
        "day": day,
        "zone": zone,
        "day_start": start,
        "day_end": end,
        "now": now,
        "workers": order,
        "runs": runs,
        "scheduled": scheduled,
        **live,
    }


def live_parts(status: dict | None, now: float) -> dict:
    """What only the manager knows: retries waiting and race-condition groups."""
    if status is None:
        return {"manager": None, "retries": [], "groups": [], "held": []}
    retries = [
        {
            "worker": r["module"].rsplit(".", 1)[-1],
            "args": r.get("args", []),
            "try": r.get("try"),
            "due": now + float(r.get("due in", 0)),
        }
        for r in status.get("retries pending", [])
    ]
    groups = []
    held: list[str] = []
    for g in status.get("race groups", []):
        reported = list(g.get("reported", []))
        held += reported
        groups.append(
            {
                "waiting": sorted(g.get("waiting for", {})),
                "reported": reported,
                "then": [w["module"].rsplit(".", 1)[-1] for w in g.get("then launch", [])],
            }
        )
    return {
        "manager": {"pid": status.get("manager", {}).get("pid")},
        "retries": retries,
        "groups": groups,
        "held": held,
    }


def upcoming_launches(
    config: Config, now: float, count: int = 10, until: float | None = None
) -> list[dict]:
    """The next ``count`` launches the scheduler will make (before ``until``, if
    given), soonest first."""
    from datetime import UTC

    from nowcast.scheduler import read_schedule
    from nowcast.supervision import worker_name

    try:
        schedule = read_schedule(config)
    except Exception:  # a bad schedule is the scheduler's to report
        return []
    moment = datetime.fromtimestamp(now, UTC)
    found = []
    for entry in schedule:
        due = moment
        for _ in range(count):
            due = entry.next_after(due)
            if until is not None and due.timestamp() >= until:
                break
            found.append(
                {
                    "worker": worker_name(entry.module),
                    "module": entry.module,
                    "args": list(entry.args),
                    "at": due.timestamp(),
                }
            )
    found.sort(key=lambda item: item["at"])
    return found[:count]


def graph_view(
    conn: sqlite3.Connection | None,
    config: Config,
    status: dict | None,
    now: float,
    days: float = defaults.WEB_GRAPH_DAYS,
) -> dict:
    """The Graph page: workers as nodes, what launched what over the last ``days``
    days as edges, today's last outcome of each worker as its colour."""
    today = today_view(conn, config, status, now)
    edges: dict[tuple[str, str], int] = {}
    joins: dict[str, list[str]] = {}
    names = set(registry_workers(config))
    if conn is not None:
        for launched_by, child, count in conn.execute(
            "SELECT launched_by, worker, count(*) FROM runs "
            "WHERE started >= ? GROUP BY launched_by, worker",
            (now - days * 86400,),
        ):
            names.add(child)
            sources = launchers_of(launched_by)
            if len(sources) > 1:
                joins[child] = sorted(set(joins.get(child, [])) | set(sources))
            for source in sources:
                edges[(source, child)] = edges.get((source, child), 0) + count
    for group in today["groups"]:
        for child in group["then"]:
            members = sorted(set(group["waiting"]) | set(group["reported"]))
            joins[child] = sorted(set(joins.get(child, [])) | set(members))
    state: dict[str, dict] = {}
    for r in today["runs"]:
        state[r["worker"]] = {
            "class": r["class"],
            "held": r.get("held", False),
            "try": r["try"],
            "run": r["id"],
        }
    for parent, _ in edges:
        names.add(parent)
    return {
        "page": "graph",
        "days": days,
        "nodes": sorted(names),
        "edges": [{"from": a, "to": b, "count": c} for (a, b), c in sorted(edges.items())],
        "joins": [{"to": child, "from": members} for child, members in sorted(joins.items())],
        "state": state,
        "now": now,
    }


def launchers_of(launched_by: str | None) -> list[str]:
    """Who a run's ``launched_by`` names as its launchers in the graph: the workers
    of its ``after_<worker>`` functions (several for what a race-condition group
    held back: ``after_a+after_b``), or ``scheduler``, ``by hand``; none for
    another try of the same worker (``retry``) or a restarted manager's launch."""
    if not launched_by:
        return []
    if launched_by in ("scheduler", "by hand"):
        return [launched_by]
    return [part[len("after_") :] for part in launched_by.split("+") if part.startswith("after_")]


def checklist_view(conn: sqlite3.Connection | None, config: Config, now: float) -> dict:
    """The Checklist page: the checklist file as it is now, and the last 20 messages."""
    import yaml

    path = str(config.get("checklist file", ""))
    error = None
    checklist: Any = {}
    try:
        with open(path, encoding="utf-8") as f:
            checklist = yaml.load(f, Loader=getattr(yaml, "CSafeLoader", yaml.SafeLoader)) or {}
    except FileNotFoundError:
        checklist = {}
    except (OSError, yaml.YAMLError, UnicodeDecodeError) as e:
        error = f"cannot read {path}: {' '.join(str(e).split())}"
    messages = []
    if conn is not None:
        for m in history.recent_messages(conn, 20):
            messages.append(
                {
                    "time": m["time"],
                    "source": m["source"],
                    "type": m["type"],
                    "class": outcome_class(m["type"], 0),
                    "payload": m["payload"],
                    "reply": m["reply"],
                }
            )
    return {
        "page": "checklist",
        "file": path,
        "checklist": json.loads(json.dumps(checklist, default=str)),
        "error": error,
        "messages": messages,
        "now": now,
    }


def worker_view(
    conn: sqlite3.Connection | None,
    config: Config,
    name: str,
    now: float,
    days: float = defaults.WEB_WORKER_DAYS,
) -> dict:
    """The Worker page: its runs of the last ``days`` days and its last failures."""
    runs: list[dict] = []
    if conn is not None:
        rows = history._rows(
            conn.execute(
                "SELECT * FROM runs WHERE worker = ? AND started >= ? ORDER BY started, rowid",
                (name, now - days * 86400),
            )
        )
        runs = [_run_view(r) for r in rows]
    _mark_retried(runs)
    finished = [r["duration"] for r in runs if r["duration"] is not None]
    failures = [r for r in runs if r["class"] in ("failure", "crash", "timeout", "lost")][-10:]
    registry = (config.get("message registry") or {}).get("workers") or {}
    return {
        "page": "worker",
        "worker": name,
        "registered": isinstance(registry, dict) and name in registry,
        "days": days,
        "zone": zone_name(config),
        "runs": runs,
        "failures": list(reversed(failures)),
        "median": statistics.median(finished) if finished else None,
        "p90": history.percentile(finished, 0.9),
        "now": now,
    }


def run_detail(conn: sqlite3.Connection, config: Config, run_id: str) -> dict | None:
    """One run with the messages it sent and its log lines."""
    from nowcast.web import logfiles

    found = history.run(conn, run_id)
    if found is None:
        return None
    view = _run_view(found)
    view["messages"] = [
        {"time": m["time"], "type": m["type"], "payload": m["payload"], "reply": m["reply"]}
        for m in history.messages_of_run(conn, run_id)
    ]
    begin = view["started"] or view["launched"] or 0
    view["log"] = logfiles.excerpt(config, view["worker"], begin, view["ended"], pid=view["pid"])
    return view


def message_rate(conn: sqlite3.Connection | None, now: float) -> dict:
    """Messages the manager received in the last minute, 10 minutes and hour."""
    if conn is None:
        return {}
    rates = {}
    for label, seconds in (("1 min", 60), ("10 min", 600), ("1 hour", 3600)):
        (count,) = conn.execute(
            "SELECT count(*) FROM messages WHERE time >= ?", (now - seconds,)
        ).fetchone()
        rates[label] = {"count": count, "per minute": count * 60 / seconds}
    return rates


def last_message_time(conn: sqlite3.Connection | None) -> float | None:
    if conn is None:
        return None
    row = conn.execute("SELECT max(time) FROM messages").fetchone()
    return row[0] if row else None


def now() -> float:
    return time.time()
