"""The scheduler: launches workers at set times.

``scheduled workers:`` in the config lists them, in NEMO_Nowcast's form::

    scheduled workers:
      - workers.prepare_run:
          every: day             # or monday, tuesday, ... sunday
          at: "05:30"            # HH:MM or HH:MM:SS, in the entry's time zone
          cmd line opts: --run-date today

or with a cron expression (minute hour day-of-month month day-of-week)::

      - workers.rotate_logs:
          cron: "30 23 * * *"
          timezone: America/Vancouver   # default: scheduler: timezone, else UTC
          catch up: true                # launch once if a due time passed while down

Each worker is launched at most once per due time. Daylight-saving changes are
handled as cron does: a time in the skipped hour runs at the first valid instant
after it, a time in the repeated hour runs once (schedules of every hour or more
often run in both copies of the repeated hour, by the real clock). The last due time launched is
kept in ``<checklist file>.scheduler-state.json``, so a restarted scheduler knows
what it missed; with ``catch up: false`` (the default) it logs what it missed and
waits for the next due time.

Usage: ``python -m nowcast.scheduler config.yaml [--list]``
"""

from __future__ import annotations

import json
import re
import shlex
import sys
from datetime import UTC, datetime, timedelta
from typing import Any

import attrs

from nowcast import defaults
from nowcast.config import Config, key_path, lookup, require_str
from nowcast.errors import ConfigError, NowcastError
from nowcast.fileutils import atomic_write
from nowcast.process import LongRunningProcess

DAYS = {
    "day": "*",
    "monday": "1",
    "tuesday": "2",
    "wednesday": "3",
    "thursday": "4",
    "friday": "5",
    "saturday": "6",
    "sunday": "0",
}
_AT = re.compile(r"(\d{1,2}):(\d{2})(?::(\d{2}))?")


@attrs.frozen
class Scheduled:
    """One scheduled worker: what to launch, and when."""

    module: str
    args: tuple[str, ...]
    cron: str  # minute resolution
    seconds: int  # added to each cron time (for "at: HH:MM:SS")
    zone: Any  # a ZoneInfo
    catch_up: bool

    @property
    def key(self) -> str:
        """Names this entry in the state file."""
        return f"{self.module} {' '.join(self.args)} @ {self.cron} +{self.seconds}s {self.zone}".strip()

    def next_after(self, moment: datetime) -> datetime:
        """The first due time strictly after ``moment`` (aware), in UTC.

        The offset of ``seconds`` is taken in UTC on the way in and added with
        ``replace`` on the way out: wall-clock arithmetic on an aware datetime
        drops its ``fold``, which in the repeated hour of a daylight-saving change
        turns the second 01:00 back into the first, and the search never ends.
        The search is bounded: it raises ``ScheduleError`` rather than loop.
        """
        from cronsim import CronSim

        start = (moment.astimezone(UTC) - timedelta(seconds=self.seconds)).astimezone(self.zone)
        times = CronSim(self.cron, start.replace(microsecond=0))
        for _ in range(_SEARCH_LIMIT):
            due = next(times).replace(second=self.seconds)
            if due.astimezone(UTC) > moment:  # CronSim counts from the start minute
                return due.astimezone(UTC)
        raise ScheduleError(
            f"{self.module}: no due time of {self.cron!r} (+{self.seconds} s) in {self.zone} "
            f"after {moment.isoformat()} within {_SEARCH_LIMIT} steps"
        )


# Most cron times ``next_after`` looks at before it gives up (it needs one or two).
_SEARCH_LIMIT = 100


class ScheduleError(NowcastError):
    """No next due time could be found for a scheduled worker."""


def read_schedule(config: Config) -> list[Scheduled]:
    """The ``scheduled workers`` entries; ``ConfigError`` naming the first bad one."""
    from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

    entries = lookup(config, "scheduled workers", default=[]) or []
    if not isinstance(entries, list):
        raise ConfigError(f"{config.file}: key 'scheduled workers' must be a list, got {entries!r}")
    default_zone = lookup(config, "scheduler", "timezone", default="UTC")
    schedule = []
    for index, item in enumerate(entries):
        where = ("scheduled workers", index)
        if not isinstance(item, dict) or len(item) != 1:
            raise ConfigError(
                f"{config.file}: item {index} of 'scheduled workers' must be one "
                f"'module: {{settings}}' mapping, got {item!r}"
            )
        [(module, settings)] = item.items()
        where = (*where, module)
        if not isinstance(settings, dict):
            raise ConfigError(
                f"{config.file}: key {key_path(where)} must be a mapping, got {settings!r}"
            )
        zone_name = settings.get("timezone", default_zone)
        try:
            zone = ZoneInfo(str(zone_name))
        except (ZoneInfoNotFoundError, ValueError):
            raise ConfigError(
                f"{config.file}: key {key_path((*where, 'timezone'))} must be a time zone "
                f"name such as UTC or America/Vancouver, got {zone_name!r}"
            ) from None
        cron, seconds = _when(config, where, settings)
        opts = settings.get("cmd line opts", "")
        if not isinstance(opts, str):
            raise ConfigError(
                f"{config.file}: key {key_path((*where, 'cmd line opts'))} must be a string, got {opts!r}"
            )
        catch_up = settings.get("catch up", False)
        if not isinstance(catch_up, bool):
            raise ConfigError(
                f"{config.file}: key {key_path((*where, 'catch up'))} must be true or false, got {catch_up!r}"
            )
        entry = Scheduled(str(module), tuple(shlex.split(opts)), cron, seconds, zone, catch_up)
        try:
            entry.next_after(datetime.now(UTC))
        except Exception as e:
            raise ConfigError(
                f"{config.file}: key {key_path((*where, 'cron'))}: {cron!r} is not a valid cron expression ({e})"
            ) from None
        schedule.append(entry)
    return schedule


def _when(config: Config, where: tuple, settings: dict) -> tuple[str, int]:
    if "cron" in settings:
        cron = settings["cron"]
        if not isinstance(cron, str) or len(cron.split()) != 5:
            raise ConfigError(
                f"{config.file}: key {key_path((*where, 'cron'))} must be five fields "
                f"'minute hour day-of-month month day-of-week', got {cron!r}"
            )
        return cron, 0
    every = settings.get("every")
    if every not in DAYS:
        raise ConfigError(
            f"{config.file}: key {key_path((*where, 'every'))} must be one of "
            f"{', '.join(DAYS)} (or give 'cron' instead), got {every!r}"
        )
    at = settings.get("at")
    match = _AT.fullmatch(str(at)) if at is not None else None
    if match is None or int(match[1]) > 23 or int(match[2]) > 59 or int(match[3] or 0) > 59:
        raise ConfigError(
            f"{config.file}: key {key_path((*where, 'at'))} must be a time of day as "
            f'"HH:MM" or "HH:MM:SS", got {at!r}'
        )
    return f"{int(match[2])} {int(match[1])} * * {DAYS[every]}", int(match[3] or 0)


def plan(
    schedule: list[Scheduled], last: dict[str, str], now: datetime
) -> tuple[dict[str, datetime], list[str]]:
    """The next due time of each entry, given the last due times launched before
    ``now``, and log lines about launches missed while the scheduler was down."""
    due, notes = {}, []
    for entry in schedule:
        previous = last.get(entry.key)
        if previous is None:
            due[entry.key] = entry.next_after(now)
            continue
        try:
            first_missed = entry.next_after(datetime.fromisoformat(previous))
        except Exception:  # a time no schedule can follow (year 9999, say)
            notes.append(f"{entry.module}: last launch time {previous!r} cannot be used; ignored")
            due[entry.key] = entry.next_after(now)
            continue
        if first_missed > now:
            due[entry.key] = first_missed
            continue
        missed, moment = 0, first_missed
        while moment <= now and missed < 1000:
            missed += 1
            moment = entry.next_after(moment)
        when = first_missed.isoformat()
        if entry.catch_up:
            notes.append(
                f"{entry.module}: {missed} launch(es) missed while the scheduler was down, "
                f"the first due {when}; catching up with one launch now (catch up: true)"
            )
            due[entry.key] = now
        else:
            notes.append(
                f"{entry.module}: {missed} launch(es) missed while the scheduler was down, "
                f"the first due {when}; not catching up (catch up: false)"
            )
            due[entry.key] = entry.next_after(now)
    return due, notes


class Scheduler(LongRunningProcess):
    """Launch scheduled workers at their due times."""

    name = "scheduler"

    def validate(self, config: Config) -> None:
        require_str(config, "checklist file")
        read_schedule(config)

    def setup(self, now: datetime | None = None) -> None:
        self.children: list[tuple[Any, str]] = []
        self._state_path = f"{self.config['checklist file']}.scheduler-state.json"
        self._last = self._read_state()
        self._arrange(now or datetime.now(UTC))

    def apply_config(self, old: Config, new: Config) -> None:
        self._arrange(datetime.now(UTC))

    def _arrange(self, now: datetime) -> None:
        self.schedule = read_schedule(self.config)
        self.due, notes = plan(self.schedule, self._last, now)
        for note in notes:
            self.logger.warning("%s", note)
        for entry in self.schedule:
            self.logger.info(
                "%s: next launch at %s (%s)",
                entry.module,
                self.due[entry.key].astimezone(entry.zone).isoformat(),
                entry.zone,
            )
        if not self.schedule:
            self.logger.warning("no 'scheduled workers' in %s; nothing to launch", self.config.file)

    def loop(self, now: datetime | None = None) -> None:
        import time

        now = now or datetime.now(UTC)
        self.launch_due(now)
        self._reap()
        time.sleep(self.pause(now))

    def launch_due(self, now: datetime) -> None:
        """Launch each entry whose due time has come, once: its due time is in the
        state file before the launch, so a scheduler killed in between does not
        launch it again at its restart (``catch up``)."""
        for entry in self.schedule:
            due = self.due[entry.key]
            if due <= now:
                self._last[entry.key] = due.isoformat()
                try:
                    self._write_state()
                except OSError as e:
                    self.logger.error(
                        "cannot write the scheduler state %s (%s); launching %s anyway: "
                        "a restart with catch up could launch it again",
                        self._state_path,
                        e,
                        entry.module,
                    )
                self._launch(entry, due)
                try:
                    self.due[entry.key] = entry.next_after(max(due, now))
                except ScheduleError as e:
                    self.logger.error("%s; trying again in an hour", e)
                    self.due[entry.key] = max(due, now) + timedelta(hours=1)
                    continue
                self.logger.info(
                    "%s: next launch at %s",
                    entry.module,
                    self.due[entry.key].astimezone(entry.zone).isoformat(),
                )

    def pause(self, now: datetime) -> float:
        """Seconds to wait before looking again: until the next due time, at most
        one poll interval (so that a signal is acted on soon)."""
        until_next = min((d - now).total_seconds() for d in self.due.values()) if self.due else 1
        return max(0.0, min(defaults.POLL_MS / 1000, until_next))

    def _launch(self, entry: Scheduled, due: datetime) -> None:
        from nowcast.launcher import launch
        from nowcast.next_worker import NextWorker

        self.logger.info("%s: due at %s", entry.module, due.astimezone(entry.zone).isoformat())
        try:
            process = launch(NextWorker(entry.module, list(entry.args)), self.config, self.logger)
        except (OSError, ConfigError) as e:
            self.logger.error("cannot launch %s: %s", entry.module, e)
            return
        self.children.append((process, entry.module))

    def _reap(self) -> None:
        for process, module in list(self.children):
            code = process.poll()
            if code is not None:
                self.children.remove((process, module))
                self.logger.debug("%s (pid %s) exited with code %s", module, process.pid, code)

    def _read_state(self) -> dict[str, str]:
        """The last due time launched of each entry. A state file that cannot be
        taken whole is moved aside with one ERROR line; temporary files a killed
        write left are removed."""
        from nowcast.fileutils import move_aside, remove_stale_temporaries

        for name in remove_stale_temporaries(self._state_path):
            self.logger.warning("removed %s, left by a write that was cut short", name)
        try:
            with open(self._state_path, "rb") as f:
                data = json.loads(f.read())
            last = data["last launched"] if isinstance(data, dict) else None
            if not isinstance(last, dict):
                raise ValueError("expected {'last launched': {entry: time}}")
            for key, when in last.items():
                if not isinstance(when, str) or datetime.fromisoformat(when).tzinfo is None:
                    raise ValueError(f"{key!r}: expected a time with its UTC offset, got {when!r}")
            return dict(last)
        except FileNotFoundError:
            return {}
        except Exception as e:  # any bytes, any JSON
            why = " ".join(str(e).split())[:300] or type(e).__name__
            try:
                aside = move_aside(self._state_path)
            except OSError as moving:
                raise ConfigError(
                    f"scheduler state {self._state_path} cannot be used ({why}) and cannot "
                    f"be moved aside ({moving.strerror}); move it away by hand"
                ) from None
            self.logger.error(
                "scheduler state %s cannot be used (%s); moved it to %s and starting without it",
                self._state_path,
                why,
                aside,
            )
            return {}

    def _write_state(self) -> None:
        data = json.dumps({"last launched": self._last}, indent=1).encode("utf-8")
        atomic_write(self._state_path, data)


def listing(schedule: list[Scheduled], now: datetime, count: int = 3) -> str:
    """The next ``count`` due times of each entry, in its time zone and, when that
    is not UTC, in UTC too."""
    lines = []
    for entry in schedule:
        args = f" {' '.join(entry.args)}" if entry.args else ""
        lines.append(
            f"{entry.module}{args}  ({entry.cron}{f' +{entry.seconds}s' if entry.seconds else ''}, {entry.zone})"
        )
        moment = now
        for number in range(count):
            moment = entry.next_after(moment)
            local = moment.astimezone(entry.zone)
            label = "next" if number == 0 else "then"
            if local.utcoffset() == moment.utcoffset() and str(entry.zone) in ("UTC", "Etc/UTC"):
                lines.append(f"  {label}: {moment.strftime('%Y-%m-%d %H:%M:%S UTC')}")
            else:
                lines.append(
                    f"  {label}: {local.strftime('%Y-%m-%d %H:%M:%S %Z')}"
                    f"  (UTC: {moment.strftime('%Y-%m-%d %H:%M:%S')})"
                )
    return "\n".join(lines) if lines else "no scheduled workers"


def main(argv: list[str] | None = None) -> None:
    from nowcast.cli import CommandLineInterface

    cli = CommandLineInterface("scheduler", package="nowcast", description=__doc__)
    cli.build_parser()
    cli.add_argument("--list", action="store_true", help="Print the next due times and exit.")
    args = cli.parser.parse_args(argv)
    if args.list:
        config = Config()
        try:
            config.load(args.config_file)
            schedule = read_schedule(config)
        except (OSError, KeyError, ConfigError) as e:
            print(
                f"nowcast.scheduler: {e.args[0] if isinstance(e, KeyError) else e}", file=sys.stderr
            )
            sys.exit(2)
        from nowcast.cli import print_out

        print_out(listing(schedule, datetime.now(UTC)))
        return
    sys.exit(Scheduler(args).run())


if __name__ == "__main__":
    main()
