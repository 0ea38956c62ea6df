"""NEMO_Nowcast's distributed logging config, mapped onto nowcast's one aggregator.

NEMO_Nowcast gives every process a port of its own to publish its log records on
(``zmq: ports: logging`` as a mapping: ``message_broker: 5560, manager: 5561,
workers: [5562, 5563], run_NEMO: ['hpc:5564']``), and the processes log through a
``logging: publisher`` section whose ``zmq.log.handlers.PUBHandler`` the log
aggregator subscribes to. nowcast has one aggregator port that every process
sends to. A config in NEMO_Nowcast's form is read so:

- the aggregator's port is the mapping's ``log_aggregator`` entry if it has one,
  else its ``message_broker`` entry, else its ``manager`` entry (ports of the host
  that runs the broker, the manager and the aggregator); the other entries are
  checked (a port, a ``'host:port'`` string, or a list of them) and not used;
- every process but the aggregator logs through the ``logging: publisher``
  section, without its PUBHandler handlers (records reach the aggregator through
  nowcast's own handler, as with ``ports: logging: PORT``).
"""

from __future__ import annotations

import re
from typing import Any

from nowcast.config import Config, key_path
from nowcast.errors import ConfigError

# entries of a NEMO_Nowcast logging ports mapping that may give the aggregator's port
AGGREGATOR_PORT_KEYS = ("log_aggregator", "message_broker", "manager")
_HOST_PORT = re.compile(r"^[^:\s]+:(\d+)$")
_PUB_HANDLER = "zmq.log.handlers.PUBHandler"


def _port(value: Any) -> int | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value if 0 < value < 65536 else None
    if isinstance(value, str):
        match = _HOST_PORT.match(value)
        if match and 0 < int(match.group(1)) < 65536:
            return int(match.group(1))
    return None


def logging_port(config: Config) -> int:
    """The log aggregator's port, from ``zmq: ports: logging`` in either form.

    :raises ConfigError: missing, or not a port, or a mapping without a usable entry.
    """
    keys = ("zmq", "ports", "logging")
    try:
        value = config["zmq"]["ports"]["logging"]
    except (KeyError, TypeError):
        raise ConfigError(f"{config.file}: missing key {key_path(keys)}") from None
    if not isinstance(value, dict):
        if isinstance(value, bool) or not isinstance(value, int) or not 0 < value < 65536:
            raise ConfigError(
                f"{config.file}: key {key_path(keys)} must be a port number from 1 to "
                f"65535 (or NEMO_Nowcast's mapping of process names to ports), got {value!r}"
            )
        return value
    for name, entry in value.items():
        entries = entry if isinstance(entry, list) else [entry]
        if not entries or any(_port(e) is None for e in entries):
            raise ConfigError(
                f"{config.file}: key {key_path((*keys, name))} must be a port number, a "
                f"'host:port' string or a list of them, got {entry!r}"
            )
    for name in AGGREGATOR_PORT_KEYS:
        if name in value and isinstance(value[name], int):
            return value[name]
    raise ConfigError(
        f"{config.file}: key {key_path(keys)} is a mapping without a port for the log "
        f"aggregator: give one of {', '.join(AGGREGATOR_PORT_KEYS)} as a port number, got "
        f"{value!r}"
    )


def publisher_section(config: Config) -> dict | None:
    """NEMO_Nowcast's ``logging: publisher`` section as a ``dictConfig`` dict for
    a nowcast process (its PUBHandler handlers removed), or None without one."""
    section = config.get("logging")
    if not isinstance(section, dict) or not isinstance(section.get("publisher"), dict):
        return None
    publisher = dict(section["publisher"])
    handlers = publisher.get("handlers")
    if not isinstance(handlers, dict):
        return publisher
    dropped = {
        name
        for name, spec in handlers.items()
        if isinstance(spec, dict) and spec.get("class") == _PUB_HANDLER
    }
    if not dropped:
        return publisher
    publisher["handlers"] = {k: v for k, v in handlers.items() if k not in dropped}

    def without(spec: Any) -> Any:
        if isinstance(spec, dict) and isinstance(spec.get("handlers"), list):
            return {**spec, "handlers": [h for h in spec["handlers"] if h not in dropped]}
        return spec

    if "root" in publisher:
        publisher["root"] = without(publisher["root"])
    if isinstance(publisher.get("loggers"), dict):
        publisher["loggers"] = {k: without(v) for k, v in publisher["loggers"].items()}
    return publisher
