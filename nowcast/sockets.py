"""Where every nowcast process makes its ZeroMQ sockets, so addresses, limits and
(later) keys are applied the same way everywhere."""

from __future__ import annotations

from typing import Any

from nowcast import defaults
from nowcast.config import Config


def address(config: Config, port_name: str) -> str:
    """The address clients connect to for the broker's ``port_name`` socket."""
    zmq_config = config["zmq"]
    return f"tcp://{zmq_config['host']}:{zmq_config['ports'][port_name]}"


def bind_address(config: Config, port_name: str) -> str:
    """The address the broker binds its ``port_name`` socket to."""
    zmq_config = config["zmq"]
    host = zmq_config.get("bind", defaults.BIND)
    if host in ("*", "0.0.0.0", "all"):
        host = "*"
    return f"tcp://{host}:{zmq_config['ports'][port_name]}"


def client(context: Any, socket_type: int, config: Config, port_name: str) -> Any:
    """A socket of ``socket_type`` connected to the broker's ``port_name`` socket."""
    import zmq

    socket = context.socket(socket_type)
    socket.setsockopt(zmq.LINGER, 0)
    socket.connect(address(config, port_name))
    return socket


def server(context: Any, socket_type: int, config: Config, port_name: str) -> Any:
    """A broker socket of ``socket_type`` bound for ``port_name``."""
    import zmq

    socket = context.socket(socket_type)
    socket.setsockopt(zmq.LINGER, defaults.LINGER_MS)
    max_size = config["zmq"].get("max message size", defaults.MAX_MESSAGE_SIZE)
    socket.setsockopt(zmq.MAXMSGSIZE, int(max_size))
    socket.bind(bind_address(config, port_name))
    return socket
