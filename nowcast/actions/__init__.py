"""What an event can do: one module per kind of action (docs/events.md).

Each action has ``kind``, ``target`` (what the history records: the command, the
URL or the addresses, never a secret) and ``send(events)``, which delivers one
event or a digest of several and returns a line about it, or raises
``nowcast.events.ActionError`` saying why it could not.
"""

from __future__ import annotations

from typing import Any

from nowcast.errors import ConfigError


def make(kind: str, item: dict, where: str, config: Any) -> Any:
    """The action of kind ``kind`` an ``events:`` rule describes; ``where``
    names the file and key for errors."""
    if kind == "command":
        from nowcast.actions.command import CommandAction

        return CommandAction.from_config(item, where)
    if kind == "webhook":
        from nowcast.actions.webhook import WebhookAction

        return WebhookAction.from_config(item, where)
    if kind == "email":
        from nowcast.actions.email import EmailAction

        return EmailAction.from_config(item, where)
    raise ConfigError(f"{where} is not an action kind")


def positive_number(value: Any, where: str, default: float) -> float:
    if value is None:
        return default
    if isinstance(value, bool) or not isinstance(value, (int, float)) or value <= 0:
        raise ConfigError(f"{where} must be a number of seconds above 0, got {value!r}")
    return float(value)
