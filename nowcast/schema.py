"""The documented keys of a nowcast config file, in one place.

``SCHEMA`` describes every key nowcast itself reads: its kind of value and a
line of documentation. ``nowcast check`` walks a config against it (unknown keys
get a did-you-mean, wrong values the same one-line error the processes give),
and the manager runs that walk at start and at each reload.

To document a new key, add it here, next to its section: a ``Key`` for a value,
a ``Section`` for a mapping of known keys, ``Entries`` for a mapping whose keys
the user names (workers, hosts). Nothing else needs to change for ``nowcast
check`` to know it. A section marked ``open`` also holds the system's own keys
(NEMO_Nowcast systems keep their settings beside nowcast's), so an unknown key
there is only reported when it looks like a misspelt known one.
"""

from __future__ import annotations

import difflib
from collections.abc import Callable
from typing import Any

import attrs

# A value check returns None when the value is good, else what was expected
# ("must be a port number from 1 to 65535"); the caller adds the key and value.
ValueCheck = Callable[[Any], "str | None"]


def _is_number(value: Any) -> bool:
    return not isinstance(value, bool) and isinstance(value, (int, float))


def string(value: Any) -> str | None:
    return None if isinstance(value, str) and value else "must be a non-empty string"


def port(value: Any) -> str | None:
    ok = isinstance(value, int) and not isinstance(value, bool) and 0 < value < 65536
    return None if ok else "must be a port number from 1 to 65535"


def number(minimum: float = 0) -> ValueCheck:
    def check(value: Any) -> str | None:
        ok = _is_number(value) and value >= minimum
        return None if ok else f"must be a number of at least {minimum:g}"

    return check


def whole(minimum: int = 0) -> ValueCheck:
    def check(value: Any) -> str | None:
        ok = isinstance(value, int) and not isinstance(value, bool) and value >= minimum
        return None if ok else f"must be a whole number of at least {minimum}"

    return check


def boolean(value: Any) -> str | None:
    return None if isinstance(value, bool) else "must be true or false"


def mapping(value: Any) -> str | None:
    return None if isinstance(value, dict) else "must be a mapping"


def string_list(value: Any) -> str | None:
    ok = isinstance(value, list) and all(isinstance(v, (str, int, float)) for v in value)
    return None if ok else "must be a list of strings"


def delays(value: Any) -> str | None:
    items = value if isinstance(value, list) else [value]
    ok = items and all(_is_number(d) and d >= 0 for d in items)
    return None if ok else "must be a number of seconds or a list of them"


def either(*checks: ValueCheck, expected: str) -> ValueCheck:
    def check(value: Any) -> str | None:
        return None if any(c(value) is None for c in checks) else expected

    return check


def optional_list(value: Any) -> str | None:
    return None if value is None or isinstance(value, list) else "must be a list"


@attrs.frozen
class Key:
    """One key holding a value."""

    check: ValueCheck
    doc: str


@attrs.frozen
class Section:
    """A mapping of known keys.

    ``open``: the mapping may also hold keys of the system's own (reported only
    when close to a known key). ``others``: when set, every unknown key must hold
    a value this check accepts (message types, whose values are descriptions).
    """

    keys: dict[str, Key | Section | Entries]
    doc: str = ""
    open: bool = False
    others: ValueCheck | None = None
    others_are: str = ""


@attrs.frozen
class Entries:
    """A mapping whose keys the user names, each value described by ``entry``."""

    entry: Section
    doc: str = ""


def message_type(value: Any) -> str | None:
    return None if isinstance(value, str) else "must be a string describing the message type"


WORKER = Section(
    {
        "checklist key": Key(string, "where its payloads go in the checklist; default: its name"),
        "timeout": Key(number(0.001), "seconds it may run; then SIGTERM, then SIGKILL"),
        "timeout grace": Key(number(0.001), "seconds between SIGTERM and SIGKILL"),
        "retries": Key(whole(0), "relaunches after failure or crash"),
        "retry delay": Key(delays, "seconds before each retry"),
        "late after": Key(
            either(string, number(0), expected='must be a time of day like "08:30" or a duration'),
            "when the worker is late: a time of day, or a duration after the cycle's start",
        ),
        "sbatch options": Key(string_list, "options of its batch jobs, after the host's"),
        "queue timeout": Key(number(0.001), "seconds its batch job may wait in the queue"),
    },
    doc="one worker: its settings, and the message types it may send with descriptions",
    others=message_type,
    others_are="message type",
)

HOST = Section(
    {
        "python": Key(string, "the interpreter on that host"),
        "config file": Key(string, "the config file's path on that host"),
        "envvars": Key(string, "a file sourced before the worker starts"),
        "ssh host": Key(string, "the name ssh connects to"),
        "user": Key(string, "the user ssh logs in as"),
        "port": Key(port, "ssh's port"),
        "ssh options": Key(string_list, "more arguments for ssh"),
        "batch": Key(string, "slurm: run workers as batch jobs (docs/remote-hosts.md)"),
        "sbatch options": Key(string_list, "#SBATCH options of every job"),
        "jobs directory": Key(string, "where job scripts and their output go"),
        "poll interval": Key(number(0.001), "seconds between polls of the batch system"),
    },
    doc="a host workers may be launched on (over ssh, or as batch jobs)",
    open=True,
)

SCHEMA = Section(
    {
        "checklist file": Key(string, "path of the checklist (YAML)"),
        "python": Key(string, "interpreter for launched workers"),
        "logging": Section(
            {
                "aggregator": Key(mapping, "dictConfig of the log aggregator"),
                "publisher": Key(
                    mapping, "NEMO_Nowcast's distributed logging: what processes log through"
                ),
            },
            doc="a logging.config.dictConfig dict",
            open=True,
        ),
        "zmq": Section(
            {
                "host": Key(string, "where clients find the broker"),
                "ports": Section(
                    {
                        "manager": Key(port, "the manager's port on the broker"),
                        "workers": Key(port, "the workers' port on the broker"),
                        "logging": Key(
                            either(port, mapping, expected="must be a port number or a mapping"),
                            "the log aggregator's port",
                        ),
                    },
                    open=True,
                ),
                "bind": Key(string, "address the broker binds"),
                "insecure": Key(boolean, "allow a non-loopback bind without keys"),
                "curve keys": Key(string, "directory made by nowcast keys"),
                "curve client": Key(string, "which client key pair this host uses"),
                "max message size": Key(number(1), "bytes"),
                "reply timeout": Key(number(0.001), "seconds a worker waits before re-sending"),
                "give up after": Key(number(0), "seconds a worker keeps trying"),
                "logging buffer": Key(whole(1), "records held while the aggregator is down"),
                "logging linger": Key(number(0), "seconds an exiting process waits"),
            },
        ),
        "message registry": Section(
            {
                "next workers module": Key(string, "the module with the after_* functions"),
                "manager": Key(mapping, "descriptions of the manager's replies"),
                "workers": Entries(WORKER, "the workers, by name"),
            },
        ),
        "run": Section(
            {
                "enabled hosts": Entries(HOST, "hosts workers may be launched on"),
                "warm start": Key(boolean, "start local workers through a fork server"),
            },
            open=True,
        ),
        "history": Section(
            {
                "enabled": Key(boolean, "keep the run history database"),
                "keep days": Key(number(0.001), "days of history kept"),
                "file": Key(string, "the database; default: beside the checklist file"),
            },
            doc="the run history database",
        ),
        "events": Key(
            optional_list, "rules: which events run which command, webhook or mail (docs/events.md)"
        ),
        "web": Section(
            {
                "port": Key(port, "the dashboard's port (default 5780)"),
                "bind": Key(string, "address the dashboard binds (default 127.0.0.1)"),
                "password file": Key(string, "file holding the password, owner-only"),
                "user": Key(string, "the user name browsers ask for (default nowcast)"),
            },
            doc="the web dashboard (docs/web.md)",
        ),
        "scheduler": Section(
            {"timezone": Key(string, "default time zone of scheduled workers")}, open=True
        ),
        "scheduled workers": Key(
            optional_list, "what the scheduler launches and when (docs/scheduling.md)"
        ),
    },
    open=True,
)


def similar(name: Any, known: Any) -> str | None:
    """The known key ``name`` is most likely a misspelling of, if any."""
    if not isinstance(name, str):
        return None
    matches = difflib.get_close_matches(name, list(known), n=1, cutoff=0.75)
    return matches[0] if matches else None


def walk(data: Any, section: Section = SCHEMA, where: tuple = ()):
    """Yield ``(level, keys, text)`` for each problem in ``data`` against ``section``:
    ``keys`` is the path of the key, ``text`` what is wrong, without the key."""
    if not isinstance(data, dict):
        return
    for name, value in data.items():
        keys = (*where, name)
        spec = section.keys.get(name)
        if spec is None:
            yield from _unknown(section, name, value, keys)
        elif isinstance(spec, Key):
            expected = spec.check(value)
            if expected is not None:
                yield "ERROR", keys, f"{expected}, got {value!r}"
        elif not isinstance(value, dict):
            if value is not None or isinstance(spec, Section) and not spec.open:
                yield "ERROR", keys, f"must be a mapping, got {value!r}"
        elif isinstance(spec, Entries):
            for entry, settings in value.items():
                if not isinstance(settings, dict):
                    yield "ERROR", (*keys, entry), f"must be a mapping, got {settings!r}"
                else:
                    yield from walk(settings, spec.entry, (*keys, entry))
        else:
            yield from walk(value, spec, keys)


def _unknown(section: Section, name: Any, value: Any, keys: tuple):
    guess = similar(name, section.keys)
    hint = f" (did you mean {guess!r}?)" if guess else ""
    if section.others is not None:
        expected = section.others(value)
        if expected is not None:
            yield (
                "ERROR",
                keys,
                f"is not a known setting{hint}; as a {section.others_are} it "
                f"{expected}, got {value!r}",
            )
        elif guess:
            yield (
                "WARNING",
                keys,
                f"is taken as a {section.others_are}, but looks like a misspelt setting{hint}",
            )
    elif not section.open:
        yield "ERROR", keys, f"is not a known key{hint}"
    elif guess:
        yield "WARNING", keys, f"is not a key nowcast reads{hint}"
