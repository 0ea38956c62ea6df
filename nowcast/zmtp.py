"""A worker's one request and its reply, spoken in ZMTP 3.0 (ZeroMQ's wire
protocol, NULL security) over a plain TCP connection, as a zmq REQ socket would.

A worker sends a message and waits for the reply. A zmq context for that starts
two threads (I/O and reaper) and costs a worker forked by the fork server about
1 ms of CPU; a TCP connection spoken to in ZMTP costs about a third of that. The
broker's ROUTER socket sees an ordinary REQ peer: the same greeting, the same
READY command with ``Socket-Type: REQ``, an empty delimiter frame, then the
message. Used for a broker at a literal IP address or ``localhost`` without
CurveZMQ keys; otherwise the worker uses zmq (``usable``).

What a REQ socket does that matters here is kept: the connection is retried
every ``RECONNECT`` seconds while it is refused (the broker not yet up), and a
reply that does not come (a connection lost included) is waited for until the
timeout, after which the caller re-sends on a fresh connection.
"""

from __future__ import annotations

import socket
import struct
import time

# ZMTP 3.0 greeting: signature, version 3.0, mechanism NULL, as-server 0, filler
GREETING = b"\xff" + bytes(8) + b"\x7f" + b"\x03\x00" + b"NULL".ljust(20, b"\0") + bytes(32)
_READY = b"\x05READY" + b"\x0bSocket-Type" + struct.pack(">I", 3) + b"REQ"
# flags of a frame: more frames follow, 8-byte size, command
MORE, LONG, COMMAND = 0x01, 0x02, 0x04
RECONNECT = 0.1  # seconds between connection tries, zmq's default reconnect interval
# The largest frame read: a reply is a short message; a peer announcing more is
# not the broker (or not well), and is treated as a lost connection.
MAX_FRAME = 16 * 1024 * 1024


class _Lost(Exception):
    """The connection closed, or the peer spoke something other than ZMTP 3."""


def usable(host: str, curve: bool) -> bool:
    """Whether a broker at ``host`` can be spoken to here: no CurveZMQ keys, and a
    literal IP address or ``localhost`` (a name goes through zmq's resolver)."""
    return not curve and _family(host) is not None


def request(host: str, port: int, body: bytes, timeout: float) -> bytes | None:
    """Send ``body`` as a REQ socket's message to the peer at ``host:port``; return
    the reply's body, or None when none came within ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    connection = _connect(host, port, deadline)
    if connection is None:
        return None
    try:
        connection.settimeout(_left(deadline))
        connection.sendall(GREETING + bytes([COMMAND, len(_READY)]) + _READY)
        reader = _Reader(connection, deadline)
        greeting = reader.take(64)
        if greeting[0] != 0xFF or greeting[9] != 0x7F or greeting[10] < 3:
            raise _Lost("not a ZMTP 3 peer")
        flags, ready = reader.frame()
        if not flags & COMMAND or not ready.startswith(b"\x05READY"):
            raise _Lost("no READY command")
        connection.settimeout(_left(deadline))
        connection.sendall(_frame(b"", MORE) + _frame(body, 0))
        frames = []
        while True:
            flags, data = reader.frame()
            if flags & COMMAND:
                continue  # a command of the protocol's own, nothing of the reply
            frames.append(data)
            if not flags & MORE:
                break
        if len(frames) < 2 or frames[0] != b"":
            raise _Lost("a reply without its delimiter")
        return frames[1]
    except (_Lost, OSError):
        # as a REQ socket: what is lost is waited for until the timeout
        time.sleep(_left(deadline))
        return None
    finally:
        connection.close()


def _family(host: str) -> int | None:
    if host == "localhost":  # as zmq resolves it (IPv4 unless told otherwise)
        return socket.AF_INET
    for family in (socket.AF_INET, socket.AF_INET6):
        try:
            socket.inet_pton(family, host.strip("[]") if family == socket.AF_INET6 else host)
        except OSError:
            continue
        return family
    return None


def _connect(host: str, port: int, deadline: float) -> socket.socket | None:
    family = _family(host)
    address = "127.0.0.1" if host == "localhost" else host.strip("[]")
    while True:
        connection = socket.socket(family, socket.SOCK_STREAM)
        connection.settimeout(_left(deadline))
        try:
            connection.connect((address, port))
            connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            return connection
        except OSError:
            connection.close()
            if _left(deadline) <= 0:
                return None
        time.sleep(min(RECONNECT, _left(deadline)))


def _left(deadline: float) -> float:
    return max(0.0, deadline - time.monotonic())


def _frame(body: bytes, flags: int) -> bytes:
    if len(body) > 255:
        return bytes([flags | LONG]) + struct.pack(">Q", len(body)) + body
    return bytes([flags, len(body)]) + body


class _Reader:
    """The bytes of a connection, read as they are needed, until ``deadline``."""

    def __init__(self, connection: socket.socket, deadline: float) -> None:
        self.connection = connection
        self.deadline = deadline
        self.buffer = bytearray()

    def take(self, size: int) -> bytes:
        while len(self.buffer) < size:
            left = _left(self.deadline)
            if left <= 0:
                raise _Lost("no reply in time")
            self.connection.settimeout(left)
            data = self.connection.recv(max(4096, size - len(self.buffer)))
            if not data:
                raise _Lost("connection closed")
            self.buffer += data
        taken = bytes(self.buffer[:size])
        del self.buffer[:size]
        return taken

    def frame(self) -> tuple[int, bytes]:
        flags = self.take(1)[0]
        size = struct.unpack(">Q", self.take(8))[0] if flags & LONG else self.take(1)[0]
        if size > MAX_FRAME:
            raise _Lost(f"a frame of {size} bytes")
        return flags, self.take(size)
