"""The ``email`` action: mail the event through an SMTP server, with STARTTLS
and a login read from a file only its owner can read."""

from __future__ import annotations

import json
import os
import smtplib
import socket
import ssl
import stat
from email.message import EmailMessage
from typing import Any

from nowcast import defaults
from nowcast.actions import positive_number
from nowcast.errors import ConfigError
from nowcast.events import ActionError, Event, digest_fields, digest_text


def read_login(path: str) -> tuple[str, str]:
    """The user (first line) and password (second line) in ``path``, which must
    belong to this user and be readable by nobody else; raises ``ValueError``."""
    info = os.stat(path)
    if info.st_uid != os.getuid() or info.st_mode & (stat.S_IRWXG | stat.S_IRWXO):
        raise ValueError(
            f"{path} must belong to this user and be readable by its owner only "
            f"(chmod 600 {path}); it is mode {stat.filemode(info.st_mode)}"
        )
    with open(path, encoding="utf-8") as f:
        lines = f.read().splitlines()
    if len(lines) < 2 or not lines[0]:
        raise ValueError(
            f"{path} must hold the user on its first line and the password on its second"
        )
    return lines[0], lines[1]


class EmailAction:
    kind = "email"

    def __init__(
        self, to: list[str], sender: str, smtp: dict[str, Any], ca_file: str | None
    ) -> None:
        self.to = to
        self.sender = sender
        self.host = smtp["host"]
        self.port = smtp["port"]
        self.starttls = smtp["starttls"]
        self.login_file = smtp.get("login file")
        self.timeout = smtp["timeout"]
        self.ca_file = ca_file
        self.target = ", ".join(to)

    @classmethod
    def from_config(cls, item: dict, where: str) -> EmailAction:
        spec = item["email"]
        if not isinstance(spec, dict):
            raise ConfigError(f"{where} must be a mapping with 'to' and 'smtp', got {spec!r}")
        to = spec.get("to")
        to = [to] if isinstance(to, str) else to
        if (
            not isinstance(to, list)
            or not to
            or not all(isinstance(a, str) and "@" in a for a in to)
        ):
            raise ConfigError(
                f"{where}: to must be an address or a list of them, got {spec.get('to')!r}"
            )
        smtp = spec.get("smtp")
        if not isinstance(smtp, dict) or not isinstance(smtp.get("host"), str):
            raise ConfigError(
                f"{where}: smtp must be a mapping with 'host' (and 'port', 'starttls', "
                f"'login file', 'ca file', 'timeout'), got {smtp!r}"
            )
        port = smtp.get("port", 587)
        if isinstance(port, bool) or not isinstance(port, int) or not 0 < port < 65536:
            raise ConfigError(f"{where}: smtp: port must be a port number, got {port!r}")
        starttls = smtp.get("starttls", True)
        if not isinstance(starttls, bool):
            raise ConfigError(f"{where}: smtp: starttls must be true or false, got {starttls!r}")
        login_file = smtp.get("login file")
        if login_file is not None:
            if not starttls:
                raise ConfigError(
                    f"{where}: smtp: login file needs starttls: true (a password is never sent "
                    f"in the clear)"
                )
            try:
                read_login(str(login_file))
            except (OSError, ValueError) as e:
                raise ConfigError(f"{where}: smtp: login file: {e}") from None
        sender = spec.get("from") or f"nowcast@{socket.getfqdn()}"
        if not isinstance(sender, str):
            raise ConfigError(f"{where}: from must be an address, got {sender!r}")
        settings = {
            "host": smtp["host"],
            "port": port,
            "starttls": starttls,
            "login file": login_file,
            "timeout": positive_number(
                smtp.get("timeout"), f"{where}: smtp: timeout", defaults.EVENT_NETWORK_TIMEOUT
            ),
        }
        return cls(to, sender, settings, smtp.get("ca file"))

    def send(self, events: list[Event]) -> str:
        message = EmailMessage()
        message["From"] = self.sender
        message["To"] = ", ".join(self.to)
        message["Subject"] = digest_text(events)
        lines = [e.text() for e in events]
        details = json.dumps(digest_fields(events), indent=2, ensure_ascii=False, default=str)
        message.set_content("\n".join(lines) + "\n\n" + details + "\n")
        try:
            with smtplib.SMTP(self.host, self.port, timeout=self.timeout) as smtp:
                if self.starttls:
                    smtp.starttls(context=ssl.create_default_context(cafile=self.ca_file))
                if self.login_file:
                    user, password = read_login(self.login_file)
                    smtp.login(user, password)
                refused = smtp.send_message(message)
        except (OSError, smtplib.SMTPException, ValueError) as e:
            raise ActionError(f"mail to {self.target} via {self.host}:{self.port}: {e}") from None
        if refused:
            raise ActionError(f"refused recipients: {', '.join(refused)}")
        return f"mailed {len(self.to)} recipient(s) via {self.host}:{self.port}"
