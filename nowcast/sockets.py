"""Where every nowcast process makes its ZeroMQ sockets, so addresses, limits and
CurveZMQ keys are applied the same way everywhere.

With ``zmq: curve keys: DIR`` in the config, the broker's sockets are CURVE
servers using ``DIR/broker.key_secret``, and admit only clients whose public keys
are in ``DIR/authorized/``; clients use ``DIR/<zmq: curve client>.key_secret``
(default ``client``) and the broker's public key ``DIR/broker.key``.
"""

from __future__ import annotations

import os
from typing import Any

from nowcast import defaults
from nowcast.config import Config
from nowcast.errors import ConfigError


def port(config: Config, port_name: str) -> int:
    """``zmq: ports: <port_name>``; for ``logging``, NEMO_Nowcast's form too."""
    if port_name == "logging":
        from nowcast.nemo_logging import logging_port

        return logging_port(config)
    return config["zmq"]["ports"][port_name]


def address(config: Config, port_name: str) -> str:
    """The address clients connect to for the broker's ``port_name`` socket."""
    return f"tcp://{config['zmq']['host']}:{port(config, port_name)}"


def bind_host(config: Config) -> str:
    host = config["zmq"].get("bind", defaults.BIND)
    return "*" if host in ("*", "0.0.0.0", "all") else str(host)


def bind_address(config: Config, port_name: str) -> str:
    """The address the broker binds its ``port_name`` socket to."""
    return f"tcp://{bind_host(config)}:{port(config, port_name)}"


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    import ipaddress  # here, not at the top: workers never need it

    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def keys_dir(config: Config) -> str | None:
    directory = config["zmq"].get("curve keys")
    if directory is None:
        return None
    return os.path.expanduser(str(directory))


def check_keys(config: Config, role: str) -> None:
    """Raise ``ConfigError`` unless the key files ``role`` needs are readable."""
    directory = keys_dir(config)
    if directory is None:
        return
    needed = [os.path.join(directory, "broker.key")]
    if role == "server":
        needed += [
            os.path.join(directory, "broker.key_secret"),
            os.path.join(directory, "authorized"),
        ]
    else:
        needed.append(os.path.join(directory, f"{_client_name(config)}.key_secret"))
    for path in needed:
        if not os.access(path, os.R_OK):
            raise ConfigError(
                f"{config.file}: key 'zmq: curve keys' is {directory!r}, but {path} cannot be "
                f"read; make keys with: python -m nowcast.keys {directory}"
            )


def _client_name(config: Config) -> str:
    return str(config["zmq"].get("curve client", "client"))


def _load(path: str) -> tuple[bytes, bytes | None]:
    import zmq.auth

    return zmq.auth.load_certificate(path)


def client(context: Any, socket_type: int, config: Config, port_name: str) -> Any:
    """A socket of ``socket_type`` connected to the broker's ``port_name`` socket."""
    import zmq

    socket = context.socket(socket_type)
    socket.setsockopt(zmq.LINGER, 0)
    directory = keys_dir(config)
    if directory is not None:
        server_public, _ = _load(os.path.join(directory, "broker.key"))
        public, secret = _load(os.path.join(directory, f"{_client_name(config)}.key_secret"))
        socket.curve_serverkey = server_public
        socket.curve_publickey = public
        socket.curve_secretkey = secret
    socket.connect(address(config, port_name))
    return socket


def server(context: Any, socket_type: int, config: Config, port_name: str) -> Any:
    """A broker socket of ``socket_type`` bound for ``port_name``."""
    import zmq

    socket = context.socket(socket_type)
    socket.setsockopt(zmq.LINGER, defaults.LINGER_MS)
    max_size = int(config["zmq"].get("max message size", defaults.MAX_MESSAGE_SIZE))
    if port_name == "workers":  # let what is a little over through, for the manager to answer
        max_size *= defaults.OVERSIZE_FACTOR
    socket.setsockopt(zmq.MAXMSGSIZE, max_size)
    directory = keys_dir(config)
    if directory is not None:
        public, secret = _load(os.path.join(directory, "broker.key_secret"))
        socket.curve_secretkey = secret
        socket.curve_publickey = public
        socket.curve_server = True
    try:
        socket.bind(bind_address(config, port_name))
    except BaseException:
        # closed now, not when collected: an open socket keeps the context's
        # term() waiting, and the exception's traceback can keep it alive
        socket.close(linger=0)
        raise
    return socket


def authenticator(context: Any, config: Config, current: Any, logger: Any) -> Any:
    """Admit only the public keys in the keys' ``authorized`` directory to the
    CURVE server sockets of ``context``; called again (on reload), re-read that
    directory. Returns the authenticator, or None when no keys are configured."""
    import logging

    directory = keys_dir(config)
    if directory is None:
        if current is not None:
            current.stop()
        return None
    if current is None:
        from zmq.auth.thread import ThreadAuthenticator

        current = ThreadAuthenticator(context, log=logging.getLogger("zmq.auth"))
        current.start()
    authorized = os.path.join(directory, "authorized")
    current.configure_curve(domain="*", location=authorized)
    count = len([f for f in os.listdir(authorized) if f.endswith(".key")])
    logger.info("CURVE on: admitting the %d public key(s) in %s", count, authorized)
    return current
