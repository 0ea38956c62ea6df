"""The nowcast system configuration: a YAML file read into a dict-like object.

``Config`` behaves as NEMO_Nowcast's does. On top of it, each long-running process
checks the keys *it* needs with the ``require_*`` functions below, so a mistake in
the file stops that process with one line naming the file, the key, the value and
what was expected.
"""

from __future__ import annotations

import io
import os
import re
from typing import Any

import yaml

from nowcast.errors import ConfigError

_ENV_VAR = re.compile(r"\$\(NOWCAST\.ENV\.(\w+)\)")

try:  # libyaml is several times faster; fall back to pure Python where it is missing
    _Loader = yaml.CSafeLoader
except AttributeError:  # pragma: no cover
    _Loader = yaml.SafeLoader


class Config:
    """The configuration of a nowcast system, loaded from a YAML file.

    Use as a dict: ``config["zmq"]["host"]``, ``config.get(key)``, ``key in config``,
    ``config[key] = value``. ``file`` is the path exactly as it was given to ``load``.
    """

    def __init__(self) -> None:
        self.file: Any = ""
        self._dict: dict = {}

    def load(self, config_file: str | os.PathLike) -> None:
        """Read ``config_file`` and replace every ``$(NOWCAST.ENV.NAME)`` in its
        string values by the environment variable ``NAME``.

        :raises FileNotFoundError: no such file.
        :raises ConfigError: the file is not valid YAML, or not a mapping.
        :raises KeyError: an environment variable it names is not set.
        """
        self.file = config_file
        with open(config_file, encoding="utf-8") as f:
            text = f.read()
        data = _parsed.get(text, _MISSING) if _parsed else _MISSING
        if data is _MISSING:
            data = _parse(text, config_file)
        if not isinstance(data, dict):
            raise ConfigError(
                f"{config_file}: expected a mapping of keys to values at the top level, "
                f"got {type(data).__name__}"
            )
        missing: dict[str, list[tuple]] = {}
        self._dict = _replace_env_vars(data, missing, ())
        if missing:
            raise KeyError(_missing_text(missing, config_file))

    def __getitem__(self, key: str) -> Any:
        return self._dict[key]

    def __setitem__(self, key: str, value: Any) -> None:
        self._dict[key] = value

    def __contains__(self, key: object) -> bool:
        return key in self._dict

    def __iter__(self):
        return iter(self._dict)

    def get(self, key: str, default: Any = None) -> Any:
        return self._dict.get(key, default)

    def __eq__(self, other: object) -> bool:
        # as NEMO_Nowcast's: the same file name and the same contents
        if not isinstance(other, Config):
            return NotImplemented
        return (self.file, self._dict) == (other.file, other._dict)

    __hash__ = None  # mutable

    def __repr__(self) -> str:
        return f"Config(file={self.file!r})"


def _parse(text: str, config_file: Any) -> Any:
    stream = io.StringIO(text)
    stream.name = str(config_file)  # so YAML's errors name the file
    try:
        data = yaml.load(stream, Loader=_Loader)
    except yaml.YAMLError as e:
        raise ConfigError(f"{config_file}: not valid YAML: {_one_line(e)}") from None
    return {} if data is None else data


# The config file parsed ahead (by the fork server, for the workers it forks), by
# its text: a load that reads the same text has the same data without parsing it.
_parsed: dict[str, Any] = {}


def parse_ahead(config_file: str | os.PathLike) -> bool:
    """Parse ``config_file`` now, so that loading it later (in a process forked
    after this) skips YAML as long as the file holds the same text. Returns
    whether it is parsed (not when it cannot be read or parsed)."""
    try:
        with open(config_file, encoding="utf-8") as f:
            text = f.read()
        if text in _parsed:
            return True
        data = _parse(text, config_file)
    except (OSError, ValueError, ConfigError):
        return False
    _parsed.clear()  # the one the processes forked from here will read
    _parsed[text] = data
    return True


def _one_line(error: Exception) -> str:
    return " ".join(str(error).split())


def _replace_env_vars(value: Any, missing: dict[str, list[tuple]], where: tuple) -> Any:
    """Return ``value`` with ``$(NOWCAST.ENV.NAME)`` replaced in every string in it;
    each variable that is not set is noted in ``missing`` with where it is used."""
    if isinstance(value, str):
        if "$(NOWCAST.ENV." not in value:
            return value

        def env(match: re.Match) -> str:
            name = match.group(1)
            found = os.environ.get(name)
            if found is None:
                missing.setdefault(name, []).append(where)
                return match.group(0)
            return found

        return _ENV_VAR.sub(env, value)
    if isinstance(value, dict):
        return {k: _replace_env_vars(v, missing, (*where, k)) for k, v in value.items()}
    if isinstance(value, list):
        return [_replace_env_vars(v, missing, (*where, i)) for i, v in enumerate(value)]
    if isinstance(value, set):
        return set(value)  # a copy, as of every mapping and list (each load its own)
    return value


def _missing_text(missing: dict[str, list[tuple]], config_file: Any) -> str:
    """Every environment variable the config uses that is not set, each with the
    keys it is used at (so that one run names them all)."""

    def places(name: str) -> str:
        used = missing[name]
        more = f" and {len(used) - 3} more" if len(used) > 3 else ""
        return ", ".join(key_path(where) for where in used[:3]) + more

    if len(missing) == 1:
        (name,) = missing
        return f"environment variable {name} is not set; {config_file} uses it at {places(name)}"
    return (
        f"environment variables {', '.join(missing)} are not set; {config_file} uses "
        + "; ".join(f"{name} at {places(name)}" for name in missing)
    )


def key_path(keys: tuple | list) -> str:
    """Show a nested key as an operator would write it: ``'zmq: ports: manager'``."""
    return "'" + ": ".join(str(k) for k in keys) + "'"


_MISSING = object()


def lookup(config: Config, *keys: str, default: Any = _MISSING) -> Any:
    """The value at the nested ``keys``; a ``ConfigError`` naming them if absent."""
    value: Any = config._dict
    for depth, key in enumerate(keys):
        if not isinstance(value, dict):
            raise ConfigError(
                f"{config.file}: key {key_path(keys[:depth])} must be a mapping, got {value!r}"
            )
        if key not in value:
            if default is not _MISSING:
                return default
            raise ConfigError(f"{config.file}: missing key {key_path(keys[: depth + 1])}")
        value = value[key]
    return value


def require_str(config: Config, *keys: str, default: Any = _MISSING) -> str:
    value = lookup(config, *keys, default=default)
    if not isinstance(value, str) or not value:
        raise ConfigError(
            f"{config.file}: key {key_path(keys)} must be a non-empty string, got {value!r}"
        )
    return value


def require_port(config: Config, *keys: str) -> int:
    value = lookup(config, *keys)
    if isinstance(value, bool) or not isinstance(value, int) or not 0 < value < 65536:
        raise ConfigError(
            f"{config.file}: key {key_path(keys)} must be a port number from 1 to "
            f"65535, got {value!r}"
        )
    return value


def require_number(
    config: Config, *keys: str, default: Any = _MISSING, minimum: float = 0
) -> float:
    value = lookup(config, *keys, default=default)
    if isinstance(value, bool) or not isinstance(value, (int, float)) or value < minimum:
        raise ConfigError(
            f"{config.file}: key {key_path(keys)} must be a number of at least "
            f"{minimum}, got {value!r}"
        )
    return value


def require_mapping(config: Config, *keys: str, default: Any = _MISSING) -> dict:
    value = lookup(config, *keys, default=default)
    if not isinstance(value, dict):
        raise ConfigError(f"{config.file}: key {key_path(keys)} must be a mapping, got {value!r}")
    return value


def require_logging(config: Config) -> dict:
    """The ``logging`` section, checked to be something ``dictConfig`` can take."""
    section = require_mapping(config, "logging")
    handlers = section.get("handlers", {})
    if handlers not in ([], None) and not isinstance(handlers, dict):
        raise ConfigError(
            f"{config.file}: key 'logging: handlers' must be a mapping (or an empty "
            f"list), got {handlers!r}"
        )
    return section


def require_zmq(config: Config) -> None:
    """Check the ``zmq`` section every process that talks to the broker needs."""
    require_str(config, "zmq", "host")
    require_port(config, "zmq", "ports", "manager")
    require_port(config, "zmq", "ports", "workers")
    if lookup(config, "zmq", "ports", "manager") == lookup(config, "zmq", "ports", "workers"):
        raise ConfigError(
            f"{config.file}: keys 'zmq: ports: manager' and 'zmq: ports: workers' must "
            f"differ, both are {lookup(config, 'zmq', 'ports', 'manager')!r}"
        )


def require_registry(config: Config) -> dict:
    """Check the ``message registry`` section; return its ``workers`` mapping."""
    require_str(config, "message registry", "next workers module")
    workers = require_mapping(config, "message registry", "workers")
    for name, entry in workers.items():
        if not isinstance(entry, dict):
            raise ConfigError(
                f"{config.file}: key {key_path(('message registry', 'workers', name))} "
                f"must be a mapping of message types to descriptions, got {entry!r}"
            )
        if "checklist key" in entry and not isinstance(entry["checklist key"], str):
            raise ConfigError(
                f"{config.file}: key "
                f"{key_path(('message registry', 'workers', name, 'checklist key'))} "
                f"must be a string, got {entry['checklist key']!r}"
            )
    return workers
