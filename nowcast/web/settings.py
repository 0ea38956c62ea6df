"""The ``web`` section of the config: where the dashboard listens, and who may look.

Closed by default, as the broker is: it binds loopback, and refuses to bind any
other address unless a password is set (``web: password file``), so the day's
runs are never shown to a network by accident.
"""

from __future__ import annotations

import os
import stat

import attrs

from nowcast import defaults
from nowcast.config import Config, key_path, lookup, require_mapping
from nowcast.errors import ConfigError

_KEYS = ("port", "bind", "password file", "user")


@attrs.frozen
class WebSettings:
    """What the ``web`` section says, checked."""

    bind: str
    port: int
    password: str | None  # None: no credentials asked (loopback only)
    user: str = "nowcast"

    @property
    def url(self) -> str:
        host = "127.0.0.1" if self.bind in ("0.0.0.0", "::") else self.bind
        if ":" in host:
            host = f"[{host}]"
        return f"http://{host}:{self.port}/"


def read_settings(config: Config) -> WebSettings:
    """The ``web`` section; ``ConfigError`` naming the file, key and value when wrong."""
    section = require_mapping(config, "web", default={}) or {}
    for key in section:
        if key not in _KEYS:
            raise ConfigError(
                f"{config.file}: key {key_path(('web', key))} is not a web setting; "
                f"expected one of: {', '.join(_KEYS)}"
            )
    port = lookup(config, "web", "port", default=defaults.WEB_PORT)
    if isinstance(port, bool) or not isinstance(port, int) or not 0 < port < 65536:
        raise ConfigError(
            f"{config.file}: key 'web: port' must be a port number from 1 to 65535, got {port!r}"
        )
    bind = lookup(config, "web", "bind", default=defaults.WEB_BIND)
    if not isinstance(bind, str) or not bind:
        raise ConfigError(
            f"{config.file}: key 'web: bind' must be an address such as 127.0.0.1, got {bind!r}"
        )
    if bind in ("*", "all"):
        bind = "0.0.0.0"
    user = lookup(config, "web", "user", default="nowcast")
    if not isinstance(user, str) or not user or ":" in user:
        raise ConfigError(
            f"{config.file}: key 'web: user' must be a user name without ':', got {user!r}"
        )
    password = None
    path = lookup(config, "web", "password file", default=None)
    if path is not None:
        password = _read_password(config, path)
    from nowcast.sockets import is_loopback

    if not is_loopback(bind) and password is None:
        raise ConfigError(
            f"{config.file}: key 'web: bind' is {bind!r}, which is not a loopback address, "
            f"and no 'web: password file' is set: the dashboard would show the system to "
            f"anyone on the network. Set 'web: password file' (a file readable by its owner "
            f"only, holding the password), or bind 127.0.0.1"
        )
    return WebSettings(bind=bind, port=port, password=password, user=user)


def _read_password(config: Config, path: object) -> str:
    where = key_path(("web", "password file"))
    if not isinstance(path, str) or not path:
        raise ConfigError(f"{config.file}: key {where} must be a file path, got {path!r}")
    path = os.path.expanduser(path)
    try:
        with open(path, encoding="utf-8") as f:
            mode = os.fstat(f.fileno()).st_mode
            text = f.read()
    except (OSError, UnicodeDecodeError) as e:
        reason = e.strerror if isinstance(e, OSError) else "not UTF-8 text"
        raise ConfigError(f"{config.file}: key {where}: cannot read {path}: {reason}") from None
    if mode & (stat.S_IRWXG | stat.S_IRWXO):
        raise ConfigError(
            f"{config.file}: key {where}: {path} can be read by others (mode "
            f"{stat.S_IMODE(mode):04o}); make it readable by its owner only: chmod 600 {path}"
        )
    password = text.strip()
    if len(password) < 8:
        raise ConfigError(
            f"{config.file}: key {where}: the password in {path} must have at least 8 "
            f"characters, it has {len(password)}"
        )
    return password
